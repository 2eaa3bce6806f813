#include "kernels/vector_cpu.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INFINI_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace infini::kernels {
namespace {

// Four partial sums, so the portable loop is not one long dependency chain.
float dot_portable(const float* a, const float* b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void axpy_portable(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

#ifdef INFINI_X86_DISPATCH
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx2,fma"))) inline float hmax(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// 32 floats per iteration in four accumulators: enough independent FMAs to hide their latency.
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) void axpy_avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// exp(x) to about 2 ulp, Cephes's way: x = n ln2 + r with |r| <= ln2/2, a degree-7 polynomial for
// exp(r), and 2^n built in the exponent bits. Inputs are clamped to where expf is finite and normal.
__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// The element-wise AVX2 kernels below do whole blocks of 8 and return how many elements they did;
// the portable loops of the public functions finish the rest.
__attribute__((target("avx2,fma"))) int64_t elu_plus_one_avx2(const float* x, float* out, int64_t n) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // x > 0: x + 1; else exp(x)
    _mm256_storeu_ps(out + i, _mm256_blendv_ps(exp_avx2(v), _mm256_add_ps(v, one), _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
  }
  return i;
}

__attribute__((target("avx2,fma"))) void softmax_avx2(float* x, int64_t n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max = hmax(vmax);
  for (; i < n; ++i) max = std::max(max, x[i]);
  const __m256 vm = _mm256_set1_ps(max);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = hsum(vsum);
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= 1.0f / sum;
}

__attribute__((target("avx2,fma"))) int64_t silu_mul_avx2(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, sig), _mm256_loadu_ps(up + i)));
  }
  return i;
}

// Rotates the first pairs (i, i + half) in blocks of 8 and returns how many it did.
__attribute__((target("avx2,fma"))) int64_t rope_rotate_avx2(const float* x, const float* cos, const float* sin,
                                                           float* out, int64_t half) {
  int64_t i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 x1 = _mm256_loadu_ps(x + i), x2 = _mm256_loadu_ps(x + half + i);
    const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
    _mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x2, s)));
    _mm256_storeu_ps(out + half + i, _mm256_add_ps(_mm256_mul_ps(x2, c), _mm256_mul_ps(x1, s)));
  }
  return i;
}

// 64 columns at a time in eight registers across all the rows; d is a multiple of 8.
__attribute__((target("avx2,fma"))) void weighted_row_sum_avx2(const float* w, const float* rows, int64_t count,
                                                               int64_t d, float* out) {
  for (int64_t c0 = 0; c0 < d; c0 += 64) {
    const int64_t blocks = std::min<int64_t>(64, d - c0) / 8;
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t j = 0; j < count; ++j) {
      const __m256 p = _mm256_broadcast_ss(w + j);
      const float* row = rows + j * d + c0;
      for (int i = 0; i < 8; ++i)
        if (i < blocks) acc[i] = _mm256_fmadd_ps(p, _mm256_loadu_ps(row + 8 * i), acc[i]);
    }
    for (int i = 0; i < 8; ++i)
      if (i < blocks) _mm256_storeu_ps(out + c0 + 8 * i, acc[i]);
  }
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
constexpr bool kHasAvx2 = false;
#endif

}  // namespace

float dot(const float* a, const float* b, int64_t n) {
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) return dot_avx2(a, b, n);
#endif
  return dot_portable(a, b, n);
}

void matvec_rows(const float* W, int64_t cols, const float* x, float* y, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) y[r] = dot(W + r * cols, x, cols);
}

void axpy(float a, const float* x, float* y, int64_t n) {
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) return axpy_avx2(a, x, y, n);
#endif
  axpy_portable(a, x, y, n);
}

void weighted_row_sum(const float* w, const float* rows, int64_t count, int64_t d, float* out) {
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2 && d % 8 == 0) return weighted_row_sum_avx2(w, rows, count, d, out);
#endif
  std::fill(out, out + d, 0.0f);
  for (int64_t j = 0; j < count; ++j) axpy_portable(w[j], rows + j * d, out, d);
}

bool vector_isa_avx2() { return kHasAvx2; }

void elu_plus_one(const float* x, float* out, int64_t n) {
  int64_t i = 0;
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) i = elu_plus_one_avx2(x, out, n);
#endif
  for (; i < n; ++i) out[i] = elu_plus_one(x[i]);
}

void softmax(float* x, int64_t n) {
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) return softmax_avx2(x, n);
#endif
  float max = -INFINITY, sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) i = silu_mul_avx2(gate, up, out, n);
#endif
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void rms_norm(const float* x, const float* weight, float* out, int64_t D, double eps) {
  const float inv = static_cast<float>(1.0 / std::sqrt(dot(x, x, D) / static_cast<double>(D) + eps));
  for (int64_t i = 0; i < D; ++i) out[i] = (x[i] * inv) * weight[i];
}

void rope_rotate(const float* x, const float* cos, const float* sin, float* out, int64_t d) {
  const auto half = d / 2;
  int64_t i = 0;
#ifdef INFINI_X86_DISPATCH
  if (kHasAvx2) i = rope_rotate_avx2(x, cos, sin, out, half);
#endif
  for (; i < half; ++i) {
    out[i] = x[i] * cos[i] - x[i + half] * sin[i];
    out[i + half] = x[i + half] * cos[i] + x[i] * sin[i];
  }
}

}  // namespace infini::kernels
