#include "infini/config.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "infini/error.h"
#include "util/json_text.h"

namespace infini {
namespace {

struct FieldReader {
  const nlohmann::json& j;
  const std::string& origin;
  bool require_all;  // a saved model's config lists every field: a missing one means a damaged file
  std::set<std::string> seen;

  bool present(const char* field) {
    seen.insert(field);
    if (j.contains(field)) return true;
    if (require_all)
      throw Error(fmt::format("{}: missing field '{}' (a saved model's config.json lists every field; "
                              "re-save the model or restore the file)", origin, field));
    return false;
  }

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(fmt::format("{}: field '{}' {}", origin, field, why));
  }

  void integer(const char* field, int64_t& out) {
    if (!present(field)) return;
    const auto& v = j.at(field);
    if (!v.is_number_integer()) fail(field, fmt::format("must be an integer, got {}", quote_json(v)));
    out = v.get<int64_t>();
  }
  void real(const char* field, double& out) {
    if (!present(field)) return;
    const auto& v = j.at(field);
    if (!v.is_number()) fail(field, fmt::format("must be a number, got {}", quote_json(v)));
    out = v.get<double>();
  }
  void boolean(const char* field, bool& out) {
    if (!present(field)) return;
    const auto& v = j.at(field);
    if (!v.is_boolean()) fail(field, fmt::format("must be true or false, got {}", quote_json(v)));
    out = v.get<bool>();
  }
  std::string string(const char* field, const std::string& fallback) {
    if (!present(field)) return fallback;
    const auto& v = j.at(field);
    if (!v.is_string()) fail(field, fmt::format("must be a string, got {}", quote_json(v)));
    return v.get<std::string>();
  }
};

const char* dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kBFloat16: return "bfloat16";
    default: return "unsupported";
  }
}

}  // namespace

const char* to_string(MemoryMode mode) {
  switch (mode) {
    case MemoryMode::InfiniLinear: return "infini-linear";
    case MemoryMode::InfiniDelta: return "infini-delta";
    case MemoryMode::None: return "none";
    case MemoryMode::XL: return "xl";
    case MemoryMode::Knn: return "knn";
    case MemoryMode::Rmt: return "rmt";
  }
  return "?";
}

const char* to_string(RouterWeight weight) { return weight == RouterWeight::Raw ? "raw" : "sigmoid"; }
const char* to_string(CausalSelector predictor) { return predictor == CausalSelector::Router ? "router" : "mlp"; }

