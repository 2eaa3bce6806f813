// Row-major matrix products on raw fp32 pointers, straight into BLAS (the library LibTorch loads).
// Inside the fused prefill's per-head loop a LibTorch op costs its dispatch and the views around it
// (narrow, transpose: some 5 us each), which at 256-row segments is as much as the product itself.
#pragma once

#include <cstdint>

namespace infini::kernels {

// C (m, n) = alpha op(A) op(B) + beta C, all row-major with leading dimensions lda, ldb, ldc;
// op(A) is (m, k): A itself, or A^T when trans_a (A stored (k, m)); likewise op(B) is (k, n).
// With beta = 0, C is only written. Called inside a parallel region, it runs on the calling thread.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace infini::kernels
