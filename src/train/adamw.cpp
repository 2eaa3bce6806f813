#include "train/adamw.h"

#include <cmath>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : groups_(std::move(groups)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const auto& g : groups_) {
    exp_avg_.emplace_back();
    exp_avg_sq_.emplace_back();
    for (const auto& p : g.tensors) {
      exp_avg_.back().push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
      exp_avg_sq_.back().push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    }
  }
}

void AdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.tensors)
      p.mutable_grad().reset();  // undefined, not zero: a resumed run starts the same way
}

void AdamW::step(double lr_factor) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const auto& g = groups_[gi];
    const double lr = g.lr * lr_factor;
    for (size_t pi = 0; pi < g.tensors.size(); ++pi) {
      auto p = g.tensors[pi];
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      auto& m = exp_avg_[gi][pi];
      auto& v = exp_avg_sq_[gi][pi];
      if (g.weight_decay != 0) p.mul_(1.0 - lr * g.weight_decay);
      m.mul_(beta1_).add_(grad, 1.0 - beta1_);
      v.mul_(beta2_).addcmul_(grad, grad, 1.0 - beta2_);
      const auto denom = (v.sqrt() / std::sqrt(bias2)).add_(eps_);
      p.addcdiv_(m, denom, -lr / bias1);
    }
  }
}

std::map<std::string, torch::Tensor> AdamW::state_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      out["adamw.exp_avg." + groups_[gi].params[pi]] = exp_avg_[gi][pi];
      out["adamw.exp_avg_sq." + groups_[gi].params[pi]] = exp_avg_sq_[gi][pi];
    }
  out["adamw.step"] = torch::tensor({t_}, torch::kInt64);
  return out;
}

void AdamW::load_state_tensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& origin) {
  const auto get = [&](const std::string& key, const torch::Tensor& like) {
    const auto it = tensors.find(key);
    if (it == tensors.end()) throw Error(fmt::format("{}: missing optimizer tensor '{}'", origin, key));
    if (it->second.sizes() != like.sizes() || it->second.scalar_type() != like.scalar_type())
      throw Error(fmt::format("{}: optimizer tensor '{}' does not match its parameter", origin, key));
    if (!torch::isfinite(it->second).all().item<bool>())
      throw Error(fmt::format("{}: optimizer tensor '{}' holds NaN or infinite values; the file is damaged", origin,
                              key));
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const auto& name = groups_[gi].params[pi];
      exp_avg_[gi][pi].copy_(get("adamw.exp_avg." + name, exp_avg_[gi][pi]));
      exp_avg_sq_[gi][pi].copy_(get("adamw.exp_avg_sq." + name, exp_avg_sq_[gi][pi]));
    }
  const auto step = tensors.find("adamw.step");
  if (step == tensors.end() || step->second.numel() != 1 || step->second.scalar_type() != torch::kInt64)
    throw Error(fmt::format("{}: missing or malformed optimizer tensor 'adamw.step'", origin));
  t_ = step->second.item<int64_t>();
}

}  // namespace infini
