// Training from code: what `infini train` runs, with the same run folder (model folder, checkpoint,
// metrics.jsonl), exact resume and the same progress lines on stderr. A run started in code resumes
// on the command line and the other way round. Part of infini's public API; docs/TRAINING.md has
// the recipe and every option's meaning.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "infini/config.h"

namespace infini {

// Everything that decides what a training run computes. A checkpoint stores it, so a resumed run
// continues with the same settings.
struct TrainOptions {
  int64_t steps = 200;
  int64_t batch = 4;           // windows per micro-batch
  int64_t grad_accum = 1;      // micro-batches per optimisation step
  int64_t window = 2048;       // tokens per training example, fed segment after segment
  int64_t bptt_segments = 0;   // detach the memory every k segments (0: back-propagate the whole window)
  double lr = 1e-3;
  double min_lr_ratio = 0.1;   // cosine decays to lr * this
  int64_t warmup = 20;
  double weight_decay = 0.1;
  double gate_lr_mult = 10.0;  // gates barely move at an LM learning rate (shared/REFERENCE.md §3)
  double grad_clip = 1.0;      // 0: off
  uint64_t seed = 1234;
  int64_t val_every = 100;     // steps between validation losses (0: never)
  int64_t val_windows = 32;    // validation examples, the same ones every time
  int64_t checkpoint_every = 100;  // steps between checkpoints (one is always written at the end)
  bool autocast_bf16 = false;  // bf16 matmuls under CPU autocast; M and z stay fp32
  // "lm": windows of the corpus. "passkey": passkey prompts of passkey_min_tokens .. window tokens,
  // answer tokens only as targets (docs/PASSKEY.md). Runs from before these fields are "lm".
  std::string task = "lm";
  int64_t passkey_min_tokens = 0;  // 0: the window
  // The key line's depth is drawn from [passkey_min_depth, passkey_max_depth]: a curriculum can keep
  // the key in the first segment so that every example needs the memory.
  double passkey_min_depth = 0.0;
  double passkey_max_depth = 1.0;
  // Keys are drawn from [passkey_key_min, passkey_key_max] (the paper's 1..50000 by default).
  int64_t passkey_key_min = 1;
  int64_t passkey_key_max = 50000;
  // The share of keys whose digits come from a pool of two or three .
  double passkey_repeat_keys = 0.0;
  // > 0: each prompt is read as if it were up to this many tokens long, its filler-only segments
  // written into the memory with a weight that stands for the filler left out (docs/PASSKEY.md).
  int64_t passkey_virtual_tokens = 0;
  // > 0: those virtual lengths are drawn from here instead of from each prompt's own length.
  int64_t passkey_virtual_min_tokens = 0;
  // > 0: each prompt starts with 0 to this many bytes less one of filler, so that its lines fall at
  // every phase of a segment .
  int64_t passkey_lead_bytes = 0;

  nlohmann::json to_json() const;
  // Cross-field checks (task, passkey ranges); errors name `origin`, the fields and their flags.
  void validate(const std::string& origin) const;
  // Strict: unknown or mistyped fields are errors naming `origin` and the field.
  static TrainOptions from_json(const nlohmann::json& j, const std::string& origin);
};

// Limits of one invocation; they do not change what the run computes, so they are not stored.
struct TrainLimits {
  double max_seconds = 0;  // stop (with a checkpoint) once this much time has passed; 0: none
  int64_t stop_after = 0;  // stop (with a checkpoint) after this many steps of this invocation; 0: none
  bool quiet = false;      // no progress lines
};

// A new run: `out` is the run folder (must be new or empty). It ends up holding the model folder
// (config.json, model.safetensors, tokenizer), checkpoint.safetensors and metrics.jsonl.
struct RunSpec {
  std::string out;
  std::string data, validation;  // a file, a folder of .txt/.tex documents, or a PG19-style folder
  std::string tokenizer;         // a SentencePiece .model; empty: bytes
  std::string init;              // a model folder to start from (fine-tuning): its config, weights, tokenizer
  ModelConfig config;            // unused with `init`
  TrainOptions options;
};

struct TrainSummary {
  int64_t step = 0;                 // steps done in total
  double first_loss = 0, last_loss = 0;  // of this invocation
  double last_val_loss = -1;
  double tokens_per_second = 0;     // of this invocation
  bool interrupted = false;         // stopped by SIGINT/SIGTERM (a checkpoint was written)
};

// Starts the run spec.out, which must be new or empty. One process (`infini train --nproc` adds
// data-parallel workers). Stops early with a checkpoint on SIGINT/SIGTERM or at a limit.
TrainSummary train(const RunSpec& spec, const TrainLimits& limits = {});
// Continues the run in `out` from its checkpoint, bit for bit as if it had never stopped; `steps` > 0
// changes the planned total.
TrainSummary resume(const std::string& out, int64_t steps = 0, const TrainLimits& limits = {});

}  // namespace infini
