// Every difference between the LibTorch versions infini supports (Debian's 1.13 CPU build and 2.x,
// CPU or CUDA) lives in this header, so the rest of the code is written once.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#define INFINI_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace infini::compat {

// Softmax attention with a boolean mask (true = may attend), broadcastable to (B, H, n, Lk).
// 2.x has a fused kernel (flash / memory-efficient on CUDA); 1.13 has none, so we spell it out.
inline torch::Tensor masked_attention(const torch::Tensor& q,  // (B, H, n, dk)
                                      const torch::Tensor& k,  // (B, H, Lk, dk)
                                      const torch::Tensor& v,  // (B, H, Lk, dv)
                                      const torch::Tensor& allowed,  // (.., n, Lk) bool
                                      double scale) {
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)).mul_(scale);  // (B, H, n, Lk)
  scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);  // (B, H, n, dv)
#endif
}

// Plain causal attention where query i sees keys 0..i (n == Lk): the training hot path.
inline torch::Tensor causal_attention(const torch::Tensor& q,  // (B, H, n, dk)
                                      const torch::Tensor& k,  // (B, H, n, dk)
                                      const torch::Tensor& v,  // (B, H, n, dv)
                                      double scale) {
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, true, scale);
#else
  const auto n = q.size(-2);
  auto allowed = torch::ones({n, n}, q.options().dtype(torch::kBool)).tril();  // (n, n)
  return masked_attention(q, k, v, allowed, scale);
#endif
}

}  // namespace infini::compat
