#include "model/rope.h"

namespace infini {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x' = [x1 c - x2 s, x2 c + x1 s] for halves x1, x2 of the last dimension, into a fresh contiguous
// tensor (the attention kernel then needs no copy). Its adjoint rotates by -angle:
// dx = [g1 c + g2 s, g2 c - g1 s].
struct Rotate : public torch::autograd::Function<Rotate> {
  static torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s, double sign) {
    const auto half = x.size(-1) / 2;
    const auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
    auto out = torch::empty(x.sizes(), x.options());  // contiguous
    auto o1 = out.narrow(-1, 0, half), o2 = out.narrow(-1, half, half);
    torch::mul_out(o1, x1, c).addcmul_(x2, s, -sign);
    torch::mul_out(o2, x2, c).addcmul_(x1, s, sign);
    return out;
  }
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& c,
                               const torch::Tensor& s) {
    ctx->save_for_backward({c, s});
    return rotate(x.detach(), c, s, 1.0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    return {rotate(grad_outputs[0], saved[0], saved[1], -1.0), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> Rope::compute(int64_t first, int64_t n,
                                                      const torch::TensorOptions& options) const {
  // Angles in float64 whatever the compute dtype, so large positions keep their precision.
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto half = d_key_ / 2;
  const auto inv_freq =
      torch::pow(theta_, torch::arange(0, half, f64) * (-2.0 / static_cast<double>(d_key_)));  // (half)
  const auto pos = torch::arange(first, first + n, f64);                                       // (n)
  const auto angles = torch::outer(pos, inv_freq);                                             // (n, half)
  return {angles.cos().to(options), angles.sin().to(options)};
}

std::pair<torch::Tensor, torch::Tensor> Rope::table(const torch::Tensor& like) const {
  const std::lock_guard<std::mutex> lock(*table_mutex_);
  if (!table_cos_.defined() || table_cos_.dtype() != like.dtype() || table_cos_.device() != like.device())
    std::tie(table_cos_, table_sin_) = compute(-segment_len_, 2 * segment_len_, like.options());
  return {table_cos_, table_sin_};
}

torch::Tensor Rope::apply_at(const torch::Tensor& x, const torch::Tensor& positions) const {
  const auto B = positions.size(0), n = positions.size(1);
  if (n == 0) return x;
  const auto [table_cos, table_sin] = table(x);
  const auto rows = (positions + segment_len_).reshape({-1});             // (B n)
  const auto cos = table_cos.index_select(0, rows).view({B, 1, n, -1});  // (B, 1, n, d_key/2)
  const auto sin = table_sin.index_select(0, rows).view({B, 1, n, -1});  // (B, 1, n, d_key/2)
  return Rotate::apply(x, cos, sin);
}

torch::Tensor Rope::apply(const torch::Tensor& x, int64_t first) const {
  const auto n = x.size(-2);
  if (n == 0) return x;
  torch::Tensor cos, sin;  // (n, d_key/2)
  if (first >= -segment_len_ && first + n <= segment_len_) {
    const auto [table_cos, table_sin] = table(x);
    cos = table_cos.narrow(0, first + segment_len_, n);
    sin = table_sin.narrow(0, first + segment_len_, n);
  } else {
    std::tie(cos, sin) = compute(first, n, x.options());
  }
  return Rotate::apply(x, cos, sin);
}

}  // namespace infini
