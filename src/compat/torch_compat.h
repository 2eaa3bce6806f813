// Every difference between the LibTorch versions infini supports (Debian's 1.13 CPU build and 2.x,
// CPU or CUDA) lives in this header, so the rest of the code is written once.
#pragma once

#include <limits>

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "kernels/attention_cpu.h"
#include "kernels/batched_matmul_cpu.h"

#define INFINI_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace infini::compat {

#if !INFINI_TORCH_AT_LEAST(2, 1)
namespace detail {
inline torch::Tensor bias_from_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  return torch::zeros(allowed.sizes(), allowed.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}
}  // namespace detail
#endif

// Softmax attention with a boolean mask (true = may attend), of shape (n, Lk) or (X, 1, n, Lk).
// 2.x has a fused kernel (flash / memory-efficient on CUDA, flash on CPU); 1.13 has none, so
// infini brings its own CPU kernel.
inline torch::Tensor masked_attention(const torch::Tensor& q,  // (X, H, n, dk)
                                      const torch::Tensor& k,  // (X, H, Lk, dk)
                                      const torch::Tensor& v,  // (X, H, Lk, dv)
                                      const torch::Tensor& allowed, double scale) {  // -> (X, H, n, dv)
#if INFINI_TORCH_AT_LEAST(2, 1)
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  return kernels::attention_cpu(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
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
  return kernels::attention_cpu(q, k, v, detail::bias_from_mask(allowed, q.scalar_type()), scale);
#endif
}

// Products of many small matrices with matching leading dimensions (the compressive memory's).
inline torch::Tensor batched_matmul(const torch::Tensor& a,   // (..., m, k)
                                    const torch::Tensor& b) {  // (..., k, p) -> (..., m, p)
  if (a.is_cpu() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2))
    return kernels::batched_matmul_cpu(a, b);
  return torch::matmul(a, b);
}

// bf16 autocast on the CPU for the guard's lifetime (the API was renamed in 2.4).
class CpuAutocastBf16 {
 public:
  explicit CpuAutocastBf16(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
#else
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
#endif
  }
  ~CpuAutocastBf16() {
    if (!enabled_) return;
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCPU, false);
#else
    at::autocast::set_cpu_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  CpuAutocastBf16(const CpuAutocastBf16&) = delete;
  CpuAutocastBf16& operator=(const CpuAutocastBf16&) = delete;

 private:
  bool enabled_;
};

// Inside this guard autocast does not apply: the compressive memory computes in its own dtype.
class NoAutocast {
 private:
  c10::impl::ExcludeDispatchKeyGuard guard_{c10::autocast_dispatch_keyset};
};

}  // namespace infini::compat
