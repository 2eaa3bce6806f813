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
  // With a virtual length: one weight per segment of the inputs (tokens minus the last), > 1 on
  // segments of filler alone, 1 elsewhere (ModelState::weigh_next_write). Empty without one.
  std::vector<float> segment_weights;
};

struct DepthRange {
  double min = 0.0, max = 1.0;
};

// Longer keys than the paper's give more answer tokens per example whose order the memory must keep.
struct KeyRange {
  int64_t min = kPasskeyMin, max = kPasskeyMax;
  // The share of keys whose digits are each drawn from a pool of two or three: digits
  // recur, so what follows a digit is told only by the digits before it (44844, 36368), the keys a
  // model that recalls each digit's successor gets wrong. The rest are drawn uniformly. 0 leaves every
  // example as it was.
  double repeat_share = 0.0;
};

// Prompts read as if they were longer than the window: a million-token prompt is a few segments
// holding the instruction, the key line and the question, and thousands of segments of the same
// filler. An example of n tokens gets a virtual length drawn log-uniformly from [n, max_tokens], and
// its filler-only segments are written into the memory with one weight that makes up the
// difference (memory::write). Under the linear rule that is exactly what more of the same filler
// segment would write; the filler's phase in the segment and the delta rule make it approximate.
struct VirtualLength {
  int64_t max_tokens = 0;  // 0: off
  int64_t segment_len = 0;
  // > 0: the draw starts there instead of at the example's own length, so that training sees the
  // faint reads of long inputs more often (log-uniform from n, the median is sqrt(n * max_tokens)).
  int64_t min_tokens = 0;
};

class PasskeyExamples : public ExampleSource {
 public:
  // Prompt + answer lengths are drawn uniformly from [min_tokens, max_tokens] (in tokens of `tokenizer`,
  // approximately for SentencePiece); depth from `depths`; keys from `keys`.
  // lead_bytes > 0: each prompt starts with 0 to lead_bytes - 1 bytes of filler (drawn per example)
  // before its intro. The paper's prompt puts each line at a position that only its filler counts
  // move, in steps of the 90-byte filler, so prompts of 1-1.3K tokens put their key line and question
  // at a few phases of a 64-token segment, and a model trained on them fails at the phases it never
  // saw (docs/PASSKEY.md, "Phases of a segment"); a lead of up to a segment's length puts them at every
  // phase. `infini passkey` reads the paper's prompt from position 0.
  PasskeyExamples(const Tokenizer& tokenizer, int64_t min_tokens, int64_t max_tokens, uint64_t seed,
                  DepthRange depths = {}, KeyRange keys = {}, VirtualLength virtual_length = {},
                  int64_t lead_bytes = 0);

  PasskeyExample example(uint64_t index) const;
  // Padded to the longest example of the batch; every target but the answers' is masked. With a virtual
  // length, write_weights holds each example's segment weights (1 on padding).
  Batch batch(uint64_t first, int64_t count) const override;

 private:
  const Tokenizer& tokenizer_;
  int64_t min_tokens_, max_tokens_;
  uint64_t seed_;
  DepthRange depths_;
  KeyRange keys_;
  VirtualLength virtual_;
  int64_t lead_bytes_;
  int64_t reserved_bytes_;  // bytes of each example's length kept for its answer and a long key
  double bytes_per_token_;
};

}  // namespace infini::data
