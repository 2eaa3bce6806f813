// Batched matrix products of many small matrices on CPU, one matrix per task. LibTorch's bmm walks
// the batch serially and lets BLAS thread each tiny product, which costs more in synchronisation than
// the arithmetic; the compressive memory's (n x dk) @ (dk x dv) products are exactly that case.
#pragma once

#include <torch/torch.h>

namespace infini::kernels {

// a @ b over matching leading dimensions, with autograd.
torch::Tensor batched_matmul_cpu(const torch::Tensor& a,   // (..., m, k)
                                 const torch::Tensor& b);  // (..., k, p) -> (..., m, p)

// sigma(x) = ELU(x) + 1 with a one-pass backward: sigma'(x) = min(sigma(x), 1).
torch::Tensor elu_plus_one(const torch::Tensor& x);

}  // namespace infini::kernels
