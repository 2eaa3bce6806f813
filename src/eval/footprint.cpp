#include "eval/footprint.h"

namespace infini {

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
      {"Infini-Transformer", dk * (dv + 1) * H * l, "d_key (d_value + 1) H l"},
  };
}

}  // namespace infini
