#include "kernels/matvecs_cpu.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "kernels/vector_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INFINI_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace infini::kernels {

namespace {

#ifdef INFINI_X86_DISPATCH
// Asked here, not of vector_cpu.cpp: another file's static may not be set yet.
const bool kHasAvx512 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}();
#else
constexpr bool kHasAvx512 = false;
#endif

// Writes the rows of panel p that exist, from its running sums.
inline void store_rows(const PackedRows& W, int64_t p, const float* sums, float* y) {
  const int64_t r0 = p * W.panel_rows, n = std::min<int64_t>(W.panel_rows, W.rows - r0);
  std::copy(sums, sums + n, y + r0);
}

}  // namespace

int64_t PackedRows::preferred_panel_rows() { return kHasAvx512 ? 32 : 24; }

PackedRows PackedRows::pack(const float* W, int64_t rows, int64_t cols, int64_t panel_rows) {
  if (panel_rows != 24 && panel_rows != 32) throw std::invalid_argument("PackedRows::pack: panels of 24 or 32 rows");
  PackedRows p;
  p.rows = rows;
  p.cols = cols;
  p.panel_rows = panel_rows;
  const int64_t K = panel_rows;
  p.panels.assign(static_cast<size_t>(p.panel_count() * cols * K), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      p.panels[static_cast<size_t>(((r / K) * cols + c) * K + r % K)] = W[r * cols + c];
  return p;
}

namespace {

#ifdef INFINI_X86_DISPATCH
// Panels a pass takes before the next group of vectors: with several groups, the panels they share
// are read from memory once and from cache after (2 panels of 32 rows by 682 columns are 175 KB).
constexpr int64_t kPanelsPerPass = 2;

// Runs `groups` (every group of vectors on panels [q0, q1)) over [p0, p1) a pass at a time: with
// the panels in the outer loop, a step of 8 sequences reads its weights once, not once per group.
template <typename Groups>
void panel_passes(int64_t p0, int64_t p1, const Groups& groups) {
  for (int64_t q0 = p0; q0 < p1; q0 += kPanelsPerPass) groups(q0, std::min(p1, q0 + kPanelsPerPass));
}
constexpr int64_t K = 24;  // the AVX2 kernels' panel height

// P panels from p times S vectors from v: P x 3 x S registers of 8 running sums, one per row.
template <int P, int S>
__attribute__((target("avx2,fma"))) void tile_avx2(const PackedRows& W, const float* const* xs, float* const* ys,
                                                   int64_t p, int64_t v) {
  const int64_t cols = W.cols;
  __m256 acc[P][3][S];
  for (int i = 0; i < P; ++i)
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < S; ++j) acc[i][k][j] = _mm256_setzero_ps();
  const float* base = W.panels.data() + p * cols * K;
  for (int64_t c = 0; c < cols; ++c) {
    __m256 w[P][3];
    for (int i = 0; i < P; ++i)
      for (int k = 0; k < 3; ++k) w[i][k] = _mm256_loadu_ps(base + (i * cols + c) * K + 8 * k);
    for (int j = 0; j < S; ++j) {
      const __m256 x = _mm256_broadcast_ss(xs[v + j] + c);
      for (int i = 0; i < P; ++i)
        for (int k = 0; k < 3; ++k) acc[i][k][j] = _mm256_fmadd_ps(w[i][k], x, acc[i][k][j]);
    }
  }
  alignas(32) float sums[K];
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < S; ++j) {
      for (int k = 0; k < 3; ++k) _mm256_store_ps(sums + 8 * k, acc[i][k][j]);
      store_rows(W, p + i, sums, ys[v + j]);
    }
}

template <int P, int S>
__attribute__((target("avx2,fma"))) void panels_avx2(const PackedRows& W, const float* const* xs, float* const* ys,
                                                     int64_t p0, int64_t p1, int64_t v) {
  int64_t p = p0;
  for (; p + P <= p1; p += P) tile_avx2<P, S>(W, xs, ys, p, v);
  for (; p < p1; ++p) tile_avx2<1, S>(W, xs, ys, p, v);
}

void matvecs_avx2(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0, int64_t p1) {
  // Tiles of at most 12 running sums: with the loaded column and a broadcast vector entry they fill
  // the 16 registers.
  panel_passes(p0, p1, [&](int64_t q0, int64_t q1) {
    int64_t v = 0;
    for (; v + 4 <= n; v += 4) panels_avx2<1, 4>(W, xs, ys, q0, q1, v);
    switch (n - v) {
      case 3: panels_avx2<1, 3>(W, xs, ys, q0, q1, v); break;
      case 2: panels_avx2<2, 2>(W, xs, ys, q0, q1, v); break;
      case 1: panels_avx2<2, 1>(W, xs, ys, q0, q1, v); break;
      default: break;
    }
  });
}

