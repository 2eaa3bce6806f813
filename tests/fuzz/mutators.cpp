#include "mutators.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_common.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace infini::fuzz {
namespace {

using json = nlohmann::json;
using Rng = std::mt19937_64;

size_t pick(Rng& rng, size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }

json interesting_number(Rng& rng) {
  static const int64_t ints[] = {0, 1, -1, 2, 3, 4, 7, 8, 16, 255, 256, 65536, 2147483647, 2147483648LL,
                                 4294967296LL, 9007199254740993LL, 4611686018427387904LL,
                                 9223372036854775807LL, -9223372036854775807LL - 1};
  static const double reals[] = {0.5, -0.0, 1e-300, 5e-324, 1e308, -1e308, 3.5, -3.0};
  switch (pick(rng, 4)) {
    case 0: return json(reals[pick(rng, std::size(reals))]);
    case 1: return json(uint64_t{18446744073709551615ULL});
    default: return json(ints[pick(rng, std::size(ints))]);
  }
}

json interesting_value(Rng& rng) {
  static const char* const strings[] = {"", "x", "F32", "F64", "BF16", "I64", "U8", "BOOL", "F8", "infini",
                                        "infini-state", "infini-checkpoint", "1", "0", "-1",
                                        "18446744073709551616", "xl", "none", "knn", "rmt", "bfloat16", "sentencepiece",
                                        "byte", "/", "..", "tokenizer.model"};
  switch (pick(rng, 8)) {
    case 0: return json(strings[pick(rng, std::size(strings))]);
    case 1: return json(pick(rng, 2) == 0);
    case 2: return json(nullptr);
    case 3: return json::array({interesting_number(rng)});
    case 4: return json::object();
    default: return interesting_number(rng);
  }
}

// Every node of `j`; false when it nests deeper than the mutator goes (dump() recurses).
bool collect(json& j, std::vector<json*>& out, int depth = 0) {
  if (depth > 64) return false;
  out.push_back(&j);
  if (j.is_object() || j.is_array())
    for (auto& child : j)
      if (!collect(child, out, depth + 1)) return false;
  return true;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Changes one value somewhere in `j`; false when it cannot (too deep).
bool mutate_json(json& j, Rng& rng, int depth = 0) {
  std::vector<json*> nodes;
  if (!collect(j, nodes)) return false;
  json& node = *nodes[pick(rng, nodes.size())];
  if (node.is_string() && depth < 2) {
    // A string that holds JSON (a checkpoint's "config" and "run", a state's "position"): mutate inside.
    auto inner = json::parse(node.get<std::string>(), nullptr, false);
    if (!inner.is_discarded() && pick(rng, 4) != 0 && mutate_json(inner, rng, depth + 1)) {
      node = dump(inner);
      return true;
    }
  }
  switch (pick(rng, 6)) {
    case 0:
      if (node.is_object() && !node.empty()) {
        auto it = node.begin();
        std::advance(it, static_cast<long>(pick(rng, node.size())));
        node.erase(it);
        return true;
      }
      break;
    case 1:
      if (node.is_array()) {
        if (!node.empty() && pick(rng, 2) == 0) node.erase(pick(rng, node.size()));
        else node.push_back(interesting_number(rng));
        return true;
      }
      break;
    case 2:
      if (node.is_number_integer()) {
        // In uint64_t: wraps at the ends instead of overflowing.
        node = static_cast<int64_t>(node.get<uint64_t>() + pick(rng, 5) - 2);
        return true;
      }
      break;
    default: break;
  }
  node = node.is_number() || node.is_array() ? interesting_number(rng) : interesting_value(rng);
  return true;
}

size_t store(uint8_t* data, size_t max_size, const std::string& bytes, size_t size) {
  if (bytes.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, bytes.data(), bytes.size());
  return bytes.size();
}

// A safetensors file with one header value changed; empty when `bytes` has no parsable header.
std::string mutated_safetensors(const std::string& bytes, Rng& rng) {
  if (bytes.size() < 8) return {};
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8) return {};
  auto header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n), nullptr, false);
  if (header.is_discarded()) return {};
  std::string data = bytes.substr(8 + n);
  if (pick(rng, 8) == 0) data.resize(pick(rng, data.size() + 16));  // truncated or padded data
  else if (!mutate_json(header, rng)) return {};
  const auto text = dump(header);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text + data;
}

std::string mutated_json_text(const std::string& text, Rng& rng) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !mutate_json(j, rng)) return {};
  return dump(j);
}

}  // namespace

size_t mutate_safetensors(uint8_t* data, size_t size, size_t max_size, unsigned seed, size_t skip) {
  Rng rng(seed);
  if (size <= skip || pick(rng, 2) == 0) return LLVMFuzzerMutate(data, size, max_size);
  const std::string prefix(reinterpret_cast<char*>(data), skip);
  const auto out = mutated_safetensors(std::string(reinterpret_cast<char*>(data) + skip, size - skip), rng);
  if (out.empty()) return LLVMFuzzerMutate(data, size, max_size);
  return store(data, max_size, prefix + out, size);
}

size_t mutate_json_text(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  Rng rng(seed);
  if (pick(rng, 2) == 0) return LLVMFuzzerMutate(data, size, max_size);
  const auto out = mutated_json_text(std::string(reinterpret_cast<char*>(data), size), rng);
  if (out.empty()) return LLVMFuzzerMutate(data, size, max_size);
  return store(data, max_size, out, size);
}

size_t mutate_parts(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
  Rng rng(seed);
  if (pick(rng, 2) == 0) return LLVMFuzzerMutate(data, size, max_size);
  auto parts = split_parts(data, size);
  auto& part = parts[pick(rng, parts.size())];
  auto out = mutated_safetensors(part, rng);
  if (out.empty()) out = mutated_json_text(part, rng);
  if (out.empty()) {
    // Neither: libFuzzer's own mutation of this part alone.
    std::string buffer = part.empty() ? std::string("{}") : part;
    const auto used = buffer.size();
    buffer.resize(used * 2 + 64);
    buffer.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(buffer.data()), used, buffer.size()));
    out = buffer;
  }
  part = out;
  return store(data, max_size, join_parts(parts), size);
}

}  // namespace infini::fuzz
