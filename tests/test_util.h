// Helpers shared by the C++ tests.
#pragma once

#include <string>

#include <torch/torch.h>

#include "model/config.h"

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
  return c;
}

// max |a - b| / max |reference|: relative to the tensor's scale, robust to entries near zero.
inline double max_rel_error(const torch::Tensor& actual, const torch::Tensor& reference) {
  const auto a = actual.detach().to(torch::kFloat64);
  const auto r = reference.detach().to(torch::kFloat64);
  const double scale = std::max(r.abs().max().item<double>(), 1e-300);
  return (a - r).abs().max().item<double>() / scale;
}

inline const MemoryMode kAllModes[] = {MemoryMode::InfiniLinear, MemoryMode::InfiniDelta,
                                       MemoryMode::None, MemoryMode::XL};

}  // namespace infini::testing
