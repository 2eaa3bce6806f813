#include "memory/compressive.h"

#include "compat/torch_compat.h"
#include "kernels/batched_matmul_cpu.h"

namespace infini::memory {

torch::Tensor feature_map(const torch::Tensor& x) { return kernels::elu_plus_one(x); }

torch::Tensor shift_keys(const torch::Tensor& k, const torch::Tensor& shift) {
  if (!shift.defined() || k.size(2) == 0) return k;
  const auto n = k.size(2);
  const auto before = torch::cat({k.narrow(2, 0, 1), k.narrow(2, 0, n - 1)}, 2);  // (B, H, N, dk): K_{t-1}
  const auto share = torch::sigmoid(shift).to(k.scalar_type()).view({1, -1, 1, 1});  // (1, H, 1, 1)
  return torch::lerp(k, before, share);
}

torch::Tensor read(const torch::Tensor& sigma_q, const torch::Tensor& M, const torch::Tensor& z,
                   double eps) {
  compat::NoAutocast fp32_memory;
  const auto dv = M.size(-1);
  const auto sq = sigma_q.to(M.scalar_type());                   // (B, H, n, dk)
  // Numerator and normaliser in one product: z rides along as an extra column of M.
  const auto both = compat::batched_matmul(sq, torch::cat({M, z.unsqueeze(-1)}, -1));  // (B, H, n, dv+1)
  // With M = 0 and z = 0 this is exactly 0 / eps = 0: the first segment reads nothing.
  const auto parts = both.split_with_sizes({dv, 1}, -1);  // split: its backward is one cat
  return parts[0] / (parts[1] + eps);
}

std::pair<torch::Tensor, torch::Tensor> write(const torch::Tensor& sigma_k, const torch::Tensor& v,
                                              const torch::Tensor& M, const torch::Tensor& z,
                                              double eps, bool delta_rule, const torch::Tensor& weight) {
  compat::NoAutocast fp32_memory;
  const auto sk = sigma_k.to(M.scalar_type());  // (B, H, N, dk)
  auto value = v.to(M.scalar_type());           // (B, H, N, dv)
  if (delta_rule) {
    // Only what the memory does not already return for these keys gets written.
    value = value - read(sk, M, z, eps);  // (B, H, N, dv)
  }
  auto add_M = compat::batched_matmul(sk.transpose(-2, -1), value);  // (B, H, dk, dv)
  auto add_z = sk.sum(-2);                                            // (B, H, dk)
  if (weight.defined()) {
    const auto w = weight.to(M.scalar_type()).view({-1, 1, 1});  // (B, 1, 1)
    add_M = add_M * w.unsqueeze(-1);
    add_z = add_z * w;
  }
  return {M + add_M, z + add_z};
}

}  // namespace infini::memory
