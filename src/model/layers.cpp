#include "model/layers.h"

namespace infini {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto compute = at::promote_types(x.scalar_type(), torch::kFloat32);
  const auto xf = x.to(compute);                                           // (..., dim)
  const auto inv_rms = torch::rsqrt(xf.pow(2).mean(-1, true) + eps_);      // (..., 1)
  return (xf * inv_rms).to(x.scalar_type()) * weight;
}

SwiGLUImpl::SwiGLUImpl(const ModelConfig& c) {
  gate_up_proj = register_module(
      "gate_up_proj", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, 2 * c.d_ff).bias(false)));
  down_proj = register_module(
      "down_proj", torch::nn::Linear(torch::nn::LinearOptions(c.d_ff, c.d_model).bias(false)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  const auto gate_up = gate_up_proj(x).chunk(2, -1);  // 2 x (B, n, F)
  return down_proj(torch::silu(gate_up[0]) * gate_up[1]);
}

}  // namespace infini
