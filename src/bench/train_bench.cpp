#include "bench/train_bench.h"

#include <algorithm>
#include <chrono>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "bench/flops.h"
#include "model/transformer.h"
#include "train/trainer.h"
#include "util/runtime.h"

namespace infini {

nlohmann::json run_train_bench(const ModelConfig& config, const TrainBenchOptions& b) {
  torch::manual_seed(0);
  InfiniTransformer model(config);
  TrainOptions o;
  o.batch = b.batch;
  o.window = b.window;
  o.bptt_segments = b.bptt_segments;
  o.steps = b.warmup_steps + b.steps;
  o.warmup = 1;
  o.autocast_bf16 = b.autocast_bf16;
  auto optimizer = make_optimizer(model, o);
  const auto tokens = torch::randint(config.vocab_size, {b.batch, b.window + 1}, torch::kInt64);  // (B, W+1)
  std::vector<std::vector<int64_t>> examples;
  for (int64_t i = 0; i < b.batch; ++i) {
    const auto row = tokens[i].contiguous();
    examples.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + b.window + 1);
  }
  const std::vector<data::Batch> batches{data::make_batch(examples, b.window)};

  using clock = std::chrono::steady_clock;
  std::vector<double> step_seconds;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  // The steps run as `infini train` runs them, on the thread count it measures.
  auto threads = training_thread_tuner();
  std::vector<int> step_threads;
  for (int64_t step = 0; step < o.steps; ++step) {
    if (step == b.warmup_steps && !b.profile_path.empty())
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(b.profile_path);
    const int n = threads.threads();
    const auto t0 = clock::now();
    {
      const ScopedThreads scoped(n);
      train_step(model, optimizer, batches, o, step);
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    threads.record(dt);
    if (step >= b.warmup_steps) {
      step_seconds.push_back(dt);
      step_threads.push_back(n);
    }
    fmt::print(stderr, "bench step {}/{}: {:.3f}s on {} thread{}{}\n", step + 1, o.steps, dt, n, n == 1 ? "" : "s",
               step < b.warmup_steps ? " (warm-up)" : "");
  }
  profile.reset();  // writes the trace
  std::sort(step_seconds.begin(), step_seconds.end());
  const double median = step_seconds[step_seconds.size() / 2];
  const double tokens_per_step = static_cast<double>(b.batch * b.window);
  const double tok_s = tokens_per_step / median;
  const double flops_per_token = train_flops_per_token(config);
  const double peak = measure_matmul_peak();
  return {{"config", config.to_json()},
          {"parameters", model->parameter_count()},
          {"threads", at::get_num_threads()},
          {"step_threads", step_threads},
          {"blas", loaded_blas()},
          {"batch", b.batch},
          {"window", b.window},
          {"bptt_segments", b.bptt_segments},
          {"autocast_bf16", b.autocast_bf16},
          {"timed_steps", b.steps},
          {"step_seconds_median", median},
          {"step_seconds_min", step_seconds.front()},
          {"train_tokens_per_second", tok_s},
          {"train_flops_per_token", flops_per_token},
          {"achieved_flops", tok_s * flops_per_token},
          {"matmul_peak_flops", peak},
          {"mfu", tok_s * flops_per_token / peak}};
}

}  // namespace infini
