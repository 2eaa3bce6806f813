// Per-sequence state, kept apart from the immutable weights (after llama.cpp's llama_memory_i):
// the model's forward() reads and returns it, and nothing of it lives in module buffers.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "infini/config.h"

namespace infini {

// One attention layer's memory of the past.
struct LayerMemory {
  // Compressive memory (infini modes). Always at least fp32; carries autograd history across
  // segments until ModelState::detach().
  torch::Tensor M;  // (B, H, d_key, d_value)
  torch::Tensor z;  // (B, H, d_key)

  // Keys/values of the current, unfinished segment, un-rotated (and convolved under qk_conv). Written
  // into M/z (or moved into the XL cache) when the segment completes, then emptied. Length =
  // ModelState::pos_in_segment.
  torch::Tensor seg_k;  // (B, H, p, d_key)
  torch::Tensor seg_v;  // (B, H, p, d_value)

  // qk_conv only: the raw queries and keys (before the convolution and RoPE) of the last qk_conv - 1
  // tokens the layer took, oldest first, across segment boundaries; zeros before the first token.
  // Like M, they carry autograd history until ModelState::detach().
  torch::Tensor conv_q;  // (B, H, qk_conv - 1, d_key)
  torch::Tensor conv_k;  // (B, H, qk_conv - 1, d_key)

  // Transformer-XL cache: the previous complete segment, un-rotated, no gradient (xl mode).
  torch::Tensor xl_k;  // (B, H, L, d_key), L = 0 or segment_len
  torch::Tensor xl_v;  // (B, H, L, d_value)

  // memory "knn", its kNN block only (knn_block()): the external memory, the document's last
  // F = min(knn_tokens, tokens before this segment) keys (normalised, un-rotated) and values, oldest
  // first; no gradient.
  torch::Tensor knn_k;  // (B, H, F, d_key)
  torch::Tensor knn_v;  // (B, H, F, d_value)

  // Routed (Mixture-of-Depths) blocks only: the cached tokens are the ones the router selected, so
  // their positions in the segment are kept for RoPE. seg_k then holds p' <= pos_in_segment rows and
  // the XL cache L' <= segment_len rows, the previous segment's selected tokens.
  torch::Tensor seg_pos;  // (B, p') int64
  torch::Tensor xl_pos;   // (B, L') int64, positions in the previous segment (xl mode)

  // Training only: how many segments like it the next finished segment stands for in the compressive
  // memory (memory::write's weight); used by that write, then undefined again. Not part of state files.
  torch::Tensor next_write_weight;  // (B) fp32 or undefined
};

class ModelState {
 public:
  ModelState() = default;
  // The state of a sequence that has seen nothing: M = 0, z = 0, empty caches.
  ModelState(const ModelConfig& config, int64_t batch, torch::Device device);

  // Forget everything: back to the empty state, keeping batch size and device.
  void clear();
  // Cut the autograd history (truncated back-propagation through time).
  void detach();
  // A deep copy, detached: later reads of either never change the other.
  ModelState clone() const;

  const ModelConfig& config() const { return config_; }
  int64_t batch() const { return batch_; }
  // Tokens of the current segment already consumed; 0 at a segment boundary.
  int64_t pos_in_segment() const { return pos_in_segment_; }
  int64_t tokens_seen() const { return tokens_seen_; }
  void advance(int64_t n_tokens, int64_t segment_len);
  // The next segment boundary writes each sequence's segment into the memory `weights` times over
  // (memory::write); passkey training uses it to read short prompts as if they were long.
  void weigh_next_write(const torch::Tensor& weights);  // (B)

  // memory "rmt": the memory the next segment reads, (B, p, D), the last block's output at the
  // previous segment's write rows; (B, 0, D) before the first segment ends (the model's learned
  // rmt_memory then). Carries autograd history like M until detach(). Undefined in other modes.
  const torch::Tensor& rmt_memory() const { return rmt_memory_; }
  void set_rmt_memory(torch::Tensor memory) { rmt_memory_ = std::move(memory); }

  std::vector<LayerMemory>& layers() { return layers_; }
  const std::vector<LayerMemory>& layers() const { return layers_; }

  // Bytes held by all state tensors; bounded by the config, not by the input length.
  int64_t bytes() const;

  // Flat, named tensors ("layers.{i}.M", ...) plus the position counters, for state files.
  std::map<std::string, torch::Tensor> to_tensors() const;
  // The inverse of to_tensors, for a state of `batch` sequences. Every tensor is checked against the
  // config (shape, dtype, finite values, cached positions) before it is used, and a tensor that is
  // neither the state's nor named in `extra` (the caller's own) is refused: infini::Error names it.
  static ModelState from_tensors(const ModelConfig& config,
                                 const std::map<std::string, torch::Tensor>& tensors, int64_t batch,
                                 torch::Device device, const std::set<std::string>& extra = {});

 private:
  ModelConfig config_;
  int64_t batch_ = 0;
  torch::Device device_ = torch::kCPU;
  int64_t pos_in_segment_ = 0;
  int64_t tokens_seen_ = 0;
  std::vector<LayerMemory> layers_;
  torch::Tensor rmt_memory_;
};

}  // namespace infini