void ModelConfig::validate() const {
  auto need = [](bool ok, const char* field, const std::string& rule) {
    if (!ok) throw Error(fmt::format("config field '{}' {}", field, rule));
  };
  // Each size is bounded above as well, so that no file can make the program allocate terabytes
  // before anything else is checked; the bounds sit far beyond any model a CPU or a GPU runs.
  const auto size = [&](int64_t value, const char* field, int64_t least, int64_t most) {
    need(value >= least && value <= most, field, fmt::format("must be from {} to {}, got {}", least, most, value));
  };
  size(vocab_size, "vocab_size", 2, kMaxVocab);
  size(d_model, "d_model", 1, kMaxWidth);
  size(n_layers, "n_layers", 1, kMaxLayers);
  size(n_heads, "n_heads", 1, kMaxHeads);
  need(d_key % 2 == 0, "d_key", fmt::format("must be even (RoPE rotates channel pairs), got {}", d_key));
  size(d_key, "d_key", 2, kMaxHeadWidth);
  size(d_value, "d_value", 1, kMaxHeadWidth);
  size(d_ff, "d_ff", 1, kMaxWidth);
  size(segment_len, "segment_len", 1, kMaxSegment);
  need(n_heads * std::max(d_key, d_value) <= kMaxWidth, "n_heads",
       fmt::format("times the head width ({} x {}) must be at most {}", n_heads, std::max(d_key, d_value), kMaxWidth));
  need(parameter_count() <= kMaxParameters, "d_model",
       fmt::format("and the other sizes make {:.3g} parameters; at most {:.3g} are allowed", parameter_count(),
                   kMaxParameters));
  // Real-valued fields become tensor values or scale them, in the model's dtype: each must be finite
  // and far inside what a float holds (sigmoid(±100) is already 0 or 1).
  need(std::isfinite(gate_init) && std::abs(gate_init) <= 100, "gate_init", "must be a number in [-100, 100]");
  need(std::isfinite(rope_theta) && rope_theta > 0 && rope_theta <= 1e12, "rope_theta", "must be in (0, 1e12]");
  need(std::isfinite(norm_eps) && norm_eps > 0 && norm_eps <= 1, "norm_eps", "must be in (0, 1]");
  need(std::isfinite(memory_eps) && memory_eps > 0 && memory_eps <= 1, "memory_eps", "must be in (0, 1]");
  need(std::isfinite(init_std) && init_std > 0 && init_std <= 10, "init_std", "must be in (0, 10]");
  need(mod_every >= 0, "mod_every", fmt::format("must be >= 0 (0: no routing), got {}", mod_every));
  need(mod_capacity > 0 && mod_capacity <= 1, "mod_capacity", fmt::format("must be in (0, 1], got {}", mod_capacity));
  need(std::isfinite(mod_aux_weight) && mod_aux_weight >= 0, "mod_aux_weight", "must be a finite number >= 0");
  size(mod_predictor_hidden, "mod_predictor_hidden", 1, kMaxWidth);
  need(!memory_key_shift || has_compressive_memory(), "memory_key_shift",
       fmt::format("needs a compressive memory (infini-linear or infini-delta), not '{}'", to_string(memory)));
  need(qk_conv == 0 || (qk_conv >= 2 && qk_conv <= 8), "qk_conv",
       fmt::format("must be 0 (off) or a width of 2..8 tokens, got {}", qk_conv));
  need(qk_conv == 0 || !memory_key_shift, "qk_conv",
       "replaces \"memory_key_shift\" (a width-2 convolution can learn its shift); set one of the two");
  size(knn_tokens, "knn_tokens", 1, kMaxKnnTokens);
  size(knn_top_k, "knn_top_k", 1, kMaxKnnTopK);
  size(knn_layer, "knn_layer", -1, n_layers - 1);
  size(rmt_tokens, "rmt_tokens", 1, kMaxRmtTokens);
  need(segment_len + 2 * rmt_rows() <= kMaxSegment, "rmt_tokens",
       fmt::format("with segment_len makes segments of {} rows; at most {}", segment_len + 2 * rmt_rows(), kMaxSegment));
  if (memory == MemoryMode::Knn || memory == MemoryMode::Rmt) {
    // The baselines as their papers run them: dense blocks, plain queries and keys.
    need(mod_every == 0, "mod_every", fmt::format("must be 0 with memory \"{}\" (its blocks are dense)", to_string(memory)));
    need(qk_conv == 0, "qk_conv", fmt::format("must be 0 with memory \"{}\"", to_string(memory)));
  }
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j = {{"format_version", kFormatVersion},
                      {"vocab_size", vocab_size},
                      {"d_model", d_model},
                      {"n_layers", n_layers},
                      {"n_heads", n_heads},
                      {"d_key", d_key},
                      {"d_value", d_value},
                      {"d_ff", d_ff},
                      {"segment_len", segment_len},
                      {"memory", to_string(memory)},
                      {"gate_init", gate_init},
                      {"tie_embeddings", tie_embeddings},
                      {"dtype", dtype_name(dtype)},
                      {"rope_theta", rope_theta},
                      {"norm_eps", norm_eps},
                      {"memory_eps", memory_eps},
                      {"init_std", init_std}};
  // Only a routed model lists the mod_* fields, so a dense model's config, and with it its identity
  // (infer/session.h), stay what they were before Mixture-of-Depths existed.
  if (mod_every > 0)
    j.update({{"mod_every", mod_every},
              {"mod_capacity", mod_capacity},
              {"mod_router", to_string(mod_router)},
              {"mod_predictor", to_string(mod_predictor)},
              {"mod_aux_weight", mod_aux_weight},
              {"mod_predictor_hidden", mod_predictor_hidden}});
  // Likewise listed only when on.
  if (memory_key_shift) j["memory_key_shift"] = true;
  if (qk_conv > 0) j["qk_conv"] = qk_conv;
  if (memory == MemoryMode::Knn)
    j.update({{"knn_tokens", knn_tokens}, {"knn_top_k", knn_top_k}, {"knn_layer", knn_layer}});
  if (memory == MemoryMode::Rmt) j["rmt_tokens"] = rmt_tokens;
  return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& origin, bool require_all) {
  if (!j.is_object()) throw Error(fmt::format("{}: a config must be a JSON object", origin));
  ModelConfig c;
  FieldReader r{j, origin, require_all, {}};
  int64_t version = kFormatVersion;
  r.integer("format_version", version);
  if (version != kFormatVersion)
    r.fail("format_version", fmt::format("is {}; this build reads version {}. Re-save the model "
                                         "with a matching infini, or update infini",
                                         version, kFormatVersion));
  r.integer("vocab_size", c.vocab_size);
  r.integer("d_model", c.d_model);
  r.integer("n_layers", c.n_layers);
  r.integer("n_heads", c.n_heads);
  r.integer("d_key", c.d_key);
  r.integer("d_value", c.d_value);
  r.integer("d_ff", c.d_ff);
  r.integer("segment_len", c.segment_len);
  r.real("gate_init", c.gate_init);
  r.boolean("tie_embeddings", c.tie_embeddings);
  r.real("rope_theta", c.rope_theta);
  r.real("norm_eps", c.norm_eps);
  r.real("memory_eps", c.memory_eps);
  r.real("init_std", c.init_std);

  // Models saved before Mixture-of-Depths lack the mod_* fields: they are dense, mod_every 0; and
  // models without the extensions lack memory_key_shift and qk_conv.
  FieldReader optional{j, origin, false, {}};
  optional.integer("mod_every", c.mod_every);
  optional.real("mod_capacity", c.mod_capacity);
  optional.real("mod_aux_weight", c.mod_aux_weight);
  optional.integer("mod_predictor_hidden", c.mod_predictor_hidden);
  optional.boolean("memory_key_shift", c.memory_key_shift);
  optional.integer("qk_conv", c.qk_conv);
  // Two extensions that gave no lasting help were removed after commit dfe01e6 (their records:
  // experiments/passkey-local-key-shift, experiments/passkey-query-width). qk_conv_query_width only
  // chose where qk_conv's taps started, so a model saved with it loads as it is; a model trained with
  // local_key_shift attends in a way this build no longer computes.
  bool local_key_shift = false;
  optional.boolean("local_key_shift", local_key_shift);
  if (local_key_shift)
    optional.fail("local_key_shift", "is true, an extension removed after infini commit dfe01e6; read this model "
                                     "with that commit's build (git checkout dfe01e6), or retrain it without it");
  int64_t qk_conv_query_width = 1;
  optional.integer("qk_conv_query_width", qk_conv_query_width);
  const auto router = optional.string("mod_router", to_string(c.mod_router));
  if (router == "raw") c.mod_router = RouterWeight::Raw;
  else if (router == "sigmoid") c.mod_router = RouterWeight::Sigmoid;
  else optional.fail("mod_router", fmt::format("is '{}'; allowed: raw, sigmoid", router));
  const auto predictor = optional.string("mod_predictor", to_string(c.mod_predictor));
  if (predictor == "router") c.mod_predictor = CausalSelector::Router;
  else if (predictor == "mlp") c.mod_predictor = CausalSelector::Mlp;
  else optional.fail("mod_predictor", fmt::format("is '{}'; allowed: router, mlp", predictor));
  r.seen.insert(optional.seen.begin(), optional.seen.end());

  const auto memory = r.string("memory", to_string(c.memory));
  if (memory == "infini-linear") c.memory = MemoryMode::InfiniLinear;
  else if (memory == "infini-delta") c.memory = MemoryMode::InfiniDelta;
  else if (memory == "none") c.memory = MemoryMode::None;
  else if (memory == "xl") c.memory = MemoryMode::XL;
  else if (memory == "knn") c.memory = MemoryMode::Knn;
  else if (memory == "rmt") c.memory = MemoryMode::Rmt;
  else r.fail("memory", fmt::format("is '{}'; allowed: infini-linear, infini-delta, none, xl, knn, rmt", memory));
  // The kNN memory's fields belong to knn models alone, and a saved knn model lists them all.
  FieldReader knn{j, origin, require_all && c.memory == MemoryMode::Knn, {}};
  knn.integer("knn_tokens", c.knn_tokens);
  knn.integer("knn_top_k", c.knn_top_k);
  knn.integer("knn_layer", c.knn_layer);
  for (const char* field : {"knn_tokens", "knn_top_k", "knn_layer"})
    if (j.contains(field) && c.memory != MemoryMode::Knn)
      knn.fail(field, fmt::format("is set, but the memory is '{}'; it belongs to memory \"knn\"", memory));
  r.seen.insert(knn.seen.begin(), knn.seen.end());
  FieldReader rmt{j, origin, require_all && c.memory == MemoryMode::Rmt, {}};
  rmt.integer("rmt_tokens", c.rmt_tokens);
  if (j.contains("rmt_tokens") && c.memory != MemoryMode::Rmt)
    rmt.fail("rmt_tokens", fmt::format("is set, but the memory is '{}'; it belongs to memory \"rmt\"", memory));
  r.seen.insert(rmt.seen.begin(), rmt.seen.end());

  const auto dtype = r.string("dtype", dtype_name(c.dtype));
  if (dtype == "float32") c.dtype = torch::kFloat32;
  else if (dtype == "float64") c.dtype = torch::kFloat64;
  else if (dtype == "bfloat16") c.dtype = torch::kBFloat16;
  else r.fail("dtype", fmt::format("is '{}'; allowed: float32, float64, bfloat16", dtype));

  for (const auto& item : j.items())
    if (!r.seen.count(item.key()))
      throw Error(fmt::format("{}: unknown field '{}' (see docs/MODEL.md for the config fields)",
                              origin, item.key()));
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", origin, e.what()));
  }
  return c;
}

