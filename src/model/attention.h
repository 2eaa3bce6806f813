// Infini-attention (arXiv 2404.07143): causal softmax attention inside a segment, gated with a read
// of a per-head compressive memory of all earlier segments. The `memory` config field also selects
// the baselines that share this code path: segment-local only (`none`) and Transformer-XL (`xl`).
#pragma once

#include <torch/torch.h>

#include "memory/state.h"
#include "model/config.h"
#include "model/rope.h"

namespace infini {

class InfiniAttentionImpl : public torch::nn::Module {
 public:
  explicit InfiniAttentionImpl(const ModelConfig& config);

  // x holds the tokens at positions [start, start + n) of the current segment, n >= 1, all in one
  // segment. They attend to the earlier tokens of that segment (kept in `mem`), read the memory as it
  // stood at the segment's start and, when `segment_ends`, write the whole segment into `mem`.
  // The block can pass any subset of a segment's tokens here (Mixture-of-Depths), in order.
  torch::Tensor forward(const torch::Tensor& x,  // (B, n, D)
                        LayerMemory& mem, int64_t start, bool segment_ends);  // -> (B, n, D)

  torch::nn::Linear qkv_proj{nullptr};  // (H*dk + H*dk + H*dv, D)
  torch::nn::Linear out_proj{nullptr};  // (D, H*dv)
  torch::Tensor gate;                   // (H): beta; sigmoid(beta) is the share of the memory read

 private:
  torch::Tensor local_attention(const torch::Tensor& q_rot,  // (B, H, n, dk)
                                const torch::Tensor& k_seg,  // (B, H, start+n, dk) un-rotated
                                const torch::Tensor& v_seg,  // (B, H, start+n, dv)
                                const LayerMemory& mem, int64_t start) const;

  ModelConfig config_;
  Rope rope_;
  double scale_;
};
TORCH_MODULE(InfiniAttention);

}  // namespace infini
