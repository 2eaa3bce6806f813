// A training checkpoint is one file, checkpoint.safetensors in the run folder, so it is either the
// old one or the whole new one (temp file, then rename). Tensors: the weights ("model.<name>"), the
// AdamW state ("adamw.*") and the torch RNG ("rng.torch_cpu"). Its metadata holds the model config,
// the training options, the data sources and the progress, as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <torch/torch.h>

#include "infini/config.h"
#include "model/transformer.h"
#include "train/adamw.h"
#include "train/options.h"

namespace infini {

struct RunRecord {
  TrainOptions options;
  std::string data, validation;  // corpus paths, absolute
  // The corpus as it was when the run started; a resume on a changed corpus would draw other windows.
  uint64_t train_documents = 0, train_bytes = 0, validation_documents = 0, validation_bytes = 0;
  int threads = 0;               // intra-op threads: results depend on them in the last bits
  int world_size = 1;            // data-parallel processes: each one's share of the examples depends on it
  int64_t step = 0;              // optimisation steps done
  uint64_t examples_drawn = 0;   // the data position: training examples consumed so far
  double tokens = 0;             // target tokens trained on
  double seconds = 0;            // training time so far
  double last_val_loss = -1;     // < 0: none yet
};

struct Checkpoint {
  ModelConfig config;
  RunRecord run;
  std::map<std::string, torch::Tensor> tensors;
};

void save_checkpoint(const std::string& path, InfiniTransformer& model, const AdamW& optimizer,
                     const RunRecord& run);
// Refuses a truncated, corrupt or incomplete file with an error that names it and the problem.
Checkpoint load_checkpoint(const std::string& path);
// Copies the weights, optimizer state and RNG state of `checkpoint` into place.
void restore(const Checkpoint& checkpoint, const std::string& origin, InfiniTransformer& model,
             AdamW& optimizer);

}  // namespace infini
