// Softmax attention on CPU, one (batch, head) pair per task. LibTorch 1.13's bmm runs its batch
// serially and asks BLAS to thread each small (n x d x L) product; here each core takes whole heads,
// its BLAS calls stay single-threaded (OpenMP BLAS inside a parallel region), and one head's scores
// stay in cache from the product through the softmax. Forward and backward are exact, not recomputed
// approximations. LibTorch 2.x uses its own fused kernel instead (src/compat/torch_compat.h).
#pragma once

#include <torch/torch.h>

namespace infini::kernels {

// softmax(scale * q k^T + bias) v.
torch::Tensor attention_cpu(const torch::Tensor& q,     // (X, H, n, dk)
                            const torch::Tensor& k,     // (X, H, L, dk)
                            const torch::Tensor& v,     // (X, H, L, dv)
                            const torch::Tensor& bias,  // (n, L) or (X, 1, n, L): 0 or -inf, no gradient
                            double scale);              // -> (X, H, n, dv)

}  // namespace infini::kernels
