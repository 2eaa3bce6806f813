#include "model/qk_conv.h"

namespace infini::qk_conv {

namespace {
// The last `keep` rows, copied: a view would pin the whole segment's rows for as long as the state lives.
torch::Tensor last_rows(const torch::Tensor& rows, int64_t keep) {  // (B, H, keep, d)
  return rows.narrow(2, rows.size(2) - keep, keep).clone(at::MemoryFormat::Contiguous);
}
}  // namespace

torch::Tensor apply(const torch::Tensor& x, torch::Tensor& tail, const torch::Tensor& taps) {
  const auto n = x.size(2), W = taps.size(2), H = taps.size(0), d = taps.size(1);
  const auto rows = torch::cat({tail, x}, 2);                 // (B, H, W - 1 + n, d)
  const auto weights = taps.to(x.scalar_type());              // (H, d, W)
  auto out = rows.narrow(2, W - 1, n) * weights.select(2, 0).view({1, H, 1, d});  // (B, H, n, d)
  for (int64_t j = 1; j < W; ++j) out = out + rows.narrow(2, W - 1 - j, n) * weights.select(2, j).view({1, H, 1, d});
  tail = last_rows(rows, W - 1);
  return out;
}

void advance(const torch::Tensor& x, torch::Tensor& tail) {
  tail = last_rows(torch::cat({tail, x}, 2), tail.size(2));  // (B, H, W - 1, d)
}

}  // namespace infini::qk_conv
