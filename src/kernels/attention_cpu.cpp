#include "kernels/attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include "kernels/gemm_cpu.h"
#include "kernels/vector_cpu.h"

namespace infini::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The bias row block of head task i (i = x * H + h).
torch::Tensor bias_for(const torch::Tensor& bias, int64_t i, int64_t H) {
  return bias.dim() == 2 ? bias : bias.select(0, i / H).select(0, 0);  // (n, L)
}

// Sizes of one call, and the head task's offsets into the contiguous (X*H, rows, d) buffers.
struct Shape {
  int64_t X, H, n, L, dk, dv;
  int64_t bias_offset(int64_t i, bool per_row) const { return per_row ? (i / H) * n * L : 0; }
};

// fp32, the training dtype: each task's products go straight to BLAS on raw pointers. At 64-token
// segments a head's products are 64 x 64 x 64, and LibTorch's dispatch with the views around each
// call (select, transpose, resolve_conj) costs about as much as the arithmetic.
void forward_fp32(const Shape& s, const float* q, const float* k, const float* v, const float* bias, bool per_row,
                  float scale, float* probs, float* out, int64_t begin, int64_t end) {
  const auto nL = s.n * s.L;
  for (int64_t i = begin; i < end; ++i) {
    float* p = probs + i * nL;                          // (n, L)
    const float* b = bias + s.bias_offset(i, per_row);  // (n, L)
    std::memcpy(p, b, sizeof(float) * nL);
    gemm(false, true, s.n, s.L, s.dk, scale, q + i * s.n * s.dk, s.dk, k + i * s.L * s.dk, s.dk, 1.0f, p, s.L);
    for (int64_t r = 0; r < s.n; ++r) {
      float* row = p + r * s.L;
      const float* brow = b + r * s.L;
      softmax(row, s.L);
      // The vector exp clamps -inf to about 1e-38: masked keys get exactly 0, as LibTorch's softmax gives.
      for (int64_t j = 0; j < s.L; ++j)
        if (std::isinf(brow[j])) row[j] = 0.0f;
    }
    gemm(false, false, s.n, s.dv, s.L, 1.0f, p, s.L, v + i * s.L * s.dv, s.dv, 0.0f, out + i * s.n * s.dv, s.dv);
  }
}

void backward_fp32(const Shape& s, const float* q, const float* k, const float* v, const float* probs,
                   const float* d_out, float scale, float* dq, float* dk, float* dv, int64_t begin, int64_t end) {
  const auto nL = s.n * s.L;
  std::vector<float> ds(nL);  // (n, L): dP, then the scores' gradient in place
  for (int64_t i = begin; i < end; ++i) {
    const float* p = probs + i * nL;           // (n, L)
    const float* g = d_out + i * s.n * s.dv;   // (n, dv)
    const float* qi = q + i * s.n * s.dk;      // (n, dk)
    const float* ki = k + i * s.L * s.dk;      // (L, dk)
    gemm(false, true, s.n, s.L, s.dv, 1.0f, g, s.dv, v + i * s.L * s.dv, s.dv, 0.0f, ds.data(), s.L);
    // Softmax backward: dS = P * (dP - rowsum(dP * P)).
    for (int64_t r = 0; r < s.n; ++r) {
      float* row = ds.data() + r * s.L;
      const float* prow = p + r * s.L;
      const float dot_r = dot(row, prow, s.L);
      for (int64_t j = 0; j < s.L; ++j) row[j] = prow[j] * (row[j] - dot_r);
    }
    gemm(false, false, s.n, s.dk, s.L, scale, ds.data(), s.L, ki, s.dk, 0.0f, dq + i * s.n * s.dk, s.dk);
    gemm(true, false, s.L, s.dk, s.n, scale, ds.data(), s.L, qi, s.dk, 0.0f, dk + i * s.L * s.dk, s.dk);
    gemm(true, false, s.L, s.dv, s.n, 1.0f, p, s.L, g, s.dv, 0.0f, dv + i * s.L * s.dv, s.dv);
  }
}

struct AttentionFunction : public torch::autograd::Function<AttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& bias, double scale) {
    const auto X = q.size(0), H = q.size(1), n = q.size(2), L = k.size(2), dv = v.size(3);
    const Shape s{X, H, n, L, q.size(3), dv};
    // Detached, contiguous (X*H, rows, d) views; worker threads must not record autograd history.
    const auto q3 = q.detach().reshape({X * H, n, q.size(3)}).contiguous();
    const auto k3 = k.detach().reshape({X * H, L, k.size(3)}).contiguous();
    const auto v3 = v.detach().reshape({X * H, L, dv}).contiguous();
    const auto b = bias.detach().contiguous();
    auto probs = torch::empty({X * H, n, L}, q3.options());  // (X*H, n, L)
    auto out = torch::empty({X * H, n, dv}, q3.options());   // (X*H, n, dv)
    const bool fp32 = q3.scalar_type() == torch::kFloat32 && k3.scalar_type() == torch::kFloat32 &&
                      v3.scalar_type() == torch::kFloat32 && b.scalar_type() == torch::kFloat32;
    const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
    at::parallel_for(0, X * H, 1, [&](int64_t begin, int64_t end) {
      if (fp32) {
        forward_fp32(s, q3.data_ptr<float>(), k3.data_ptr<float>(), v3.data_ptr<float>(), b.data_ptr<float>(),
                     b.dim() != 2, static_cast<float>(scale), probs.data_ptr<float>(), out.data_ptr<float>(), begin,
                     end);
        return;
      }
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
    const Shape s{X, H, n, L, q3.size(2), v3.size(2)};
    const auto d_out = grad_outputs[0].reshape({X * H, n, v3.size(2)}).contiguous();  // (X*H, n, dv)
    auto dq = torch::empty_like(q3), dk = torch::empty_like(k3), dv = torch::empty_like(v3);
    const bool fp32 = q3.scalar_type() == torch::kFloat32 && d_out.scalar_type() == torch::kFloat32;
    const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
    at::parallel_for(0, X * H, 1, [&](int64_t begin, int64_t end) {
      if (fp32) {
        backward_fp32(s, q3.data_ptr<float>(), k3.data_ptr<float>(), v3.data_ptr<float>(), probs.data_ptr<float>(),
                      d_out.data_ptr<float>(), static_cast<float>(scale), dq.data_ptr<float>(), dk.data_ptr<float>(),
                      dv.data_ptr<float>(), begin, end);
        return;
      }
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
