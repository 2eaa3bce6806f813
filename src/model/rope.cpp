#include "model/rope.h"

namespace infini {

std::pair<torch::Tensor, torch::Tensor> Rope::compute(int64_t first, int64_t n,
                                                      const torch::TensorOptions& options) const {
  // Angles in float64 whatever the compute dtype, so large positions keep their precision.
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto half = d_key_ / 2;
  const auto inv_freq =
      torch::pow(theta_, torch::arange(0, half, f64) * (-2.0 / static_cast<double>(d_key_)));  // (half)
  const auto pos = torch::arange(first, first + n, f64);                                       // (n)
  const auto angles = torch::outer(pos, inv_freq);                                             // (n, half)
  const auto full = torch::cat({angles, angles}, -1);                                          // (n, d_key)
  return {full.cos().to(options), full.sin().to(options)};
}

torch::Tensor Rope::apply(const torch::Tensor& x, int64_t first) const {
  const auto n = x.size(-2);
  if (n == 0) return x;
  torch::Tensor cos, sin;  // (n, d_key)
  if (first >= -segment_len_ && first + n <= segment_len_) {
    if (!table_cos_.defined() || table_cos_.dtype() != x.dtype() || table_cos_.device() != x.device())
      std::tie(table_cos_, table_sin_) = compute(-segment_len_, 2 * segment_len_, x.options());
    cos = table_cos_.narrow(0, first + segment_len_, n);
    sin = table_sin_.narrow(0, first + segment_len_, n);
  } else {
    std::tie(cos, sin) = compute(first, n, x.options());
  }
  const auto halves = x.chunk(2, -1);  // 2 x (B, H, n, d_key/2); chunk's backward is one cat
  const auto rotated = torch::cat({-halves[1], halves[0]}, -1);  // (B, H, n, d_key)
  return x * cos + rotated * sin;
}

}  // namespace infini
