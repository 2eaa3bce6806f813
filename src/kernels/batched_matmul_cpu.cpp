#include "kernels/batched_matmul_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

namespace infini::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// out[i] = op(x[i]) @ op(y[i]) for every i, each product single-threaded inside a parallel task.
torch::Tensor parallel_bmm(const torch::Tensor& x, const torch::Tensor& y, bool transpose_x, bool transpose_y) {
  const auto batch = x.size(0);
  const auto m = transpose_x ? x.size(2) : x.size(1);
  const auto p = transpose_y ? y.size(1) : y.size(2);
  auto out = torch::empty({batch, m, p}, x.options());
  const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    at::ThreadLocalStateGuard same_mode(caller);
    for (int64_t i = begin; i < end; ++i) {
      auto o = out[i];
      const auto xi = transpose_x ? x[i].t() : x[i];
      const auto yi = transpose_y ? y[i].t() : y[i];
      torch::mm_out(o, xi, yi);
    }
  });
  return out;
}

struct BatchedMatmul : public torch::autograd::Function<BatchedMatmul> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    auto shape = a.sizes().vec();
    shape.back() = b.size(-1);
    const auto a3 = a.detach().reshape({-1, a.size(-2), a.size(-1)});  // (batch, m, k)
    const auto b3 = b.detach().reshape({-1, b.size(-2), b.size(-1)});  // (batch, k, p)
    ctx->save_for_backward({a3, b3});
    ctx->saved_data["a_shape"] = a.sizes().vec();
    ctx->saved_data["b_shape"] = b.sizes().vec();
    return parallel_bmm(a3, b3, false, false).view(shape);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& a3 = saved[0];
    const auto& b3 = saved[1];
    const auto g = grad_outputs[0].reshape({a3.size(0), a3.size(1), b3.size(2)});  // (batch, m, p)
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0))
      da = parallel_bmm(g, b3, false, true).view(ctx->saved_data["a_shape"].toIntVector());
    if (ctx->needs_input_grad(1))
      db = parallel_bmm(a3, g, true, false).view(ctx->saved_data["b_shape"].toIntVector());
    return {da, db};
  }
};

struct EluPlusOne : public torch::autograd::Function<EluPlusOne> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    // Into a contiguous buffer, so the products that consume it need no copy.
    auto y = torch::empty(x.sizes(), x.options());
    torch::elu_out(y, x.detach()).add_(1.0);
    ctx->save_for_backward({y});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    // x > 0: sigma = x + 1 > 1, slope 1; x <= 0: sigma = exp(x) <= 1, slope exp(x) = sigma.
    const auto y = ctx->get_saved_variables()[0];
    return {grad_outputs[0] * y.clamp_max(1.0)};
  }
};

}  // namespace

torch::Tensor batched_matmul_cpu(const torch::Tensor& a, const torch::Tensor& b) {
  return BatchedMatmul::apply(a, b);
}

torch::Tensor elu_plus_one(const torch::Tensor& x) { return EluPlusOne::apply(x); }

}  // namespace infini::kernels
