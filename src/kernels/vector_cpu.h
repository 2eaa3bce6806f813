// Single-vector kernels for the fused inference paths (src/infer/decoder.h, src/infer/prefill.h). At
// one token per step a LibTorch op costs more in dispatch (4-6 us) than in arithmetic, so the step is
// written on raw fp32 pointers with these. On x86-64 they use AVX2+FMA when the CPU has it, chosen once at run time;
// elsewhere, portable loops.
#pragma once

#include <cstdint>
#include <utility>

namespace infini::kernels {

// sum_i a[i] * b[i]
float dot(const float* a, const float* b, int64_t n);

// y[r] = W[r, :] . x for rows r in [r0, r1) of the row-major (rows, cols) matrix W.
void matvec_rows(const float* W, int64_t cols, const float* x, float* y, int64_t r0, int64_t r1);

// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

// out (d) = sum_j w[j] rows[j] over `count` contiguous rows of d: one query's weighted values, one
// row's read of the memory. The output stays in registers across all the rows, 64 columns at a time.
void weighted_row_sum(const float* w, const float* rows, int64_t count, int64_t d, float* out);

// Rows [begin, end) of `rows` that thread t of n takes.
inline std::pair<int64_t, int64_t> thread_share(int64_t rows, int t, int n) {
  return {rows * t / n, rows * (t + 1) / n};
}

// RMSNorm of one row x (D) into out, as RMSNormImpl computes it in fp32.
void rms_norm(const float* x, const float* weight, float* out, int64_t D, double eps);

// Rotate-half RoPE of one row x (d) with the angles of one position: [x1 c - x2 s, x2 c + x1 s].
void rope_rotate(const float* x, const float* cos, const float* sin, float* out, int64_t d);

// sigma(x) = ELU(x) + 1, the memory's feature map.
inline float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : __builtin_expf(x); }

// Row versions for whole segments, where a scalar exp would cost more than the products around it.
// out[i] = ELU(x[i]) + 1.
void elu_plus_one(const float* x, float* out, int64_t n);
// x = softmax(x), in place.
void softmax(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i]: SwiGLU's gated product.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// Whether the AVX2+FMA versions are in use (for benchmark reports).
bool vector_isa_avx2();

}  // namespace infini::kernels
