// `infini bench --model DIR`: how fast a session reads (prefill) and generates (decode), and how
// much memory reading takes as the input grows.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/transformer.h"

namespace infini {

struct SessionBenchOptions {
  std::vector<int64_t> lengths = {16384, 131072, 1048576};  // tokens read, each by a fresh session
  int64_t decode_tokens = 256;  // generated after the longest read
  bool fused_decode = true;     // false: decode through the general forward pass, for comparison
};

// Per length: tokens/s and the peak resident memory while reading (sampled every 10 ms). Then decode
// tokens/s with the longest input as context.
nlohmann::json run_session_bench(InfiniTransformer model, const SessionBenchOptions& options);

}  // namespace infini
