// AdamW (decoupled weight decay) over parameter groups. Its state is a set of named tensors, so a
// checkpoint keeps it in the same safetensors file as the weights and resuming restores it exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace infini {

struct ParamGroup {
  std::string name;                 // "matrices", "norms", "gates"
  std::vector<std::string> params;  // parameter names (the checkpoint keys)
  std::vector<torch::Tensor> tensors;
  double lr = 1e-3;                 // before the schedule's factor
  double weight_decay = 0;
};

class AdamW {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8);

  void zero_grad();
  // One update with every group's lr scaled by `lr_factor`; parameters without a gradient are skipped.
  void step(double lr_factor);

  int64_t steps_taken() const { return t_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // "adamw.exp_avg.<param>", "adamw.exp_avg_sq.<param>" and "adamw.step".
  std::map<std::string, torch::Tensor> state_tensors() const;
  // Restores what state_tensors() wrote; `origin` names the file in errors.
  void load_state_tensors(const std::map<std::string, torch::Tensor>& tensors, const std::string& origin);

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<torch::Tensor>> exp_avg_, exp_avg_sq_;  // per group, per parameter
  double beta1_, beta2_, eps_;
  int64_t t_ = 0;
};

}  // namespace infini
