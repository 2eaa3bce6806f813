// Single-vector kernels for the one-token decode step (src/infer/decoder.h). At one token per step a
// LibTorch op costs more in dispatch (4-6 us) than in arithmetic, so the step is written on raw fp32
// pointers with these. On x86-64 they use AVX2+FMA when the CPU has it, chosen once at run time;
// elsewhere, portable loops.
#pragma once

#include <cstdint>

namespace infini::kernels {

// sum_i a[i] * b[i]
float dot(const float* a, const float* b, int64_t n);

// y[r] = W[r, :] . x for rows r in [r0, r1) of the row-major (rows, cols) matrix W.
void matvec_rows(const float* W, int64_t cols, const float* x, float* y, int64_t r0, int64_t r1);

// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

// Whether the AVX2+FMA versions are in use (for benchmark reports).
bool vector_isa_avx2();

}  // namespace infini::kernels
