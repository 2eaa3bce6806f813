// `infini bench --model A --vs B`: two models measured side by side in one process, in alternating
// rounds (A B B A ...), so that a drift in the machine's speed hits both alike. Made for the
// Mixture-of-Depths question: how much faster does a routed model decode and train than its dense twin.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/train_bench.h"
#include "model/transformer.h"

namespace infini {

struct CompareBenchOptions {
  int64_t context = 16384;       // tokens each session reads before decoding
  // The context itself: these tokens (e.g. the start of a real document, where a router decides as
  // it would in use), or, when empty, `context` pseudo-random tokens.
  std::vector<int64_t> context_tokens;
  int64_t decode_tokens = 256;   // greedy tokens per decode round
  int64_t rounds = 4;            // alternating rounds; the figures are medians over them
  bool train = true;             // also time training steps on each model's config
  TrainBenchOptions train_bench;  // batch, window, warm-up and timed steps of each training round
};

// Per model (`a`, `b`): decode seconds per token, training seconds per step, FLOPs per token
// (forward, and training), parameters; then `b_speedup`: A's time over B's (> 1: B is faster) for
// decode and the training step, and A's forward FLOPs over B's.
nlohmann::json run_compare_bench(InfiniTransformer a, InfiniTransformer b, const CompareBenchOptions& options);

}  // namespace infini
