// Memory footprints of long-context models, in floats, from the formulas of the Infini-attention
// paper's Table 1 (arXiv 2404.07143; ../shared/REFERENCE.md): what each method keeps of the past to
// reach an effective context of N x S tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "infini/config.h"

namespace infini {

struct FootprintOptions {
  int64_t knn_tokens = 65536;  // Memorizing Transformers' kNN memory (one layer), N x S
  int64_t rmt_p = 100;         // RMT's memory vectors p
};

struct Footprint {
  std::string method;
  double floats = 0;
  std::string formula;
};

// Transformer-XL, Memorizing Transformers (kNN memory plus the XL cache of every layer), RMT and
// Infini-Transformer, for `config`'s layers, heads and segment length.
std::vector<Footprint> footprints(const ModelConfig& config, const FootprintOptions& options);

}  // namespace infini
