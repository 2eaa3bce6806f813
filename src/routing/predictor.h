// Mixture-of-Depths' auxiliary predictor (arXiv 2404.02258, section 3.5): a small MLP that learns,
// from a stop-gradient copy of the block's input, whether the router's top-k would take a token. It
// lets sampling decide causally, token by token, without changing what the router learns.
#pragma once

#include <torch/torch.h>

#include "infini/config.h"

namespace infini {

class RoutePredictorImpl : public torch::nn::Module {
 public:
  explicit RoutePredictorImpl(const ModelConfig& config);
  // silu(x Wh^T + bh) Wo^T + bo; the caller passes a detached x.
  torch::Tensor forward(const torch::Tensor& x);  // (B, n, D) -> (B, n)

  torch::nn::Linear hidden{nullptr};  // (P, D), with bias
  torch::nn::Linear out{nullptr};     // (1, P), with bias
};
TORCH_MODULE(RoutePredictor);

}  // namespace infini
