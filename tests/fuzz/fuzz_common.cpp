#include "fuzz_common.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <mutex>

#include <fmt/format.h>
#include <torch/torch.h>

#include "util/runtime.h"

namespace infini::fuzz {

namespace fs = std::filesystem;

void setup() {
  static std::once_flag once;
  std::call_once(once, [] {
    torch::set_num_threads(1);
    set_thread_tuning(false);
  });
}

const std::string& scratch_dir() {
  // Never freed, so the exit handler below can still read it after static destructors have run.
  static const std::string* dir = [] {
    const auto d = fs::temp_directory_path() / fmt::format("infini-fuzz-{}", ::getpid());
    fs::remove_all(d);
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(*dir, ec);
    });
    return new std::string(d.string());
  }();
  return *dir;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  // Not io::write_file_atomic: its fsync would make the disk, not the loader, set the pace.
  const auto path = (fs::path(scratch_dir()) / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
  return path;
}

void remove_scratch(const std::string& name) {
  std::error_code ec;
  fs::remove(fs::path(scratch_dir()) / name, ec);
}

std::vector<std::string> split_parts(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const auto at = in.find(kPartMarker, start);
    if (at == std::string_view::npos) {
      parts.emplace_back(in.substr(start));
      return parts;
    }
    parts.emplace_back(in.substr(start, at - start));
    start = at + kPartMarker.size();
  }
}

std::string join_parts(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += kPartMarker;
    out += parts[i];
  }
  return out;
}

ModelConfig tiny_config(int64_t vocab, MemoryMode memory) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_key = 4;
  c.d_value = 4;
  c.d_ff = 8;
  c.segment_len = 4;
  c.memory = memory;
  return c;
}

AdamW optimizer_for(InfiniTransformer& model) {
  ParamGroup all{"all", {}, {}, 1e-3, 0.0};
  for (const auto& item : model->named_parameters()) {
    all.params.push_back(item.key());
    all.tensors.push_back(item.value());
  }
  return AdamW({all});
}

std::vector<ModelConfig> state_configs() {
  const auto base = tiny_config(16, MemoryMode::InfiniDelta);
  auto routed_conv = base;
  routed_conv.memory = MemoryMode::InfiniDelta;
  routed_conv.qk_conv = 3;
  routed_conv.mod_every = 2;
  routed_conv.mod_capacity = 0.5;
  auto routed_xl = base;
  routed_xl.memory = MemoryMode::XL;
  routed_xl.mod_every = 2;
  routed_xl.mod_capacity = 0.5;
  auto shift = base;
  shift.memory = MemoryMode::InfiniLinear;
  shift.memory_key_shift = true;
  return {routed_conv, routed_xl, shift};
}

}  // namespace infini::fuzz
