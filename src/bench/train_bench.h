// `infini bench`: training throughput of a config on random tokens, as tokens/s and MFU.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "infini/config.h"

namespace infini {

struct TrainBenchOptions {
  int64_t batch = 4;
  int64_t window = 2048;
  int64_t warmup_steps = 2;
  int64_t steps = 5;
  int64_t bptt_segments = 0;
  bool autocast_bf16 = false;
  std::string profile_path;  // if set, a Chrome trace of the timed steps (chrome://tracing)
};

// Runs the benchmark and returns its figures (all stable field names).
nlohmann::json run_train_bench(const ModelConfig& config, const TrainBenchOptions& options);

}  // namespace infini
