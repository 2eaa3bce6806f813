// Byte-level tokens: token id = byte value (0..255), so any file is valid input.
#pragma once

#include <cstring>
#include <string>

#include <torch/torch.h>

namespace infini::data {

// (n) int64 token ids of the bytes of `text`.
inline torch::Tensor bytes_to_tokens(const std::string& text) {
  auto t = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), text.data(), text.size());
  return t.to(torch::kInt64);
}

inline std::string token_to_bytes(int64_t token) { return std::string(1, static_cast<char>(token & 0xff)); }

}  // namespace infini::data
