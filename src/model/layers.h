// The two small building blocks around attention: RMSNorm and the SwiGLU MLP.
#pragma once

#include <torch/torch.h>

#include "infini/config.h"

namespace infini {

// x / sqrt(mean(x^2) + eps) * weight, computed in at least fp32 so bf16 activations keep precision.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim) -> (..., dim)

  torch::Tensor weight;  // (dim)

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// down(silu(x Wg^T) * (x Wu^T)); gate and up share one matmul (gate_up_proj rows: gate, then up).
class SwiGLUImpl : public torch::nn::Module {
 public:
  explicit SwiGLUImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // (B, n, D) -> (B, n, D)

  torch::nn::Linear gate_up_proj{nullptr};  // (2F, D)
  torch::nn::Linear down_proj{nullptr};     // (D, F)
};
TORCH_MODULE(SwiGLU);

}  // namespace infini
