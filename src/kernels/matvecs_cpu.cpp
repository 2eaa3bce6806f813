#include "kernels/matvecs_cpu.h"

#include <algorithm>

#include "kernels/vector_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INFINI_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace infini::kernels {
namespace {

// The order every output is summed in is kernels::dot's: four running sums over strides of 32
// columns, one more stride of 8 at a time into the first, the four added as (s0 + s1) + (s2 + s3)
// and the 8 lanes pairwise, then the remaining columns one by one. A vector alone is therefore
// multiplied exactly as matvec_rows multiplies it.
#ifdef INFINI_X86_DISPATCH
__attribute__((target("avx2,fma"))) inline float lanes_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Row r times S vectors from `v`: each 32 columns of the row are loaded once for all of them.
template <int S>
__attribute__((target("avx2,fma"))) void row_avx2(const float* W, int64_t cols, const float* const* xs,
                                                  float* const* ys, int64_t r, int64_t v) {
  const float* row = W + r * cols;
  __m256 acc[S][4];
  for (int j = 0; j < S; ++j)
    for (int k = 0; k < 4; ++k) acc[j][k] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    __m256 w[4];
    for (int k = 0; k < 4; ++k) w[k] = _mm256_loadu_ps(row + c + 8 * k);
    for (int j = 0; j < S; ++j)
      for (int k = 0; k < 4; ++k) acc[j][k] = _mm256_fmadd_ps(w[k], _mm256_loadu_ps(xs[v + j] + c + 8 * k), acc[j][k]);
  }
  const int64_t stride8 = c;
  for (int j = 0; j < S; ++j) {
    const float* x = xs[v + j];
    __m256 s0 = acc[j][0];
    int64_t i = stride8;
    for (; i + 8 <= cols; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + i), _mm256_loadu_ps(x + i), s0);
    float s = lanes_sum(_mm256_add_ps(_mm256_add_ps(s0, acc[j][1]), _mm256_add_ps(acc[j][2], acc[j][3])));
    for (; i < cols; ++i) s += row[i] * x[i];
    ys[v + j][r] = s;
  }
}

void matvecs_avx2(const float* W, int64_t cols, const float* const* xs, int64_t n, float* const* ys, int64_t r0,
                  int64_t r1) {
  // Three vectors at a time: 12 running sums and a row's 4 loads fill the 16 registers. One vector
  // alone goes through kernels::dot, the same order with nothing to share.
  if (n == 1) return matvec_rows(W, cols, xs[0], ys[0], r0, r1);
  for (int64_t v = 0; v < n; v += 3) {
    const int64_t s = std::min<int64_t>(3, n - v);
    for (int64_t r = r0; r < r1; ++r) {
      if (s == 3) row_avx2<3>(W, cols, xs, ys, r, v);
      else if (s == 2) row_avx2<2>(W, cols, xs, ys, r, v);
      else row_avx2<1>(W, cols, xs, ys, r, v);
    }
  }
}
#endif

// Without vector instructions: kernels::dot for each pair, which sums in its own fixed order.
void matvecs_portable(const float* W, int64_t cols, const float* const* xs, int64_t n, float* const* ys, int64_t r0,
                      int64_t r1) {
  for (int64_t v = 0; v < n; ++v) matvec_rows(W, cols, xs[v], ys[v], r0, r1);
}

}  // namespace

void matvecs_rows(const float* W, int64_t cols, const float* const* xs, int64_t n, float* const* ys, int64_t r0,
                  int64_t r1) {
#ifdef INFINI_X86_DISPATCH
  if (vector_isa_avx2()) return matvecs_avx2(W, cols, xs, n, ys, r0, r1);
#endif
  matvecs_portable(W, cols, xs, n, ys, r0, r1);
}

}  // namespace infini::kernels
