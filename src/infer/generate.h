// Sampling from a model: the prompt is read in segment-sized chunks, then one token at a time, with
// the state carried, so the compressive memory is written once per segment and never re-fed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer.h"

namespace infini {

struct SampleOptions {
  int64_t max_tokens = 200;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 0;         // 0: no top-k cut
  uint64_t seed = 1234;
};

// Calls `emit` with each new token as soon as it is sampled; returns all new tokens.
std::vector<int64_t> generate(InfiniTransformer& model, const std::vector<int64_t>& prompt,
                              const SampleOptions& options,
                              const std::function<void(int64_t)>& emit = {});

}  // namespace infini
