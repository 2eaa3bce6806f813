// Helpers shared by the C++ tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "infini/config.h"
#include "model/transformer.h"
#include "infini/error.h"

namespace infini::testing {

// A model small enough for finite differences: d_key != d_value so transposes cannot hide.
inline ModelConfig tiny_config(MemoryMode mode, torch::ScalarType dtype = torch::kFloat64) {
  ModelConfig c;
  c.vocab_size = 23;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.d_key = 4;
  c.d_value = 6;
  c.d_ff = 20;
  c.segment_len = 4;
  c.memory = mode;
  c.gate_init = 0.3;
  c.dtype = dtype;
  c.init_std = 0.3;  // large weights, so every path visibly changes the output
  // memory "knn": a memory that evicts from the third segment on, and a real choice among its keys.
  c.knn_tokens = 6;
  c.knn_top_k = 3;
  c.rmt_tokens = 2;  // memory "rmt"
  return c;
}

// tiny_config in float32 with the byte tokenizer's 256 ids: for tests that save, load, train or read text.
inline ModelConfig byte_level_config() {
  auto c = tiny_config(MemoryMode::InfiniDelta, torch::kFloat32);
  c.vocab_size = 256;
  return c;
}

// max |a - b| / max |reference|: relative to the tensor's scale, robust to entries near zero.
inline double max_rel_error(const torch::Tensor& actual, const torch::Tensor& reference) {
  const auto a = actual.detach().to(torch::kFloat64);
  const auto r = reference.detach().to(torch::kFloat64);
  const double scale = std::max(r.abs().max().item<double>(), 1e-300);
  return (a - r).abs().max().item<double>() / scale;
}

// Draws every parameter whose name contains `part` from U(-r, r); returns how many there were. The
// extensions start near the identity, where a path that ignored them would still pass.
inline int randomise(InfiniTransformer& model, const std::string& part, double r) {
  torch::NoGradGuard no_grad;
  int n = 0;
  for (auto& p : model->named_parameters())
    if (p.key().find(part) != std::string::npos) p.value().uniform_(-r, r), ++n;
  return n;
}

// A fresh, empty folder under the system temp folder.
inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("infini-test-{}-{}", name, ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Expects `fn` to throw infini::Error whose message contains every one of `needles`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

inline const MemoryMode kAllModes[] = {MemoryMode::InfiniLinear, MemoryMode::InfiniDelta, MemoryMode::None,
                                       MemoryMode::XL, MemoryMode::Knn, MemoryMode::Rmt};

// Test names for parameterised suites over kAllModes ("infini_delta", ...).
struct ModeName {
  template <typename Info>
  std::string operator()(const Info& info) const {
    std::string s = to_string(info.param);
    for (auto& ch : s)
      if (ch == '-') ch = '_';
    return s;
  }
};

}  // namespace infini::testing
