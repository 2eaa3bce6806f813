#include "train/trainer.h"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "util/error.h"

namespace infini {

void Optimizer::set_lr_factor(double factor) {
  auto& groups = adamw->param_groups();
  for (size_t i = 0; i < groups.size(); ++i)
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(base_lr[i] * factor);
}

Optimizer make_optimizer(InfiniTransformer& model, const TrainOptions& o) {
  std::vector<torch::Tensor> matrices, norms, gates;
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".gate") == 0) gates.push_back(item.value());
    else if (item.value().dim() >= 2) matrices.push_back(item.value());
    else norms.push_back(item.value());
  }
  Optimizer opt;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const auto add = [&](std::vector<torch::Tensor>& params, double lr, double wd) {
    if (params.empty()) return;
    groups.emplace_back(params, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).weight_decay(wd)));
    opt.base_lr.push_back(lr);
  };
  add(matrices, o.lr, o.weight_decay);
  add(norms, o.lr, 0.0);
  add(gates, o.lr * o.gate_lr_mult, 0.0);
  opt.adamw = std::make_unique<torch::optim::AdamW>(std::move(groups));
  return opt;
}

double lr_factor(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) return static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double span = std::max<int64_t>(1, o.steps - o.warmup);
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup) / span);
  return o.min_lr_ratio + (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

StepResult train_step(InfiniTransformer& model, Optimizer& optimizer, const torch::Tensor& tokens,
                      const TrainOptions& o, int64_t step) {
  const auto& c = model->config();
  const auto W = tokens.size(1) - 1;
  const auto inputs = tokens.narrow(1, 0, W);   // (B, W)
  const auto targets = tokens.narrow(1, 1, W);  // (B, W)
  const auto chunk = o.bptt_segments > 0 ? o.bptt_segments * c.segment_len : W;

  optimizer.adamw->zero_grad();
  auto state = model->initial_state(tokens.size(0));
  double loss_sum = 0;
  for (int64_t offset = 0; offset < W; offset += chunk) {
    const auto n = std::min(chunk, W - offset);
    auto out = model->forward(inputs.narrow(1, offset, n), std::move(state));
    const auto loss = torch::nn::functional::cross_entropy(
        out.logits.reshape({-1, c.vocab_size}).to(torch::kFloat32), targets.narrow(1, offset, n).reshape({-1}));
    // Weighted so the gradient is that of the mean over the whole window.
    (loss * (static_cast<double>(n) / static_cast<double>(W))).backward();
    loss_sum += loss.item<double>() * static_cast<double>(n);
    state = std::move(out.state);
    state.detach();  // truncated BPTT: the next chunk's gradient stops here
  }
  const double loss = loss_sum / static_cast<double>(W);
  if (!std::isfinite(loss))
    throw Error(fmt::format("step {}: the loss is {}; stopping before the weights change "
                            "(lower --lr or check the data)", step + 1, loss));
  const double grad_norm =
      torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip > 0 ? o.grad_clip : 1e30);
  if (!std::isfinite(grad_norm))
    throw Error(fmt::format("step {}: the gradient norm is {}; stopping before the weights change "
                            "(lower --lr or check the data)", step + 1, grad_norm));
  optimizer.set_lr_factor(lr_factor(o, step));
  optimizer.adamw->step();
  return {loss, grad_norm};
}

TrainSummary train(InfiniTransformer& model, const torch::Tensor& corpus, const TrainOptions& o) {
  const auto need = o.window + 1;
  if (corpus.numel() < need)
    throw Error(fmt::format("the training text has {} tokens; a window needs {} (lower --window)",
                            corpus.numel(), need));
  model->train();
  auto optimizer = make_optimizer(model, o);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  TrainSummary summary;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  double tokens_done = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const auto starts = torch::randint(corpus.numel() - need + 1, {o.batch}, gen, torch::kInt64);  // (B)
    const auto index = starts.unsqueeze(1) + torch::arange(need).unsqueeze(0);                       // (B, W+1)
    const auto batch = corpus.index_select(0, index.reshape({-1})).reshape({o.batch, need});
    const auto r = train_step(model, optimizer, batch, o, step);
    tokens_done += static_cast<double>(o.batch * o.window);
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    if (step == 0) summary.first_loss = r.loss;
    summary.last_loss = r.loss;
    summary.steps = step + 1;
    summary.seconds = elapsed;
    summary.tokens_per_second = tokens_done / elapsed;
    if (!o.quiet)
      fmt::print(stderr, "step {:>5}/{} | loss {:.4f} | lr {:.2e} | grad {:.3f} | {:.0f} tok/s | {:.1f}s\n",
                 step + 1, o.steps, r.loss, o.lr * lr_factor(o, step), r.grad_norm,
                 summary.tokens_per_second, elapsed);
    if (o.max_seconds > 0 && elapsed >= o.max_seconds) break;
  }
  return summary;
}

}  // namespace infini
