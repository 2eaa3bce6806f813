// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data),
// so checkpoints open in Python's safetensors and PyTorch without conversion.
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

namespace infini::io {

struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Serialises to bytes; tensors are written as contiguous CPU copies.
std::string encode_safetensors(const TensorFile& file);
// Parses bytes; `origin` names the file in errors. A truncated or inconsistent file is refused.
TensorFile decode_safetensors(const std::string& bytes, const std::string& origin);

void save_safetensors(const std::string& path, const TensorFile& file);  // atomic
TensorFile load_safetensors(const std::string& path);

}  // namespace infini::io
