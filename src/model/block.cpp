#include "model/block.h"

namespace infini {

BlockImpl::BlockImpl(const ModelConfig& c) {
  attn_norm = register_module("attn_norm", RMSNorm(c.d_model, c.norm_eps));
  attn = register_module("attn", InfiniAttention(c));
  mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model, c.norm_eps));
  mlp = register_module("mlp", SwiGLU(c));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, LayerMemory& mem, const SegmentSpan& span) {
  const auto h = x + attn(attn_norm(x), mem, span.start, span.ends);  // (B, n, D)
  return h + mlp(mlp_norm(h));
}

}  // namespace infini
