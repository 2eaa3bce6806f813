#include "model/block.h"

namespace infini {

BlockImpl::BlockImpl(const ModelConfig& c, bool routed, bool knn) {
  attn_norm = register_module("attn_norm", RMSNorm(c.d_model, c.norm_eps));
  attn = register_module("attn", InfiniAttention(c, knn));
  mlp_norm = register_module("mlp_norm", RMSNorm(c.d_model, c.norm_eps));
  mlp = register_module("mlp", SwiGLU(c));
  if (routed) {
    router = register_module("router", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, 1).bias(false)));
    predictor = register_module("predictor", RoutePredictor(c));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, LayerMemory& mem, const SegmentSpan& span) {
  const auto h = x + attn(attn_norm(x), mem, span.start, span.ends);  // (B, n, D)
  return h + mlp(mlp_norm(h));
}

void BlockImpl::remember(const torch::Tensor& x, LayerMemory& mem, const SegmentSpan& span) {
  attn->remember(attn_norm(x), mem, span.start, span.ends);
}

torch::Tensor BlockImpl::update(const torch::Tensor& x, LayerMemory& mem, int64_t cached, bool ends,
                                const torch::Tensor& positions) {
  const auto a = attn(attn_norm(x), mem, cached, ends, positions);  // (B, k, D)
  return a + mlp(mlp_norm(x + a));                                  // (B, k, D)
}

}  // namespace infini
