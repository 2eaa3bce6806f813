// Reads a text file as tokens, a block at a time, never whole: for inputs of any length.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace infini::data {

// Calls `sink(tokens, bytes_read_so_far)` for consecutive pieces of `path`. Pieces are cut at line
// ends where the tokenizer is not byte-level, so no word is split between two encodes.
void stream_tokens(const std::string& path, const Tokenizer& tokenizer,
                   const std::function<void(const std::vector<int64_t>&, uint64_t)>& sink,
                   uint64_t block_bytes = 1 << 20);

}  // namespace infini::data
