// Trains a model on windows of a token stream with AdamW, segment-wise truncated BPTT and a
// warm-up + cosine learning-rate schedule. One progress line per step goes to stderr.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/transformer.h"

namespace infini {

struct TrainOptions {
  int64_t steps = 200;
  double max_seconds = 0;      // stop early once this much time has passed (0: no limit)
  int64_t batch = 4;
  int64_t window = 2048;       // tokens per training example, fed segment after segment
  int64_t bptt_segments = 0;   // detach the memory every k segments (0: back-propagate the whole window)
  double lr = 1e-3;
  double min_lr_ratio = 0.1;   // cosine decays to lr * this
  int64_t warmup = 20;
  double weight_decay = 0.1;
  double gate_lr_mult = 10.0;  // gates barely move at an LM learning rate (shared/REFERENCE.md §3)
  double grad_clip = 1.0;
  uint64_t seed = 1234;
  bool quiet = false;
};

// AdamW with three parameter groups: matrices (decayed), norms (not decayed), gates (not decayed,
// their own learning rate).
struct Optimizer {
  std::unique_ptr<torch::optim::AdamW> adamw;
  std::vector<double> base_lr;  // per parameter group, before the schedule
  void set_lr_factor(double factor);
};

Optimizer make_optimizer(InfiniTransformer& model, const TrainOptions& o);

// Learning-rate multiplier at `step` (0-based): linear warm-up, then cosine down to min_lr_ratio.
double lr_factor(const TrainOptions& o, int64_t step);

struct StepResult {
  double loss;       // mean cross-entropy over the window, nats per token
  double grad_norm;  // before clipping
};

// One optimisation step on `tokens` (B, W+1). Throws infini::Error on a non-finite loss or gradient,
// before the weights change.
StepResult train_step(InfiniTransformer& model, Optimizer& optimizer, const torch::Tensor& tokens,
                      const TrainOptions& o, int64_t step);

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;
  double tokens_per_second = 0;
  double seconds = 0;
};

// Trains on random windows of `corpus` (n) int64 tokens.
TrainSummary train(InfiniTransformer& model, const torch::Tensor& corpus, const TrainOptions& o);

}  // namespace infini
