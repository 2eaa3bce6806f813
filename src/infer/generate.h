// Sampling from a session: the prompt is read in segment-sized pieces, then one token at a time,
// with the state carried, so the compressive memory is written once per segment and never re-fed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "infer/session.h"
#include "infini/session.h"

namespace infini {

// Picks the next token from `logits` (V) given the `recent` tokens (for the repetition penalty).
int64_t sample_token(const torch::Tensor& logits, const std::vector<int64_t>& recent, const SampleOptions& o,
                     at::Generator& gen);

// Feeds `prompt` (may be empty when the session already holds text), then samples up to max_tokens,
// feeding each back. `emit` gets each token as soon as it is chosen and returns false to stop
// (a stop string). Every new token is fed too, so the session ends holding prompt and continuation.
// Returns the new tokens.
std::vector<int64_t> generate(SessionEngine& session, const std::vector<int64_t>& prompt, const SampleOptions& options,
                              const std::function<bool(int64_t)>& emit = {});

}  // namespace infini
