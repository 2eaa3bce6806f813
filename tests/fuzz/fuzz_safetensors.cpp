// io::decode_safetensors on arbitrary bytes: every state file, checkpoint and model.safetensors goes
// through it. A file it accepts must survive encode -> decode unchanged (names, dtypes, shapes, bytes
// and metadata).
#include <cstring>

#include "fuzz_common.h"
#include "mutators.h"
#include "io/safetensors.h"
#include "infini/error.h"

namespace {

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;
  const auto ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

}  // namespace

extern "C" int INFINI_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  infini::fuzz::setup();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  infini::io::TensorFile file;
  try {
    file = infini::io::decode_safetensors(bytes, "fuzz");
  } catch (const infini::Error&) {
    return 0;
  }
  const auto again = infini::io::decode_safetensors(infini::io::encode_safetensors(file), "fuzz (re-encoded)");
  // The writer adds (or renews) the data's checksum; everything else must read back unchanged.
  auto before = file.metadata, after = again.metadata;
  before.erase("infini_checksum");
  after.erase("infini_checksum");
  if (before != after || again.tensors.size() != file.tensors.size()) std::abort();
  for (const auto& [name, t] : file.tensors) {
    const auto it = again.tensors.find(name);
    if (it == again.tensors.end() || !same_bytes(t, it->second)) std::abort();
  }
  return 0;
}

INFINI_FUZZ_MUTATOR(infini::fuzz::mutate_safetensors(data, size, max_size, seed))
