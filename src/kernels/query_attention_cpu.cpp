#include "kernels/query_attention_cpu.h"

#include "kernels/vector_cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INFINI_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace infini::kernels {
namespace {

#ifdef INFINI_X86_DISPATCH
// Scores the keys four at a time (four independent chains of multiply-adds hide their latency) and
// returns how many it scored: the rest are fewer than four. dk is a multiple of 8.
__attribute__((target("avx2,fma"))) int64_t scores_avx2(const float* q, const float* keys, int64_t count, int64_t dk,
                                                        float scale, float* scores) {
  int64_t j = 0;
  for (; j + 4 <= count; j += 4) {
    const float* k = keys + j * dk;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t c = 0; c < dk; c += 8) {
      const __m256 x = _mm256_loadu_ps(q + c);
      s0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + c), s0);
      s1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + dk + c), s1);
      s2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + 2 * dk + c), s2);
      s3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(k + 3 * dk + c), s3);
    }
    // The four horizontal sums at once: (s0 s1 s2 s3) -> one 4-wide vector of totals.
    const __m256 a = _mm256_hadd_ps(s0, s1), b = _mm256_hadd_ps(s2, s3);
    const __m256 ab = _mm256_hadd_ps(a, b);
    const __m128 total = _mm_add_ps(_mm256_castps256_ps128(ab), _mm256_extractf128_ps(ab, 1));
    _mm_storeu_ps(scores + j, _mm_mul_ps(total, _mm_set1_ps(scale)));
  }
  return j;
}
#endif

}  // namespace

void attend_one_query(const float* q, const float* keys, const float* values, int64_t count, int64_t dk,
                      int64_t dv, float scale, float* scores, float* out) {
  int64_t j = 0;
#ifdef INFINI_X86_DISPATCH
  if (vector_isa_avx2() && dk % 8 == 0) j = scores_avx2(q, keys, count, dk, scale, scores);
#endif
  for (; j < count; ++j) scores[j] = scale * dot(q, keys + j * dk, dk);
  softmax(scores, count);
  weighted_row_sum(scores, values, count, dv, out);
}

}  // namespace infini::kernels
