#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "infini/error.h"
#include "util/hash.h"
#include "util/json_text.h"

namespace infini::io {
namespace {

// The format's own limit (safetensors' specification): a header beyond it is not a safetensors file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Files infini writes carry their data's checksum (util/hash.h) in this metadata field; files from
// elsewhere may lack it.
const char* const kChecksumKey = "infini_checksum";

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
  // The data's checksum goes into the metadata, which precedes the data: hash the data first.
  std::string data;
  data.reserve(offset);
  for (const auto& t : contiguous) data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  auto metadata = file.metadata;
  metadata[kChecksumKey] = fmt::format("{:016x}", checksum64(data.data(), data.size()));
  header["__metadata__"] = metadata;
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  out += data;
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
  if (n > kMaxHeaderBytes)
    throw Error(fmt::format("{}: safetensors header of {} bytes; the format allows at most {}", origin, n,
                            kMaxHeaderBytes));
  const std::string header_text = bytes.substr(8, n);
  // The header is a JSON object, padded at its end with spaces only (the format's rule): a header
  // length that is off by even one byte then fails here, instead of shifting every tensor's data.
  const auto last = header_text.find_last_not_of(' ');
  if (header_text.empty() || header_text.front() != '{' || last == std::string::npos || header_text[last] != '}')
    throw Error(fmt::format("{}: corrupt safetensors header (it must be one JSON object, padded with spaces; "
                            "is the 8-byte header length right?)", origin));
  const nlohmann::json header = parse_json(header_text, origin + ": corrupt safetensors header");
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  struct Extent {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Extent> extents;
  TensorFile file;
  for (const auto& [name, entry] : header.items()) {
    try {
      if (name == "__metadata__") {
        if (!entry.is_object()) throw Error("must be an object of strings");
        for (const auto& [k, v] : entry.items()) {
          if (!v.is_string()) throw Error(fmt::format("field '{}' must be a string", k));
          file.metadata[k] = v.get<std::string>();
        }
        continue;
      }
      if (!entry.is_object()) throw Error("must be an object with dtype, shape and data_offsets");
      const auto dtype = name_to_dtype(entry.at("dtype").get<std::string>(), origin, name);
      // Integers only: a float such as 1e30 would convert out of range (undefined behaviour).
      const auto& fields = entry;  // a structured binding cannot be captured in C++17
      const auto integers = [&fields](const char* field) {
        const auto& list = fields.at(field);
        if (!list.is_array()) throw Error(fmt::format("'{}' must be a list of integers", field));
        std::vector<uint64_t> out;
        for (const auto& v : list) {
          if (!v.is_number_unsigned() || v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
            throw Error(fmt::format("'{}' must hold integers from 0 to 2^63-1, got {}", field, quote_json(v)));
          out.push_back(v.get<uint64_t>());
        }
        return out;
      };
      const auto dims = integers("shape");
      const std::vector<int64_t> shape(dims.begin(), dims.end());
      const auto offsets = integers("data_offsets");
      if (offsets.size() != 2 || offsets[0] > offsets[1])
        throw Error("data_offsets must be [begin, end] with begin <= end");
      // Element count and byte size, each multiplication checked: a shape whose size wraps 64 bits
      // would otherwise pass as a small tensor.
      // The strides LibTorch computes multiply the nonzero dimensions even of an empty tensor, so
      // they must not overflow either.
      uint64_t nbytes = c10::elementSize(dtype), strided = c10::elementSize(dtype);
      for (auto s : shape) {
        if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(s), &nbytes) ||
            __builtin_mul_overflow(strided, static_cast<uint64_t>(std::max<int64_t>(s, 1)), &strided) ||
            strided > static_cast<uint64_t>(INT64_MAX))
          throw Error(fmt::format("shape [{}] is too large to address", fmt::join(shape, ", ")));
      }
      if (offsets[1] > data_size)
        throw Error(fmt::format("data_offsets end at byte {}, but the file holds only {} bytes of data (file "
                                "truncated?)", offsets[1], data_size));
      if (offsets[1] - offsets[0] != nbytes)
        throw Error(fmt::format("dtype {} and shape [{}] make {} bytes, but data_offsets span {}",
                                entry.at("dtype").get<std::string>(), fmt::join(shape, ", "), nbytes,
                                offsets[1] - offsets[0]));
      extents.push_back({offsets[0], offsets[1], name});
      auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      if (nbytes > 0) std::memcpy(t.data_ptr(), data + offsets[0], nbytes);
      file.tensors[name] = t;
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor '{}': {}", origin, name, e.what()));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}: tensor '{}': bad header entry ({})", origin, name, e.what()));
    }
  }
  // The tensors tile the data exactly, as the format requires: no overlaps, no gaps, nothing after.
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t covered = 0;
  for (const auto& e : extents) {
    if (e.begin != covered)
      throw Error(fmt::format("{}: tensor '{}' starts at data byte {}, expected {} (tensors must tile the data "
                              "without gaps or overlaps)", origin, e.name, e.begin, covered));
    covered = e.end;
  }
  if (covered != data_size)
    throw Error(fmt::format("{}: the tensors cover {} bytes of data, but the file holds {} (trailing bytes, or "
                            "a wrong header length)", origin, covered, data_size));
  const auto stored = file.metadata.find(kChecksumKey);
  if (stored != file.metadata.end() && stored->second != fmt::format("{:016x}", checksum64(data, data_size)))
    throw Error(fmt::format("{}: the data does not match its checksum; the file is damaged (a flipped bit or a "
                            "torn copy). Copy it again from its source", origin));
  return file;
}

void save_safetensors(const std::string& path, const TensorFile& file) {
  write_file_atomic(path, encode_safetensors(file));
}

TensorFile load_safetensors(const std::string& path) { return decode_safetensors(read_file(path), path); }

}  // namespace infini::io
