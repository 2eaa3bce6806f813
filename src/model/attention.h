// Infini-attention (arXiv 2404.07143): causal softmax attention inside a segment, gated with a read
// of a per-head compressive memory of all earlier segments. The `memory` config field also selects
// the baselines that share this code path: segment-local only (`none`) and Transformer-XL (`xl`).
#pragma once

#include <vector>

#include <torch/torch.h>

#include "memory/state.h"
#include "infini/config.h"
#include "model/rope.h"

namespace infini {

// A run of tokens inside one segment: tokens[:, offset : offset+length] sit at positions
// [start, start+length) of their segment; `ends` when the last one completes the segment.
struct SegmentSpan {
  int64_t offset;
  int64_t length;
  int64_t start;
  bool ends;
};

// Cuts `length` tokens that follow `pos_in_segment` tokens of the current segment into spans.
std::vector<SegmentSpan> split_into_segments(int64_t length, int64_t pos_in_segment, int64_t segment_len);

// The segment boundary: writes the finished segment's un-rotated keys and values into the compressive
// memory (infini modes) or makes them the XL cache (xl and knn modes; knn's block also appends them
// to its kNN memory), then empties the segment cache. The
// one definition shared by the forward pass and the one-token decoder.
// A routed block passes the cached tokens' positions, which then become the XL cache's.
// `key_shift` is the block's InfiniAttention::key_shift (memory_key_shift configs only).
void finish_segment(const ModelConfig& config, LayerMemory& mem,
                    const torch::Tensor& k_seg,               // (B, H, N, dk)
                    const torch::Tensor& v_seg,               // (B, H, N, dv)
                    const torch::Tensor& pos_seg,             // (B, N) int64, routed blocks only
                    const torch::Tensor& key_shift);          // (H) or undefined

class InfiniAttentionImpl : public torch::nn::Module {
 public:
  // `knn`: this block holds the kNN memory (memory "knn", config.knn_block()).
  explicit InfiniAttentionImpl(const ModelConfig& config, bool knn = false);

  // x holds n >= 1 tokens of the current segment that follow the `start` tokens `mem` caches for it.
  // They attend to those and to each other causally, read the memory as it stood at the segment's
  // start and, when `ends`, write the whole segment into `mem`. Dense blocks pass every token, at
  // positions [start, start + n). A routed block passes the selected tokens in order, with their
  // positions in the segment (`positions`), and `mem` caches only earlier selected tokens.
  torch::Tensor forward(const torch::Tensor& x,  // (B, n, D)
                        LayerMemory& mem, int64_t start, bool ends,
                        const torch::Tensor& positions = {});  // (B, n) int64 -> (B, n, D)

  // What later tokens need of these ones and nothing more: their keys and values join the segment's
  // cache and, when `ends`, the memory; no attention, no read, no output. The model's last block uses
  // it for tokens whose output nothing scores. Dense blocks only (positions [start, start + n)).
  void remember(const torch::Tensor& x,  // (B, n, D)
                LayerMemory& mem, int64_t start, bool ends);

  torch::nn::Linear qkv_proj{nullptr};  // (H*dk + H*dk + H*dv, D)
  torch::nn::Linear out_proj{nullptr};  // (D, H*dv)
  torch::Tensor gate;                   // (H): beta; sigmoid(beta) is the share of the memory read
                                        // (compressive, or the kNN block's retrieval)
  torch::Tensor knn_log_scale;          // (H), kNN block only: the retrieval's scores are cosines
                                        // times exp(knn_log_scale)
  torch::Tensor key_shift;              // (H), memory_key_shift only: sigmoid of it is the share of
                                        // the previous key in each key the memory is written with
  torch::Tensor q_conv;                 // (H, dk, qk_conv), qk_conv only: tap j weighs the raw query j
  torch::Tensor k_conv;                 // tokens back (qk_conv.h); likewise for the keys

 private:
  struct Projected {
    torch::Tensor q;  // (B, H, n, dk), un-rotated; undefined unless asked for
    torch::Tensor k;  // (B, H, n, dk), un-rotated
    torch::Tensor v;  // (B, H, n, dv)
  };
  // The projections, under qk_conv convolved (which moves the layer's convolution tails on).
  Projected project(const torch::Tensor& x,  // (B, n, D)
                    LayerMemory& mem, bool queries);
  // The segment's keys and values so far: cached for its later tokens, or, when `ends`, written.
  void keep(LayerMemory& mem,
            const torch::Tensor& k_seg,    // (B, H, N, dk)
            const torch::Tensor& v_seg,    // (B, H, N, dv)
            const torch::Tensor& pos_seg,  // (B, N) int64, routed blocks only
            bool ends);

  // Mixes the memory read into the local attention output with the per-head gate.
  torch::Tensor gated(const torch::Tensor& local,   // (B, H, n, dv)
                      const torch::Tensor& a_mem);  // (B, H, n, dv)

  ModelConfig config_;
  bool knn_;
  Rope rope_;
  double scale_;
};
TORCH_MODULE(InfiniAttention);

}  // namespace infini
