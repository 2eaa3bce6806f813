#include "kernels/gemm_cpu.h"

#ifdef INFINI_HAVE_BLAS
// The Fortran BLAS interface, as every BLAS exports it (OpenBLAS, MKL, the reference).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);
#else
#include <torch/torch.h>
#endif

namespace infini::kernels {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
#ifdef INFINI_HAVE_BLAS
  // BLAS is column-major: a row-major C is C^T to it, and C^T = op(B)^T op(A)^T.
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int M = static_cast<int>(n), N = static_cast<int>(m), K = static_cast<int>(k);
  const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
  sgemm_(&tb, &ta, &M, &N, &K, &alpha, B, &la, A, &lb, &beta, C, &lc);
#else
  // Without a BLAS to link (CMake found none), the same product through LibTorch, on views.
  const auto view = [](const float* p, int64_t rows, int64_t cols, int64_t ld, bool t) {
    const auto v = torch::from_blob(const_cast<float*>(p), {rows, cols}, {ld, 1}, torch::kFloat32);
    return t ? v.t() : v;
  };
  auto c = view(C, m, n, ldc, false);
  torch::addmm_out(c, c, view(A, trans_a ? k : m, trans_a ? m : k, lda, trans_a),
                   view(B, trans_b ? n : k, trans_b ? k : n, ldb, trans_b), beta, alpha);
#endif
}

}  // namespace infini::kernels
