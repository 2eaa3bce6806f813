#include "model/block.h"

namespace infini {

BlockImpl::BlockImpl(const ModelConfig& c) {
  attn_norm = register_module("attn_norm", RMSNorm(c.d_model, c.norm_eps));
  attn = register_module("attn", InfiniAttention(c));
  mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model, c.norm_eps));
  mlp = register_module("mlp", SwiGLU(c));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, LayerMemory& mem,
                                 const std::vector<SegmentSpan>& spans) {
  const auto h = x + attn(attn_norm(x), mem, spans);  // (B, T, D)
  return h + mlp(mlp_norm(h));
}

}  // namespace infini
