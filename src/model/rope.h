// Rotary position embedding, rotate-half layout (docs/MODEL.md). Used only inside the local softmax
// attention: the compressive memory sees un-rotated Q and K, as the paper prescribes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include <torch/torch.h>

namespace infini {

class Rope {
 public:
  // Positions in [-segment_len, segment_len) come from one precomputed table: a segment's own
  // positions and those of the XL cache just before it.
  Rope(int64_t d_key, double theta, int64_t segment_len)
      : d_key_(d_key), theta_(theta), segment_len_(segment_len) {}

  // Rotates x (B, H, n, d_key) as if its rows sat at positions first, first+1, ..., first+n-1.
  torch::Tensor apply(const torch::Tensor& x, int64_t first) const;

  // Rotates x (B, H, n, d_key) with row j of batch b at position positions[b][j], each in
  // [-segment_len, segment_len): the tokens a Mixture-of-Depths router selected keep their own.
  torch::Tensor apply_at(const torch::Tensor& x,               // (B, H, n, d_key)
                         const torch::Tensor& positions) const;  // (B, n) int64

  // cos and sin for n positions from `first`, each (n, d_key/2), computed in float64.
  std::pair<torch::Tensor, torch::Tensor> compute(int64_t first, int64_t n,
                                                  const torch::TensorOptions& options) const;

 private:
  int64_t d_key_;
  double theta_;
  int64_t segment_len_;
  // The table in like's dtype and device, made on first use. Under a lock: sessions on several threads
  // share one model.
  std::pair<torch::Tensor, torch::Tensor> table(const torch::Tensor& like) const;

  std::shared_ptr<std::mutex> table_mutex_ = std::make_shared<std::mutex>();
  mutable torch::Tensor table_cos_, table_sin_;  // (2 * segment_len, d_key/2), from -segment_len
};

}  // namespace infini
