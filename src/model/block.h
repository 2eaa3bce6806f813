// A pre-norm transformer block: x + Attn(RMSNorm(x)), then x + MLP(RMSNorm(x)).
#pragma once

#include <torch/torch.h>

#include "memory/state.h"
#include "model/attention.h"
#include "model/config.h"
#include "model/layers.h"

namespace infini {

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const ModelConfig& config);

  // Works on any ordered subset of one segment's tokens (all of them, for a dense block), so a
  // Mixture-of-Depths router can gather tokens, run the block on them and scatter the result back.
  torch::Tensor forward(const torch::Tensor& x,  // (B, n, D)
                        LayerMemory& mem, const SegmentSpan& span);  // -> (B, n, D)

  RMSNorm attn_norm{nullptr};
  InfiniAttention attn{nullptr};
  RMSNorm mlp_norm{nullptr};
  SwiGLU mlp{nullptr};
};
TORCH_MODULE(Block);

}  // namespace infini
