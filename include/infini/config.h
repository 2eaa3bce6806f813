// The model specification: what a checkpoint is, independent of any runtime state.
// Field meanings, defaults and allowed values: docs/MODEL.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace infini {

// Knn: Memorizing Transformers' baseline (arXiv 2203.08913): the XL cache in every block, and in one
// block an external memory of the document's past keys and values, read by exact top-k search.
// Rmt: the Recurrent Memory Transformer's baseline (arXiv 2207.06881): rmt_tokens memory embeddings
// read before each segment and written after it, the written outputs the next segment's memory.
enum class MemoryMode { InfiniLinear, InfiniDelta, None, XL, Knn, Rmt };
// Mixture-of-Depths: how a routed block weighs its update (w(r) in docs/MODEL.md), and what selects
// tokens when routing must be causal.
enum class RouterWeight { Raw, Sigmoid };
enum class CausalSelector { Router, Mlp };
// How a forward pass selects the tokens a routed block takes (Mixture-of-Depths models only).
enum class Routing {
  TopK,    // the k = ceil(capacity * n) tokens with the largest router logits, per row and segment
  Causal,  // every token on its own: router logit > 0, or predictor logit > 0 (`mod_predictor`)
};

const char* to_string(MemoryMode mode);
const char* to_string(RouterWeight weight);
const char* to_string(CausalSelector predictor);

struct ModelConfig {
  static constexpr int kFormatVersion = 1;
  // Upper bounds on the sizes a config may give (validate()). Hostile files are refused with the
  // field named instead of allocating; every real model is far inside them.
  static constexpr int64_t kMaxVocab = int64_t{1} << 24;
  static constexpr int64_t kMaxWidth = int64_t{1} << 16;  // d_model, d_ff, n_heads x head width
  static constexpr int64_t kMaxHeadWidth = 4096;
  static constexpr int64_t kMaxHeads = 1024;
  static constexpr int64_t kMaxLayers = 1024;
  // A segment's attention scores are segment_len^2 per head.
  static constexpr int64_t kMaxSegment = 16384;
  static constexpr double kMaxParameters = 1e12;

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
  // the first step and training is slower (experiments/memory-modes-investigation).
  double gate_init = -3.0;
  bool tie_embeddings = false;
  torch::ScalarType dtype = torch::kFloat32;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double memory_eps = 1e-6;
  double init_std = 0.02;
  // Mixture-of-Depths (arXiv 2404.02258; docs/MODEL.md). mod_every 0: every block dense.
  int64_t mod_every = 0;
  double mod_capacity = 0.125;
  RouterWeight mod_router = RouterWeight::Raw;
  CausalSelector mod_predictor = CausalSelector::Router;
  double mod_aux_weight = 0.01;
  int64_t mod_predictor_hidden = 64;
  // An extension, not in the paper (docs/MODEL.md): each key the memory is written with is moved
  // toward the key before it in the segment by a learned per-head share, so the memory can be keyed
  // by what precedes a token (ordered recall), not only by the token itself.
  bool memory_key_shift = false;
  // A second extension, in place of that one: a short causal convolution over the sequence, per head
  // and channel, turns each query and key into a learned mix of the raw ones at this token and the
  // qk_conv - 1 before it (across segment boundaries), as the short convolutions of H3 and Based do. A
  // channel can then hold the token before, or the one before that, so the memory and the local
  // attention can find "the token after these two" where a digit repeats. 0: off; else the width.
  int64_t qk_conv = 0;
  // memory "knn" only (docs/MODEL.md, "kNN memory"): the external memory's capacity in tokens per
  // head (first in, first out), the keys each query retrieves, and its block (-1: the one before the
  // last, or block 0 in a one-block model).
  int64_t knn_tokens = 65536;
  int64_t knn_top_k = 32;
  int64_t knn_layer = -1;
  // memory "rmt" only (docs/MODEL.md, "Recurrent memory"): memory embeddings per segment.
  int64_t rmt_tokens = 16;
  static constexpr int64_t kMaxRmtTokens = 4096;
  static constexpr int64_t kMaxKnnTokens = int64_t{1} << 24;
  static constexpr int64_t kMaxKnnTopK = 4096;

  bool has_compressive_memory() const {
    return memory == MemoryMode::InfiniLinear || memory == MemoryMode::InfiniDelta;
  }
  // The previous segment's keys and values, cached in every block (xl, and knn's base model).
  bool has_xl_cache() const { return memory == MemoryMode::XL || memory == MemoryMode::Knn; }
  // Memory rows RMT reads before a segment's tokens (and writes after them); 0 in other modes.
  int64_t rmt_rows() const { return memory == MemoryMode::Rmt ? rmt_tokens : 0; }
  // The block that holds the kNN memory (knn_layer resolved), or -1 when the memory is not knn.
  int64_t knn_block() const {
    if (memory != MemoryMode::Knn) return -1;
    return knn_layer >= 0 ? knn_layer : std::max<int64_t>(0, n_layers - 2);
  }
  // Block i (0-based) is routed: every mod_every-th block, counting from 1, so block 0 stays dense.
  bool is_routed(int64_t block) const { return mod_every > 0 && (block + 1) % mod_every == 0; }
  int64_t routed_blocks() const { return mod_every > 0 ? n_layers / mod_every : 0; }
  // M and z accumulate over unbounded inputs, so they never drop below fp32.
  torch::ScalarType memory_dtype() const {
    return dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  }

  // Throws infini::Error naming the field and its allowed values.
  void validate() const;
  // The parameters a model of this config has, computed from the sizes alone (no allocation), as a
  // double so that any sizes give a finite answer.
  double parameter_count() const;
  // Every parameter's name (as in named_parameters() and model.safetensors) and shape, from the
  // sizes alone: weights are checked against it before a model is built. Call it on a validated
  // config only.
  std::map<std::string, std::vector<int64_t>> parameter_shapes() const;

  nlohmann::json to_json() const;
  // `origin` names the source (a file path) in error messages. A hand-written config may leave
  // fields at their defaults; a saved model's must have them all (`require_all`).
  static ModelConfig from_json(const nlohmann::json& j, const std::string& origin, bool require_all = false);
  static ModelConfig from_file(const std::string& path, bool require_all = false);
  // From JSON text, nested at most 64 deep (hostile text is refused, never followed).
  static ModelConfig parse(const std::string& json_text, const std::string& origin, bool require_all = false);
};

}  // namespace infini
