#include "memory/knn.h"

#include <algorithm>

namespace infini::knn {

torch::Tensor normalize(const torch::Tensor& x) {
  return x / x.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
}

torch::Tensor search(const torch::Tensor& q_hat, const torch::Tensor& keys, int64_t k, int64_t block) {
  torch::NoGradGuard no_grad;
  const auto F = keys.size(2);
  const auto kk = std::min(k, F);
  // bf16 scores would tie often; fp64 models search in fp64.
  const auto type = at::promote_types(q_hat.scalar_type(), torch::kFloat32);
  const auto q = q_hat.to(type);  // (B, H, n, dk)
  torch::Tensor best_scores, best_idx;  // (B, H, n, <= kk)
  for (int64_t f0 = 0; f0 < F; f0 += block) {
    const auto b = std::min(block, F - f0);
    const auto scores = torch::matmul(q, keys.narrow(2, f0, b).to(type).transpose(-1, -2));  // (B, H, n, b)
    auto [top_scores, top_idx] = scores.topk(std::min(kk, b), -1);
    top_idx = top_idx + f0;
    if (!best_scores.defined()) {
      best_scores = top_scores;
      best_idx = top_idx;
      continue;
    }
    const auto all_scores = torch::cat({best_scores, top_scores}, -1);
    const auto all_idx = torch::cat({best_idx, top_idx}, -1);
    const auto [merged, pick] = all_scores.topk(std::min(kk, all_scores.size(-1)), -1);
    best_scores = merged;
    best_idx = all_idx.gather(-1, pick);
  }
  return best_idx;
}

torch::Tensor read(const torch::Tensor& q_hat, const torch::Tensor& keys, const torch::Tensor& values,
                   const torch::Tensor& idx, const torch::Tensor& log_scale) {
  const auto B = idx.size(0), H = idx.size(1), n = idx.size(2), k = idx.size(3), F = keys.size(2);
  const auto dk = keys.size(3), dv = values.size(3);
  // Row of each retrieved key in the flattened (B H F) memory.
  const auto base = (torch::arange(B * H, idx.options()) * F).view({B, H, 1, 1});
  const auto flat = (idx + base).reshape({-1});                                   // (B H n k)
  const auto k_sel = keys.reshape({B * H * F, dk}).index_select(0, flat).view({B, H, n, k, dk});
  const auto v_sel = values.reshape({B * H * F, dv}).index_select(0, flat).view({B, H, n, k, dv});
  const auto scale = log_scale.exp().to(q_hat.scalar_type()).view({1, H, 1, 1});    // (1, H, 1, 1)
  const auto scores = torch::matmul(k_sel, q_hat.unsqueeze(-1)).squeeze(-1) * scale;  // (B, H, n, k)
  const auto weights = torch::softmax(scores, -1);                                   // (B, H, n, k)
  return torch::matmul(weights.unsqueeze(-2), v_sel).squeeze(-2);                    // (B, H, n, dv)
}

std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& keys, const torch::Tensor& values,
                                               const torch::Tensor& k_seg, const torch::Tensor& v_seg,
                                               int64_t capacity) {
  auto k = torch::cat({keys, normalize(k_seg.detach()).to(keys.scalar_type())}, 2);  // (B, H, F + N, dk)
  auto v = torch::cat({values, v_seg.detach().to(values.scalar_type())}, 2);          // (B, H, F + N, dv)
  const auto rows = k.size(2), kept = std::min(rows, capacity);
  return {k.narrow(2, rows - kept, kept).clone(at::MemoryFormat::Contiguous),
          v.narrow(2, rows - kept, kept).clone(at::MemoryFormat::Contiguous)};
}

}  // namespace infini::knn
