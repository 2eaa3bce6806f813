#include "routing/predictor.h"

namespace infini {

RoutePredictorImpl::RoutePredictorImpl(const ModelConfig& c) {
  hidden = register_module("hidden", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.mod_predictor_hidden)));
  out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(c.mod_predictor_hidden, 1)));
}

torch::Tensor RoutePredictorImpl::forward(const torch::Tensor& x) {
  return out(torch::silu(hidden(x))).squeeze(-1);  // (B, n)
}

}  // namespace infini
