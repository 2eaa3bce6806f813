// Google Benchmark micro-benchmarks of a decode step's products (src/kernels/matvecs_cpu.h) on one
// thread: the matrices of the reference config (configs/reference.json: 4 layers of d 256, FFN 682,
// and the 256-row head) times 1 to 12 vectors, against the most this core does with multiply-adds
// in registers alone. Where one vector already runs near that ceiling, the decode is bound by
// arithmetic, not by reading the weights, and batching sequences can only save the difference
// (docs/SERVING.md, "Performance"). Run: build/bench/infini_micro_bench --benchmark_filter=Decode
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "kernels/matvecs_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define INFINI_BENCH_X86 1
#endif

namespace {

void BM_DecodeProducts(benchmark::State& state) {
  using infini::kernels::PackedRows;
  const int64_t n = state.range(0);
  std::vector<std::pair<int64_t, int64_t>> shapes;  // (rows, cols) of each product in a step
  for (int layer = 0; layer < 4; ++layer)
    for (const auto shape : {std::pair<int64_t, int64_t>{768, 256}, {256, 256}, {682, 256}, {682, 256}, {256, 682}})
      shapes.push_back(shape);
  shapes.push_back({256, 256});
  std::vector<PackedRows> matrices;
  double flop_per_vector = 0;
  for (const auto [rows, cols] : shapes) {
    std::vector<float> W(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < W.size(); ++i) W[i] = static_cast<float>(i % 7) * 0.01f;
    matrices.push_back(PackedRows::pack(W.data(), rows, cols));
    flop_per_vector += 2.0 * static_cast<double>(rows * cols);
  }
  std::vector<std::vector<float>> x(static_cast<size_t>(n), std::vector<float>(768, 0.5f)), y = x;
  std::vector<const float*> xs;
  std::vector<float*> ys;
  for (int64_t v = 0; v < n; ++v) {
    xs.push_back(x[v].data());
    ys.push_back(y[v].data());
  }
  for (auto _ : state)
    for (const auto& m : matrices) infini::kernels::matvecs_packed(m, xs.data(), n, ys.data(), 0, m.panel_count());
  const auto steps = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(flop_per_vector * static_cast<double>(n) * steps / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["us_per_vector"] =
      benchmark::Counter(static_cast<double>(n) * steps / 1e6, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel(PackedRows::preferred_panel_rows() == 32 ? "AVX-512 panels" : "AVX2 panels");
}
BENCHMARK(BM_DecodeProducts)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(12)->Unit(benchmark::kMicrosecond);

// Reading a buffer of the given MB over and over, on each thread its share: the rate at which a
// step's weights and caches arrive when they fit in cache (the reference config's weights are
// 13 MB) and when they do not (8 sequences add about 10 MB of caches and memories).
void BM_DecodeReadBandwidth(benchmark::State& state) {
  const auto floats = static_cast<size_t>(state.range(0)) * (1 << 20) / sizeof(float) / state.threads();
  std::vector<float> buffer(floats, 1.0f);
  for (auto _ : state) {
    float sums[16] = {};
    for (size_t i = 0; i + 16 <= floats; i += 16)
      for (int k = 0; k < 16; ++k) sums[k] += buffer[i + k];
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(floats * sizeof(float)));
}
BENCHMARK(BM_DecodeReadBandwidth)
    ->Arg(4)->Arg(8)->Arg(16)->Arg(24)->Arg(32)->Arg(64)
    ->ThreadRange(1, 2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

#ifdef INFINI_BENCH_X86
// Twelve independent chains of multiply-adds in registers: no memory traffic, no dependency stalls.
// `seed` comes from outside, so the compiler cannot work the chains out ahead.
__attribute__((target("avx512f"))) float fma_chains_avx512(int64_t rounds, float seed) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(1.0f - seed), b = _mm512_set1_ps(seed * 0.1f);
  for (int64_t r = 0; r < rounds; ++r)
    for (auto& v : acc) v = _mm512_fmadd_ps(v, a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) float fma_chains_avx2(int64_t rounds, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(1.0f - seed), b = _mm256_set1_ps(seed * 0.1f);
  for (int64_t r = 0; r < rounds; ++r)
    for (auto& v : acc) v = _mm256_fmadd_ps(v, a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0];
}

// The multiply-add ceiling of one core at the width the products use.
void BM_DecodeFmaCeiling(benchmark::State& state) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    state.SkipWithError("no AVX2+FMA on this CPU");
    return;
  }
  constexpr int64_t kRounds = 1 << 20;
  float seed = 0.001f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(seed);  // may have changed: each iteration computes the chains again
    benchmark::DoNotOptimize(avx512 ? fma_chains_avx512(kRounds, seed) : fma_chains_avx2(kRounds, seed));
  }
  const double flop = 12.0 * (avx512 ? 16 : 8) * 2 * kRounds;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flop * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(avx512 ? "AVX-512" : "AVX2");
}
BENCHMARK(BM_DecodeFmaCeiling)->Unit(benchmark::kMillisecond);
#endif

}  // namespace