// Panels of 32 rows, two 16-float registers per column.
constexpr int64_t K512 = 32;

// P panels from p times S vectors from v: P x 2 x S registers of 16 running sums, one per row.
template <int P, int S>
__attribute__((target("avx512f,fma"))) void tile_avx512(const PackedRows& W, const float* const* xs, float* const* ys,
                                                       int64_t p, int64_t v) {
  const int64_t cols = W.cols;
  __m512 acc[P][2][S];
  for (int i = 0; i < P; ++i)
    for (int k = 0; k < 2; ++k)
      for (int j = 0; j < S; ++j) acc[i][k][j] = _mm512_setzero_ps();
  const float* base = W.panels.data() + p * cols * K512;
  for (int64_t c = 0; c < cols; ++c) {
    __m512 w[P][2];
    for (int i = 0; i < P; ++i)
      for (int k = 0; k < 2; ++k) w[i][k] = _mm512_loadu_ps(base + (i * cols + c) * K512 + 16 * k);
    for (int j = 0; j < S; ++j) {
      const __m512 x = _mm512_set1_ps(xs[v + j][c]);
      for (int i = 0; i < P; ++i)
        for (int k = 0; k < 2; ++k) acc[i][k][j] = _mm512_fmadd_ps(w[i][k], x, acc[i][k][j]);
    }
  }
  alignas(64) float sums[K512];
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < S; ++j) {
      for (int k = 0; k < 2; ++k) _mm512_store_ps(sums + 16 * k, acc[i][k][j]);
      store_rows(W, p + i, sums, ys[v + j]);
    }
}

template <int P, int S>
__attribute__((target("avx512f,fma"))) void panels_avx512(const PackedRows& W, const float* const* xs,
                                                         float* const* ys, int64_t p0, int64_t p1, int64_t v) {
  int64_t p = p0;
  for (; p + P <= p1; p += P) tile_avx512<P, S>(W, xs, ys, p, v);
  for (; p < p1; ++p) tile_avx512<1, S>(W, xs, ys, p, v);
}

void matvecs_avx512(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0,
                    int64_t p1) {
  // Groups of 4 vectors on 2 panels at a time: 16 running sums, and 8 loads (4 of weights, 4
  // broadcasts) per 16 multiply-adds. Wider tiles (8 or 12 vectors on one panel, which read the
  // weights once) measured slower: a broadcast per 2 multiply-adds.
  panel_passes(p0, p1, [&](int64_t q0, int64_t q1) {
    int64_t v = 0;
    for (; v + 4 <= n; v += 4) panels_avx512<2, 4>(W, xs, ys, q0, q1, v);
    switch (n - v) {
      case 3: panels_avx512<2, 3>(W, xs, ys, q0, q1, v); break;
      case 2: panels_avx512<2, 2>(W, xs, ys, q0, q1, v); break;
      case 1: panels_avx512<2, 1>(W, xs, ys, q0, q1, v); break;
      default: break;
    }
  });
}
#endif

// Without vector instructions: the same sums, one panel and vector at a time.
void matvecs_portable(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0,
                      int64_t p1) {
  const int64_t rows = W.panel_rows;
  std::vector<float> sums(static_cast<size_t>(rows));
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t v = 0; v < n; ++v) {
      const float* panel = W.panels.data() + p * W.cols * rows;
      std::fill(sums.begin(), sums.end(), 0.0f);
      for (int64_t c = 0; c < W.cols; ++c)
        for (int64_t k = 0; k < rows; ++k) sums[k] += panel[c * rows + k] * xs[v][c];
      store_rows(W, p, sums.data(), ys[v]);
    }
}

}  // namespace

void matvecs_packed(const PackedRows& W, const float* const* xs, int64_t n, float* const* ys, int64_t p0, int64_t p1) {
#ifdef INFINI_X86_DISPATCH
  if (W.panel_rows == K512 && kHasAvx512) return matvecs_avx512(W, xs, n, ys, p0, p1);
  if (W.panel_rows == K && vector_isa_avx2()) return matvecs_avx2(W, xs, n, ys, p0, p1);
#endif
  matvecs_portable(W, xs, n, ys, p0, p1);
}

}  // namespace infini::kernels
