// Training examples: windows of up to W+1 tokens cut from inside one document. Example i is a pure
// function of (seed, i), so the data position of a run is one counter and resuming is exact.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "data/documents.h"
#include "data/tokenizer.h"

namespace infini::data {

constexpr int64_t kIgnoreTarget = -100;  // cross_entropy's ignore_index: padding adds no loss

struct Batch {
  torch::Tensor inputs;   // (B, W) int64; padding positions hold 0
  torch::Tensor targets;  // (B, W) int64; padding positions hold kIgnoreTarget
  int64_t target_tokens = 0;  // targets that count in the loss
  int64_t input_tokens = 0;   // inputs that are not padding
  // (B, S) fp32, one per segment of the inputs, or undefined: how many segments like it each one
  // stands for in the compressive memory (passkey training's virtual length).
  torch::Tensor write_weights;
};

// Pads examples (each of 2..W+1 tokens) to W inputs; a shorter example's padding is masked.
Batch make_batch(const std::vector<std::vector<int64_t>>& examples, int64_t window);

// Where training examples come from: batch(first, count) holds examples first .. first+count-1, each
// a pure function of (seed, index), so the data position of a run is one counter.
class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  virtual Batch batch(uint64_t first, int64_t count) const = 0;
};

class WindowSampler : public ExampleSource {
 public:
  // Picks a document with probability proportional to its size, then a uniform start inside it.
  WindowSampler(std::vector<Document> docs, const Tokenizer& tokenizer, int64_t window, uint64_t seed);

  // Example `index`: W+1 consecutive tokens of one document, or the whole document when it is
  // shorter. Deterministic in (seed, index).
  std::vector<int64_t> example(uint64_t index) const;
  Batch batch(uint64_t first, int64_t count) const override;

  int64_t window() const { return window_; }

 private:
  std::vector<int64_t> read_tokens(const Document& doc, uint64_t offset) const;
  std::vector<int64_t> document_tail(const Document& doc) const;

  std::vector<Document> docs_;
  std::vector<uint64_t> cumulative_bytes_;  // (docs): end of each document in the concatenation
  const Tokenizer& tokenizer_;
  int64_t window_;
  uint64_t seed_;
};

}  // namespace infini::data
