#include "kernels/infini_cpu.h"

#include <algorithm>

#include "kernels/gemm_cpu.h"
#include "kernels/vector_cpu.h"

namespace infini::kernels {
namespace {

// sigma(q) M for n rows into out (n, dv): one product for a segment's rows, and for a single row
// (the decoder's) a weighted sum of M's rows, which costs less than a BLAS call at that size.
void read_rows(const float* sq, int64_t n, const float* M, int64_t dk, int64_t dv, float* out) {
  if (n == 1) return weighted_row_sum(sq, M, dk, dv, out);
  gemm(false, false, n, dv, dk, 1.0f, sq, dk, M, dv, 0.0f, out, dv);
}

}  // namespace

void qk_conv_row(const float* taps, const float* tail, const float* x, float* out, int64_t d, int64_t W) {
  for (int64_t c = 0; c < d; ++c) {
    const float* t = taps + c * W;
    float sum = t[0] * x[c];
    for (int64_t j = 1; j < W; ++j) sum += t[j] * tail[(W - 1 - j) * d + c];
    out[c] = sum;
  }
}

void qk_conv_slide(float* tail, const float* x, int64_t d, int64_t W) {
  if (W < 2) return;
  std::copy(tail + d, tail + (W - 1) * d, tail);
  std::copy(x, x + d, tail + (W - 2) * d);
}

void written_key_features(const float* k, int64_t ld, int64_t n, int64_t dk, const float* share, float* sk) {
  for (int64_t r = 0; r < n; ++r) {
    const float* key = k + r * ld;  // (dk)
    float* out = sk + r * dk;       // (dk)
    if (share) {
      const float* before = r > 0 ? key - ld : key;
      for (int64_t d = 0; d < dk; ++d) out[d] = key[d] + *share * (before[d] - key[d]);
      elu_plus_one(out, out, dk);
    } else {
      elu_plus_one(key, out, dk);
    }
  }
}

void gated_memory_read(const float* sq, int64_t n, const float* M, const float* z, int64_t dk, int64_t dv, float eps,
                       float gate, float* out, int64_t ld_out, float* scratch) {
  read_rows(sq, n, M, dk, dv, scratch);
  for (int64_t r = 0; r < n; ++r) {
    const float inv = 1.0f / (dot(sq + r * dk, z, dk) + eps);
    const float* read = scratch + r * dv;
    float* o = out + r * ld_out;
    for (int64_t e = 0; e < dv; ++e) o[e] += gate * (read[e] * inv - o[e]);
  }
}

void memory_write(const float* sk, int64_t n, const float* v, int64_t ld_v, const float* M, const float* z, int64_t dk,
                  int64_t dv, float eps, bool delta_rule, float* M_next, float* z_next, float* scratch) {
  const float* values = v;  // (n, dv), row stride ld
  int64_t ld = ld_v;
  if (delta_rule) {
    // Only what the memory does not already return for these keys is written.
    float* fresh = scratch;  // (n, dv)
    read_rows(sk, n, M, dk, dv, fresh);
    for (int64_t r = 0; r < n; ++r) {
      const float inv = 1.0f / (dot(sk + r * dk, z, dk) + eps);
      float* row = fresh + r * dv;
      for (int64_t e = 0; e < dv; ++e) row[e] = v[r * ld_v + e] - row[e] * inv;
    }
    values = fresh;
    ld = dv;
  }
  std::copy(M, M + dk * dv, M_next);
  gemm(true, false, dk, dv, n, 1.0f, sk, dk, values, ld, 1.0f, M_next, dv);
  // The column sums first, then one addition to z: z outgrows a segment's rows by orders of magnitude.
  float* sum = scratch + n * dv;  // (dk)
  std::fill(sum, sum + dk, 0.0f);
  for (int64_t r = 0; r < n; ++r) axpy(1.0f, sk + r * dk, sum, dk);
  for (int64_t d = 0; d < dk; ++d) z_next[d] = z[d] + sum[d];
}

}  // namespace infini::kernels
