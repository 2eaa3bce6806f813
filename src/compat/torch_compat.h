// Every difference between the LibTorch versions infini supports (Debian's 1.13 CPU build and 2.x,
// CPU or CUDA) lives in this header, so the rest of the code is written once.
#pragma once

#include <limits>

#include <torch/torch.h>
#include <torch/version.h>

#define INFINI_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace infini::compat {

#if !INFINI_TORCH_AT_LEAST(2, 1)
namespace detail {
// softmax(scale * q k^T + bias) v with the bias (0 or -inf) folded into the score GEMM by baddbmm,
// saving two passes over the (n x Lk) scores per head.
inline torch::Tensor biased_attention(const torch::Tensor& q,     // (X, H, n, dk)
                                      const torch::Tensor& k,     // (X, H, Lk, dk)
                                      const torch::Tensor& v,     // (X, H, Lk, dv)
                                      const torch::Tensor& bias,  // (n, Lk) or (X, 1, n, Lk)
                                      double scale) {
  const auto X = q.size(0), H = q.size(1), n = q.size(2), Lk = k.size(2);
  const auto q3 = q.reshape({X * H, n, q.size(3)});
  const auto k3 = k.reshape({X * H, Lk, k.size(3)});
  const auto v3 = v.reshape({X * H, Lk, v.size(3)});
  const auto bias3 = bias.dim() == 2 ? bias : bias.expand({X, H, n, Lk}).reshape({X * H, n, Lk});
  const auto scores = torch::baddbmm(bias3, q3, k3.transpose(1, 2), 1.0, scale);  // (X*H, n, Lk)
  return torch::bmm(torch::softmax(scores, -1), v3).view({X, H, n, v.size(3)});
}
inline torch::Tensor bias_from_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}
}  // namespace detail
#endif

// Softmax attention with a boolean mask (true = may attend), of shape (n, Lk) or (X, 1, n, Lk).
// 2.x has a fused kernel (flash / memory-efficient on CUDA); 1.13 has none, so we spell it out.
inline torch::Tensor masked_attention(const torch::Tensor& q,  // (X, H, n, dk)
                                      const torch::Tensor& k,  // (X, H, Lk, dk)
                                      const torch::Tensor& v,  // (X, H, Lk, dv)
                                      const torch::Tensor& allowed, double scale) {  // -> (X, H, n, dv)
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  return detail::biased_attention(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
#endif
}

// Plain causal attention where query i sees keys 0..i (n == Lk): the training hot path.
inline torch::Tensor causal_attention(const torch::Tensor& q,  // (X, H, n, dk)
                                      const torch::Tensor& k,  // (X, H, n, dk)
                                      const torch::Tensor& v,  // (X, H, n, dv)
                                      double scale) {          // -> (X, H, n, dv)
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, scale);
#else
  const auto n = q.size(2);
  const auto allowed = torch::ones({n, n}, q.options().dtype(torch::kBool)).tril();  // (n, n)
  return detail::biased_attention(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
#endif
}

}  // namespace infini::compat
