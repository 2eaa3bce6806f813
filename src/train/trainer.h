// Trains a model on windows of documents: AdamW with parameter groups, warm-up + cosine schedule,
// gradient clipping and accumulation, truncated BPTT through the compressive memory, periodic
// validation, checkpoints and exact resume. One progress line per step goes to stderr.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "data/windows.h"
#include "dist/process_group.h"
#include "model/transformer.h"
#include "train/adamw.h"
#include "train/options.h"
#include "util/thread_tuner.h"

namespace infini {

// Matrices are decayed; norms, biases and gate scalars are not, and gates get their own lr.
AdamW make_optimizer(InfiniTransformer& model, const TrainOptions& o);

struct StepResult {
  double loss;       // mean cross-entropy over the step's target tokens, nats per token
  double grad_norm;  // before clipping
  int64_t target_tokens;
  int64_t input_tokens;  // read, padding excluded
  // Routed models: the share of this rank's routing decisions where r > 0 (router) or the
  // predictor's logit > 0 matched top-k membership; -1 for a dense model.
  double router_accuracy = -1;
  double predictor_accuracy = -1;
};

// One optimisation step over `micro_batches` (gradient accumulation). Throws infini::Error on a
// non-finite loss or gradient, before the weights change. `step` is 0-based.
// With a process group, every rank calls it with its own micro-batches and the gradients are summed
// over ranks before the step, so all ranks take the same step.
StepResult train_step(InfiniTransformer& model, AdamW& optimizer, const std::vector<data::Batch>& micro_batches,
                      const TrainOptions& o, int64_t step, dist::ProcessGroup* group = nullptr);

// How many threads training steps run on, measured step by step (util/thread_tuner.h): a step is
// seconds long, so one step at each count makes a probe. The caller runs each step under
// ScopedThreads(tuner.threads()) and records its time.
ThreadTuner training_thread_tuner();

struct ValidationResult {
  double loss;      // mean per target token, nats
  double accuracy;  // share of target tokens that are the argmax of their logits
};

// Over examples 0..count-1 of `source`, without gradients.
// Split over the ranks of `group` when there is one; every rank gets the whole result.
ValidationResult evaluate(InfiniTransformer& model, const data::ExampleSource& source, int64_t count, int64_t batch,
                          bool autocast_bf16, dist::ProcessGroup* group = nullptr);

// `group`: this process's data-parallel group (nullptr: one process). Only rank 0 writes the run folder.
TrainSummary train_new(const RunSpec& spec, const TrainLimits& limits, dist::ProcessGroup* group = nullptr);
// Continues the run in `out` from its checkpoint; `steps` > 0 changes the planned total. A run is
// resumed with the world size it was started with.
TrainSummary train_resume(const std::string& out, int64_t steps, const TrainLimits& limits,
                          dist::ProcessGroup* group = nullptr);

}  // namespace infini
