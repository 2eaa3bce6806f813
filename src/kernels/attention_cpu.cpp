#include "kernels/attention_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

namespace infini::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The bias row block of head task i (i = x * H + h).
torch::Tensor bias_for(const torch::Tensor& bias, int64_t i, int64_t H) {
  return bias.dim() == 2 ? bias : bias.select(0, i / H).select(0, 0);  // (n, L)
}

struct AttentionFunction : public torch::autograd::Function<AttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& bias, double scale) {
    const auto X = q.size(0), H = q.size(1), n = q.size(2), L = k.size(2), dv = v.size(3);
    // Detached, contiguous (X*H, rows, d) views; worker threads must not record autograd history.
    const auto q3 = q.detach().reshape({X * H, n, q.size(3)}).contiguous();
    const auto k3 = k.detach().reshape({X * H, L, k.size(3)}).contiguous();
    const auto v3 = v.detach().reshape({X * H, L, dv}).contiguous();
    const auto b = bias.detach();
    auto probs = torch::empty({X * H, n, L}, q3.options());  // (X*H, n, L)
    auto out = torch::empty({X * H, n, dv}, q3.options());   // (X*H, n, dv)
    const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
    at::parallel_for(0, X * H, 1, [&](int64_t begin, int64_t end) {
      at::ThreadLocalStateGuard same_mode(caller);
      for (int64_t i = begin; i < end; ++i) {
        auto p = probs[i];  // (n, L)
        torch::addmm_out(p, bias_for(b, i, H), q3[i], k3[i].t(), 1.0, scale);
        torch::softmax_out(p, p, -1);
        auto o = out[i];
        torch::mm_out(o, p, v3[i]);
      }
    });
    ctx->save_for_backward({q3, k3, v3, probs});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["shape"] = std::vector<int64_t>{X, H, n, L};
    return out.view({X, H, n, dv});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &q3 = saved[0], &k3 = saved[1], &v3 = saved[2], &probs = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const auto X = shape[0], H = shape[1], n = shape[2], L = shape[3];
    const auto d_out = grad_outputs[0].reshape({X * H, n, v3.size(2)}).contiguous();  // (X*H, n, dv)
    auto dq = torch::empty_like(q3), dk = torch::empty_like(k3), dv = torch::empty_like(v3);
    const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
    at::parallel_for(0, X * H, 1, [&](int64_t begin, int64_t end) {
      at::ThreadLocalStateGuard same_mode(caller);
      for (int64_t i = begin; i < end; ++i) {
        const auto p = probs[i];                          // (n, L)
        const auto dp = torch::mm(d_out[i], v3[i].t());   // (n, L)
        // Softmax backward, P * (dP - rowsum(dP * P)), in LibTorch's one fused kernel; the scores'
        // scale is folded into the two products that use it.
        const auto ds = at::_softmax_backward_data(dp, p, -1, p.scalar_type());  // (n, L)
        auto dq_i = dq[i], dk_i = dk[i], dv_i = dv[i];
        torch::addmm_out(dq_i, dq_i, ds, k3[i], 0.0, scale);
        torch::addmm_out(dk_i, dk_i, ds.t(), q3[i], 0.0, scale);
        torch::mm_out(dv_i, p.t(), d_out[i]);
      }
    });
    return {dq.view({X, H, n, q3.size(2)}), dk.view({X, H, L, k3.size(2)}), dv.view({X, H, L, v3.size(2)}),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& bias, double scale) {
  return AttentionFunction::apply(q, k, v, bias, scale);
}

}  // namespace infini::kernels
