// Infini-attention (arXiv 2404.07143): causal softmax attention inside a segment, gated with a read
// of a per-head compressive memory of all earlier segments. The `memory` config field also selects
// the baselines that share this code path: segment-local only (`none`) and Transformer-XL (`xl`).
#pragma once

#include <vector>

#include <torch/torch.h>

#include "memory/state.h"
#include "model/config.h"
#include "model/rope.h"

namespace infini {

// A run of tokens inside one segment: x[:, offset : offset+length] sits at positions
// [start, start+length) of its segment; `ends` when its last token completes the segment.
struct SegmentSpan {
  int64_t offset;
  int64_t length;
  int64_t start;
  bool ends;
};

// Cuts `length` tokens that follow `pos_in_segment` tokens of the current segment into spans.
std::vector<SegmentSpan> split_into_segments(int64_t length, int64_t pos_in_segment, int64_t segment_len);

class InfiniAttentionImpl : public torch::nn::Module {
 public:
  explicit InfiniAttentionImpl(const ModelConfig& config);

  // x holds consecutive spans of one sequence, in order. Each span attends to the earlier tokens of
  // its segment, reads the memory as it stood at the segment's start and, when the segment ends,
  // writes the segment into `mem`. The block can pass any ordered subset of tokens here
  // (Mixture-of-Depths) as long as the spans describe it.
  torch::Tensor forward(const torch::Tensor& x,  // (B, T, D)
                        LayerMemory& mem, const std::vector<SegmentSpan>& spans);  // -> (B, T, D)

  torch::nn::Linear qkv_proj{nullptr};  // (H*dk + H*dk + H*dv, D)
  torch::nn::Linear out_proj{nullptr};  // (D, H*dv)
  torch::Tensor gate;                   // (H): beta; sigmoid(beta) is the share of the memory read

 private:
  // S whole segments at once (the training path): local attention batched over segments, the
  // memory recurrence stepped segment by segment, all reads in one batched product.
  torch::Tensor whole_segments(const torch::Tensor& qkv,  // (B, S*N, H*(2dk+dv))
                               LayerMemory& mem, int64_t S);  // -> (B, S*N, H*dv)
  // One span that starts or ends inside a segment (streaming, decoding).
  torch::Tensor partial_segment(const torch::Tensor& qkv,  // (B, n, H*(2dk+dv))
                                LayerMemory& mem, int64_t start, bool ends);  // -> (B, n, H*dv)
  // Mixes the memory read into the local attention output with the per-head gate.
  torch::Tensor gated(const torch::Tensor& local,   // (..., H, n, dv)
                      const torch::Tensor& a_mem);  // (..., H, n, dv)

  ModelConfig config_;
  Rope rope_;
  double scale_;
};
TORCH_MODULE(InfiniAttention);

}  // namespace infini
