// A session: one sequence's state over a fixed model, for reading and generation. feed() takes any
// number of tokens and reads them a segment at a time, so memory stays at one segment's cache plus
// the compressive memory however long the input (after llama.cpp's split of weights and memory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "memory/state.h"
#include "model/transformer.h"

namespace infini {

// A fingerprint of a model's config and weights (64-bit FNV-1a, hex): a state file made with
// another model is refused by it.
std::string model_identity(InfiniTransformer& model);

class Session {
 public:
  explicit Session(InfiniTransformer model);

  // Reads `tokens` after everything fed so far.
  void feed(const std::vector<int64_t>& tokens);
  // (V) fp32 logits for the token after the last one fed; undefined before the first feed.
  const torch::Tensor& last_logits() const { return last_logits_; }
  int64_t position() const { return state_.tokens_seen(); }
  int64_t state_bytes() const { return state_.bytes(); }
  const ModelState& state() const { return state_; }
  void clear();

  // A state file is safetensors: the state tensors and the last logits, with metadata naming the
  // model (its identity) and the position. Written atomically; load() refuses another model's.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  InfiniTransformer model_;
  std::string identity_;
  ModelState state_;
  torch::Tensor last_logits_;  // (V)
};

}  // namespace infini