std::map<std::string, std::vector<int64_t>> ModelConfig::parameter_shapes() const {
  // The model's named_parameters() (model/transformer.h, block.h, attention.h, layers.h,
  // routing/predictor.h), from the sizes alone; a test holds the two equal in every mode.
  std::map<std::string, std::vector<int64_t>> shapes;
  const int64_t D = d_model, H = n_heads;
  shapes["embed.weight"] = {vocab_size, D};
  if (memory == MemoryMode::Rmt) shapes["rmt_memory"] = {rmt_tokens, D};
  for (int64_t i = 0; i < n_layers; ++i) {
    const auto block = fmt::format("blocks.{}.", i);
    shapes[block + "attn_norm.weight"] = {D};
    shapes[block + "attn.qkv_proj.weight"] = {H * (2 * d_key + d_value), D};
    shapes[block + "attn.out_proj.weight"] = {D, H * d_value};
    if (has_compressive_memory() || i == knn_block()) shapes[block + "attn.gate"] = {H};
    if (i == knn_block()) shapes[block + "attn.knn_log_scale"] = {H};
    if (memory_key_shift) shapes[block + "attn.key_shift"] = {H};
    if (qk_conv > 0) {
      shapes[block + "attn.q_conv"] = {H, d_key, qk_conv};
      shapes[block + "attn.k_conv"] = {H, d_key, qk_conv};
    }
    shapes[block + "mlp_norm.weight"] = {D};
    shapes[block + "mlp.gate_up_proj.weight"] = {2 * d_ff, D};
    shapes[block + "mlp.down_proj.weight"] = {D, d_ff};
    if (is_routed(i)) {
      shapes[block + "router.weight"] = {1, D};
      shapes[block + "predictor.hidden.weight"] = {mod_predictor_hidden, D};
      shapes[block + "predictor.hidden.bias"] = {mod_predictor_hidden};
      shapes[block + "predictor.out.weight"] = {1, mod_predictor_hidden};
      shapes[block + "predictor.out.bias"] = {1};
    }
  }
  shapes["norm.weight"] = {D};
  if (!tie_embeddings) shapes["lm_head.weight"] = {vocab_size, D};
  return shapes;
}

