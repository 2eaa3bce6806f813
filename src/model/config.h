// The model specification: what a checkpoint is, independent of any runtime state.
// Field meanings, defaults and allowed values: docs/MODEL.md.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace infini {

enum class MemoryMode { InfiniLinear, InfiniDelta, None, XL };

const char* to_string(MemoryMode mode);

struct ModelConfig {
  static constexpr int kFormatVersion = 1;

  int64_t vocab_size = 256;
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t d_key = 64;
  int64_t d_value = 64;
  int64_t d_ff = 682;
  int64_t segment_len = 256;
  MemoryMode memory = MemoryMode::InfiniDelta;
  // sigmoid(-3) = 0.047: each head starts as segment-local attention and opens its gate where the
  // memory pays; at 0 the memory, empty in every window's first segment, takes half the output from
  // the first step and training is slower (docs/EVALUATION.md, "Investigation").
  double gate_init = -3.0;
  bool tie_embeddings = false;
  torch::ScalarType dtype = torch::kFloat32;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double memory_eps = 1e-6;
  double init_std = 0.02;

  bool has_compressive_memory() const {
    return memory == MemoryMode::InfiniLinear || memory == MemoryMode::InfiniDelta;
  }
  // M and z accumulate over unbounded inputs, so they never drop below fp32.
  torch::ScalarType memory_dtype() const {
    return dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  }

  // Throws infini::Error naming the field and its allowed values.
  void validate() const;

  nlohmann::json to_json() const;
  // `origin` names the source (a file path) in error messages. A hand-written config may leave
  // fields at their defaults; a saved model's must have them all (`require_all`).
  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin, bool require_all = false);
  static ModelConfig from_file(const std::string& path, bool require_all = false);
};

}  // namespace infini
