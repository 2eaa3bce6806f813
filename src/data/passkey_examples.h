// Training examples of the passkey task (`infini train --task passkey`): the paper's prompt
// (data/passkey.h) with a random key at a random depth, of a random length between a minimum and the
// window, followed by its answer. Only the answer's tokens are targets: the filler is learned at once
// and would otherwise drown the few tokens that need the memory.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "data/passkey.h"
#include "data/tokenizer.h"
#include "data/windows.h"

namespace infini::data {

// A prompt's token ids, its text tokenized piece by piece as data/passkey.h writes it: training and
// `infini passkey` both go through these, so they see the same ids under any tokenizer (SentencePiece
// cannot merge across pieces, and each piece may get its own leading "\u2581").
using TokenSink = std::function<void(const std::vector<int64_t>&)>;
void encode_passkey_prefix(const PasskeyPrompt& prompt, const Tokenizer& tokenizer, const TokenSink& sink);
void encode_passkey_suffix(const PasskeyPrompt& prompt, const Tokenizer& tokenizer, const TokenSink& sink);
std::vector<int64_t> encode_passkey_answer(const PasskeyPrompt& prompt, const Tokenizer& tokenizer);

struct PasskeyExample {
  std::vector<int64_t> tokens;  // prompt, then answer
  int64_t answer_tokens = 0;    // the last answer_tokens of `tokens`
};

struct DepthRange {
  double min = 0.0, max = 1.0;
};

// Longer keys than the paper's give more answer tokens per example whose order the memory must keep.
struct KeyRange {
  int64_t min = kPasskeyMin, max = kPasskeyMax;
};

class PasskeyExamples : public ExampleSource {
 public:
  // Prompt + answer lengths are drawn uniformly from [min_tokens, max_tokens] (in tokens of `tokenizer`,
  // approximately for SentencePiece); depth from `depths`; keys from `keys`.
  PasskeyExamples(const Tokenizer& tokenizer, int64_t min_tokens, int64_t max_tokens, uint64_t seed,
                  DepthRange depths = {}, KeyRange keys = {});

  PasskeyExample example(uint64_t index) const;
  // Padded to the longest example of the batch; every target but the answers' is masked.
  Batch batch(uint64_t first, int64_t count) const override;

 private:
  const Tokenizer& tokenizer_;
  int64_t min_tokens_, max_tokens_;
  uint64_t seed_;
  DepthRange depths_;
  KeyRange keys_;
  int64_t reserved_bytes_;  // bytes of each example's length kept for its answer and a long key
  double bytes_per_token_;
};

}  // namespace infini::data
