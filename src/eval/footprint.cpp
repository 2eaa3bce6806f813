#include "eval/footprint.h"

namespace infini {

namespace {

// M and z per head and layer; under qk_conv also the raw query and key rows that the next segment's
// first tokens convolve with (memory/state.h), which the paper's model does not have.
Footprint infini_footprint(const ModelConfig& c) {
  const double dk = static_cast<double>(c.d_key), dv = static_cast<double>(c.d_value);
  const double H = static_cast<double>(c.n_heads), l = static_cast<double>(c.n_layers);
  if (c.qk_conv == 0) return {"Infini-Transformer", dk * (dv + 1) * H * l, "d_key (d_value + 1) H l"};
  return {"Infini-Transformer", (dk * (dv + 1) + 2.0 * static_cast<double>(c.qk_conv - 1) * dk) * H * l,
          "(d_key (d_value + 1) + 2 (qk_conv - 1) d_key) H l"};
}

}  // namespace

std::vector<Footprint> footprints(const ModelConfig& c, const FootprintOptions& o) {
  const double dk = static_cast<double>(c.d_key), dv = static_cast<double>(c.d_value);
  const double H = static_cast<double>(c.n_heads), N = static_cast<double>(c.segment_len);
  const double l = static_cast<double>(c.n_layers), D = static_cast<double>(c.d_model);
  const double xl = (dk + dv) * H * N * l;
  return {
      {"Transformer-XL", xl, "(d_key + d_value) H N l"},
      // The paper's 183M for its config is the kNN memory of one layer plus the XL cache.
      {"Memorizing Transformers", (dk + dv) * H * static_cast<double>(o.knn_tokens) + xl,
       "(d_key + d_value) H (N S) + XL cache"},
      {"RMT", D * static_cast<double>(o.rmt_p) * l * 2, "d_model p l 2"},
      infini_footprint(c),
  };
}

}  // namespace infini