double ModelConfig::parameter_count() const {
  // In double, and from the sizes alone: validate() calls it on sizes no model could hold.
  const double V = static_cast<double>(vocab_size), D = static_cast<double>(d_model),
               H = static_cast<double>(n_heads), F = static_cast<double>(d_ff);
  const double dk = static_cast<double>(d_key), dv = static_cast<double>(d_value);
  double block = 2 * D + D * H * (2 * dk + dv) + H * dv * D + 3 * D * F;
  if (has_compressive_memory()) block += H;
  if (memory_key_shift) block += H;
  if (qk_conv > 0) block += 2 * H * dk * static_cast<double>(qk_conv);
  const double Ph = static_cast<double>(mod_predictor_hidden);
  const double routed = D + D * Ph + Ph + Ph + 1;
  const double knn = memory == MemoryMode::Knn ? 2 * H : 0;  // the kNN block's gate and log scale
  const double rmt = static_cast<double>(rmt_rows()) * D;    // RMT's learned first memory
  return V * D + D + (tie_embeddings ? 0 : V * D) + static_cast<double>(n_layers) * block +
         static_cast<double>(routed_blocks()) * routed + knn + rmt;
}

ModelConfig ModelConfig::from_file(const std::string& path, bool require_all) {
  std::string text;
  try {
    text = io::read_file(path);
  } catch (const Error&) {
    throw Error(fmt::format("{}: cannot open config file", path));
  }
  return parse(text, path, require_all);
}

ModelConfig ModelConfig::parse(const std::string& json_text, const std::string& origin, bool require_all) {
  return from_json(parse_json(json_text, origin), origin, require_all);
}

}  // namespace infini
