// Evaluation: the loss over whole documents with the memory carried through each one, and passkey
// retrieval (the paper's Table 3). Both return the JSON object `infini eval --json` and
// `infini passkey --json` print; its fields are listed in docs/EVALUATION.md and docs/PASSKEY.md.
// Part of infini's public API.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infini/config.h"
#include "infini/model.h"

namespace infini {

struct EvalOptions {
  int64_t max_documents = 0;  // 0: all
  int64_t max_tokens = 0;     // per document; 0: the whole document
  // Reset the state at every segment boundary: the same weights with no context beyond the segment.
  // The loss gap to a normal run is what the memory (or XL cache) contributes, free of any difference
  // in how fast the models trained.
  bool forget_memory = false;
  // Routed (Mixture-of-Depths) models: causal routing is what reading and sampling use; top-k is the
  // training objective's (it sees whole segments, so later tokens decide earlier selections).
  Routing routing = Routing::Causal;
  // In a PG19-style folder (one with train/), the subfolder to read (empty: test/ if present, else
  // validation/).
  std::string split;
};

// `data`: a text file, a folder of .txt/.tex documents, or a PG19-style folder. `progress` gets
// (documents done, tokens scored so far) after each document.
nlohmann::json evaluate(const Model& model, const std::string& data, const EvalOptions& options = {},
                        const std::function<void(int64_t, int64_t)>& progress = {});

struct PasskeyEvalOptions {
  std::vector<int64_t> lengths = {32768, 131072, 262144, 524288, 1048576};  // prompt lengths, tokens
  std::vector<double> depths = {0.0, 0.5, 1.0};  // where the key line sits in the filler, 0..1
  int64_t trials = 20;                           // random keys per (length, depth)
  uint64_t seed = 1;
  int64_t key_min = 1, key_max = 50000;          // the paper's keys
};

// Greedy answers to the paper's passkey prompt, read a piece at a time, so memory stays constant
// however long the prompt. An answer is exact when every key token is right and the next token does
// not begin with a digit. `progress` gets each finished cell, as in the result's "cells".
nlohmann::json passkey(const Model& model, const PasskeyEvalOptions& options = {},
                       const std::function<void(const nlohmann::json&)>& progress = {});

}  // namespace infini
