// Sampling from a session: the prompt is read in segment-sized pieces, then one token at a time,
// with the state carried, so the compressive memory is written once per segment and never re-fed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "infer/session.h"

namespace infini {

struct SampleOptions {
  int64_t max_tokens = 200;
  double temperature = 0.8;          // 0: greedy
  int64_t top_k = 0;                 // sample among the k likeliest (0: all)
  double top_p = 1.0;                // nucleus: the smallest set with this much probability (1: all)
  double repetition_penalty = 1.0;   // > 1 discourages tokens already in the last `repetition_window`
  int64_t repetition_window = 256;
  uint64_t seed = 1234;
};

// Picks the next token from `logits` (V) given the `recent` tokens (for the repetition penalty).
int64_t sample_token(const torch::Tensor& logits, const std::vector<int64_t>& recent, const SampleOptions& o,
                     at::Generator& gen);

// Feeds `prompt` (may be empty when the session already holds text), then samples up to max_tokens,
// feeding each back. `emit` gets each token as soon as it is chosen and returns false to stop
// (a stop string). Every new token is fed too, so the session ends holding prompt and continuation.
// Returns the new tokens.
std::vector<int64_t> generate(Session& session, const std::vector<int64_t>& prompt, const SampleOptions& options,
                              const std::function<bool(int64_t)>& emit = {});

}  // namespace infini
