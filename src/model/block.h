// A pre-norm transformer block: x + Attn(RMSNorm(x)), then x + MLP(RMSNorm(x)). A routed block
// (Mixture-of-Depths) also owns its router and predictor; src/routing decides which tokens it sees.
#pragma once

#include <torch/torch.h>

#include "memory/state.h"
#include "model/attention.h"
#include "infini/config.h"
#include "model/layers.h"
#include "routing/predictor.h"

namespace infini {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& config, bool routed, bool knn = false);

  // A dense block over every token of a span: x + f(x).
  torch::Tensor forward(const torch::Tensor& x,  // (B, n, D)
                        LayerMemory& mem, const SegmentSpan& span);  // -> (B, n, D)

  // Only what the block's memory and segment cache take from x (InfiniAttention::remember), for a
  // last block whose output here nothing reads.
  void remember(const torch::Tensor& x,  // (B, n, D)
                LayerMemory& mem, const SegmentSpan& span);

  // The residual update f alone, Attn + MLP without x itself, for an ordered subset of a segment's
  // tokens at `positions` that follow the `cached` earlier selected tokens in `mem`.
  torch::Tensor update(const torch::Tensor& x,  // (B, k, D)
                       LayerMemory& mem, int64_t cached, bool ends,
                       const torch::Tensor& positions);  // (B, k) int64 -> (B, k, D)

  bool routed() const { return !router.is_empty(); }

  RMSNorm attn_norm{nullptr};
  InfiniAttention attn{nullptr};
  RMSNorm mlp_norm{nullptr};
  SwiGLU mlp{nullptr};
  torch::nn::Linear router{nullptr};  // (1, D): r = x w^T; routed blocks only
  RoutePredictor predictor{nullptr};  // routed blocks only
};
TORCH_MODULE(Block);

}  // namespace infini
