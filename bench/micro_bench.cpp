// Google Benchmark micro-benchmarks of the pieces of a training step, at the reference config's
// shapes (batch 4, 4 heads, d 64) with its 256-token segments and the passkey fine-tune's 64-token
// ones; the arguments are threads, then segment length. Run: build/bench/infini_micro_bench
#include <array>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "kernels/attention_cpu.h"
#include "memory/compressive.h"
#include "util/runtime.h"

namespace {

constexpr int64_t kB = 4, kH = 4, kD = 64;

torch::Tensor causal_bias(int64_t n) {
  return torch::zeros({n, n}).masked_fill_(torch::ones({n, n}, torch::kBool).triu(1),
                                           -std::numeric_limits<float>::infinity());
}

// Q, K and V of one n-token segment, (B, H, n, D) each, with gradients.
std::array<torch::Tensor, 3> segment_qkv(int64_t n) {
  return {torch::randn({kB, kH, n, kD}, torch::requires_grad()),
          torch::randn({kB, kH, n, kD}, torch::requires_grad()),
          torch::randn({kB, kH, n, kD}, torch::requires_grad())};
}

// Threads 1 and 2, each at segments of 256 and 64 tokens.
void threads_and_segments(benchmark::internal::Benchmark* b) {
  for (const int64_t threads : {1, 2})
    for (const int64_t n : {256, 64}) b->Args({threads, n});
}

// Attention forward + backward with LibTorch's own ops (what autograd does without our kernel).
void BM_AttentionLibTorchOps(benchmark::State& state) {
  infini::set_threads(static_cast<int>(state.range(0)));
  const int64_t n = state.range(1);
  const auto [q, k, v] = segment_qkv(n);
  const auto bias = causal_bias(n);
  for (auto _ : state) {
    auto scores = torch::baddbmm(bias, q.reshape({-1, n, kD}), k.reshape({-1, n, kD}).transpose(1, 2), 1.0, 0.125);
    auto out = torch::bmm(torch::softmax(scores, -1), v.reshape({-1, n, kD}));
    out.sum().backward();
  }
  state.SetItemsProcessed(state.iterations() * kB * n);
}
BENCHMARK(BM_AttentionLibTorchOps)->Apply(threads_and_segments)->Unit(benchmark::kMillisecond);

void BM_AttentionKernel(benchmark::State& state) {
  infini::set_threads(static_cast<int>(state.range(0)));
  const int64_t n = state.range(1);
  const auto [q, k, v] = segment_qkv(n);
  const auto bias = causal_bias(n);
  for (auto _ : state) infini::kernels::attention_cpu(q, k, v, bias, 0.125).sum().backward();
  state.SetItemsProcessed(state.iterations() * kB * n);
}
BENCHMARK(BM_AttentionKernel)->Apply(threads_and_segments)->Unit(benchmark::kMillisecond);

// One segment's memory read and delta-rule write, forward + backward.
void BM_MemoryReadWrite(benchmark::State& state) {
  infini::set_threads(static_cast<int>(state.range(0)));
  const int64_t n = state.range(1);
  const auto [q, k, v] = segment_qkv(n);
  auto M = torch::randn({kB, kH, kD, kD}).abs_().requires_grad_();
  auto z = torch::rand({kB, kH, kD}).mul_(100).requires_grad_();
  for (auto _ : state) {
    namespace m = infini::memory;
    auto read = m::read(m::feature_map(q), M, z, 1e-6);
    auto [M2, z2] = m::write(m::feature_map(k), v, M, z, 1e-6, true);
    (read.sum() + M2.sum() + z2.sum()).backward();
  }
  state.SetItemsProcessed(state.iterations() * kB * n);
}
BENCHMARK(BM_MemoryReadWrite)->Apply(threads_and_segments)->Unit(benchmark::kMillisecond);

void BM_Matmul(benchmark::State& state) {
  infini::set_threads(static_cast<int>(state.range(0)));
  const auto a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  auto c = torch::empty({1024, 1024});
  for (auto _ : state) torch::mm_out(c, a, b);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 1024 * 1024 * 1024 * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Matmul)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
