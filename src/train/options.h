// Everything that decides what a training run computes. A checkpoint stores it, so a resumed run
// continues with the same settings.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace infini {

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
  // answer tokens only as targets (data/passkey_examples.h). Runs from before these fields are "lm".
  std::string task = "lm";
  int64_t passkey_min_tokens = 0;  // 0: the window
  // The key line's depth is drawn from [passkey_min_depth, passkey_max_depth]: a curriculum can keep
  // the key in the first segment so that every example needs the memory.
  double passkey_min_depth = 0.0;
  double passkey_max_depth = 1.0;
  // Keys are drawn from [passkey_key_min, passkey_key_max] (the paper's 1..50000 by default).
  int64_t passkey_key_min = 1;
  int64_t passkey_key_max = 50000;
  // The share of keys whose digits come from a pool of two or three (data::KeyRange).
  double passkey_repeat_keys = 0.0;
  // > 0: each prompt is read as if it were up to this many tokens long, its filler-only segments
  // written into the memory with a weight that stands for the filler left out (data/passkey_examples.h).
  int64_t passkey_virtual_tokens = 0;
  // > 0: those virtual lengths are drawn from here instead of from each prompt's own length.
  int64_t passkey_virtual_min_tokens = 0;
  // > 0: each prompt starts with 0 to this many bytes less one of filler, so that its lines fall at
  // every phase of a segment (data::PasskeyExamples' lead).
  int64_t passkey_lead_bytes = 0;

  nlohmann::json to_json() const;
  // Cross-field checks (task, passkey ranges); errors name `origin`, the fields and their flags.
  void validate(const std::string& origin) const;
  // Strict: unknown or mistyped fields are errors naming `origin` and the field.
  static TrainOptions from_json(const nlohmann::json& j, const std::string& origin);
};

// Limits of one invocation; they do not change what the run computes, so they are not stored.
struct SessionLimits {
  double max_seconds = 0;  // stop (with a checkpoint) once this much time has passed; 0: none
  int64_t stop_after = 0;  // stop (with a checkpoint) after this many steps of this invocation; 0: none
  bool quiet = false;      // no progress lines
};

// Learning-rate multiplier at `step` (0-based): linear warm-up, then cosine down to min_lr_ratio.
double lr_factor(const TrainOptions& o, int64_t step);

}  // namespace infini
