// Passkey retrieval, the paper's Table 3: for each input length and key depth, prompts with random
// keys (data/passkey.h) are read by a session a piece at a time, so memory stays constant however
// long the input; the model then continues each prompt greedily for as many tokens as the answer has.
// Token-level accuracy is the share of the key's tokens right, position by position (the space before
// the key is generated but not scored).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/passkey.h"
#include "data/passkey_examples.h"
#include "data/tokenizer.h"
#include "infini/evaluate.h"
#include "model/transformer.h"

namespace infini {

struct PasskeyCell {
  int64_t length = 0;  // tokens asked for
  double depth = 0;
  int64_t trials = 0;
  int64_t prompt_tokens = 0;   // all trials together
  int64_t answer_tokens = 0;   // the keys' tokens, all trials together
  int64_t correct_tokens = 0;
  int64_t exact = 0;           // trials with every answer token right, the space included, and then no digit
  int64_t over_long = 0;       // trials whose answer went on with a digit after the key's tokens
  int64_t key_exact = 0;       // trials with every answer token right, whatever followed them
  std::vector<int64_t> keys;         // per trial
  std::vector<std::string> answers;  // per trial: what the model generated
  double seconds = 0;
  double accuracy() const;  // correct_tokens / answer_tokens
  // Stable field names: length, depth, trials, accuracy, exact_match, prompt_tokens, answer_tokens,
  // over_long, key_exact, keys, answers, seconds.
  nlohmann::json to_json() const;
};

struct PasskeyReport {
  std::vector<PasskeyCell> cells;  // lengths in the outer loop, depths inside
  // Peak resident memory while each length was read: (length, bytes).
  std::vector<std::pair<int64_t, int64_t>> peak_rss;
  double seconds = 0;
  // Stable field names: cells [PasskeyCell::to_json()], peak_rss [{length, bytes}], seconds.
  nlohmann::json to_json() const;
};

// Whether an answer ends when the model's next token after the key's tokens is `next_token`: it must
// not begin with a digit, or the number answered is longer than the key.
bool answer_stops(const data::Tokenizer& tokenizer, int64_t next_token);

// Called after each finished cell.
using PasskeyProgress = std::function<void(const PasskeyCell&)>;

PasskeyReport evaluate_passkey(InfiniTransformer model, const data::Tokenizer& tokenizer,
                               const PasskeyEvalOptions& options, const PasskeyProgress& progress = {});

// The keys of one cell: `trials` draws from [key_min, key_max], a pure function of (seed, length, depth)
// on every platform.
std::vector<int64_t> passkey_keys(const PasskeyEvalOptions& options, int64_t length, double depth);

}  // namespace infini
