#include "io/safetensors.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "util/error.h"

namespace infini::io {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {torch::kFloat64, "F64"}, {torch::kFloat32, "F32"}, {torch::kBFloat16, "BF16"},
    {torch::kFloat16, "F16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
    {torch::kInt16, "I16"},   {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
    {torch::kBool, "BOOL"},
};

const char* dtype_to_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(fmt::format("safetensors: cannot store dtype {}", c10::toString(t)));
}

torch::ScalarType name_to_dtype(const std::string& name, const std::string& origin,
                                const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw Error(fmt::format("{}: tensor '{}' has unsupported dtype '{}'", origin, tensor, name));
}

}  // namespace

std::string encode_safetensors(const TensorFile& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::vector<torch::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_to_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  out.reserve(out.size() + offset);
  for (const auto& t : contiguous)
    out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

TensorFile decode_safetensors(const std::string& bytes, const std::string& origin) {
  if (bytes.size() < 8)
    throw Error(fmt::format("{}: not a safetensors file (only {} bytes)", origin, bytes.size()));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8)
    throw Error(fmt::format("{}: truncated or not a safetensors file (header of {} bytes, file of {})",
                            origin, n, bytes.size()));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: corrupt safetensors header ({})", origin, e.what()));
  }
  if (!header.is_object()) throw Error(fmt::format("{}: corrupt safetensors header", origin));
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  TensorFile file;
  for (const auto& [name, entry] : header.items()) {
    try {
      if (name == "__metadata__") {
        for (const auto& [k, v] : entry.items()) file.metadata[k] = v.get<std::string>();
        continue;
      }
      const auto dtype = name_to_dtype(entry.at("dtype").get<std::string>(), origin, name);
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      int64_t numel = 1;
      for (auto s : shape) {
        if (s < 0) throw Error("negative dimension");
        numel *= s;
      }
      const uint64_t nbytes = static_cast<uint64_t>(numel) * c10::elementSize(dtype);
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size ||
          offsets[1] - offsets[0] != nbytes)
        throw Error(fmt::format("data offsets do not fit a {}-byte tensor in {} bytes of data (file truncated?)",
                                nbytes, data_size));
      auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      std::memcpy(t.data_ptr(), data + offsets[0], nbytes);
      file.tensors[name] = t;
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor '{}': {}", origin, name, e.what()));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}: tensor '{}': bad header entry ({})", origin, name, e.what()));
    }
  }
  return file;
}

void save_safetensors(const std::string& path, const TensorFile& file) {
  write_file_atomic(path, encode_safetensors(file));
}

TensorFile load_safetensors(const std::string& path) { return decode_safetensors(read_file(path), path); }

}  // namespace infini::io
