// Reads text that is too long to hold, or that arrives in pieces (a file, an upload), as tokens:
// for inputs of any length.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace infini::data {

// Cuts text that arrives in pieces into parts that encode as the whole text would. A tokenizer that
// is not byte-level must not see a word cut in two, so text waits for a line end; a line longer than
// `max_hold` bytes is cut at a character boundary instead. A byte-level tokenizer takes every byte.
class TextCutter {
 public:
  TextCutter(bool byte_level, size_t max_hold) : byte_level_(byte_level), max_hold_(max_hold) {}
  // Appends `bytes`; returns the text ready to encode now (may be empty).
  std::string push(std::string_view bytes);
  // The text still held: all of it is ready once the input has ended.
  std::string finish();
  size_t held() const { return carry_.size(); }

 private:
  bool byte_level_;
  size_t max_hold_;
  std::string carry_;  // an unfinished line
};

// Calls `sink(tokens, bytes_read_so_far)` for consecutive pieces of `path`, cut by a TextCutter.
void stream_tokens(const std::string& path, const Tokenizer& tokenizer,
                   const std::function<void(const std::vector<int64_t>&, uint64_t)>& sink,
                   uint64_t block_bytes = 1 << 20);

}  // namespace infini::data
