// Reading a whole segment, fused. Prefill spends most of its time in matrix products, but through the
// general forward pass a segment also costs some 200 LibTorch ops: element-wise passes over the
// activations, a rotary embedding built from several ops, and a causal softmax over the full score
// matrix. This path keeps the four big products of each block as single BLAS calls over the
// segment's rows (BLAS splits them across the threads) and does the rest in few passes on raw fp32
// pointers: RMSNorm and SwiGLU in parallel regions over the rows; and, in one region over the heads,
// RoPE, the causal scores in blocks of 64 queries against only the keys they may see, the softmax,
// the memory read, the gate, and the segment's write into the memory, with the small products as
// direct BLAS calls (kernels/gemm_cpu.h), exp vectorised (kernels/vector_cpu.h), and the memory's
// math in the kernels it shares with the one-token decoder (kernels/infini_cpu.h).
//
// It computes what InfiniTransformer::forward computes for one segment, and the consistency tests
// check it against that path: logits, M, z and the caches (tests/test_session.cpp on tiny configs,
// tests/test_fused_paths.cpp at the shipped model's sizes).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "memory/state.h"
#include "model/transformer.h"

namespace infini {

class SegmentPrefill {
 public:
  // fp32 on the CPU, batch 1, no routed block, and a memory that lives in M and z (or none): the
  // XL cache and Mixture-of-Depths stay on the general path.
  static bool supports(const ModelConfig& config, torch::Device device);

  explicit SegmentPrefill(InfiniTransformer model);

  // Reads one whole segment (config.segment_len tokens) after `state`, which stands at a segment
  // start; writes it into the memory and returns the (V) fp32 logits of the token after the last.
  torch::Tensor read(const int64_t* tokens, ModelState& state);

 private:
  struct LayerWeights {
    torch::Tensor qkv, out, gate_up, down;  // (out_features, in_features), as nn::Linear holds them
    const float* attn_norm;                 // (D)
    const float* mlp_norm;                  // (D)
    std::vector<float> gate;                // (H): sigmoid(beta), the memory read's share
    std::vector<float> key_shift;           // (H): sigmoid(key_shift) (memory_key_shift), else empty
    const float* q_conv = nullptr;          // (H, dk, W), qk_conv only
    const float* k_conv = nullptr;          // (H, dk, W)
  };
  struct Scratch {  // one head's intermediates, row-major
    std::vector<float> q, k;      // (L, dk) each: rotated
    std::vector<float> sq, sk;    // (L, dk) each: sigma(q), sigma(k) of the un-rotated q and the written k
    std::vector<float> scores;    // (L, L): causal rows, computed a block of queries at a time
    std::vector<float> work;      // (L * dv + dk): the memory kernels' scratch (kernels/infini_cpu.h)
    std::vector<float> conv_q, conv_k;  // (L, dk) each: the convolved, un-rotated rows (qk_conv)
    std::vector<float> tail;      // (W - 1, dk): a tail as the rows reach it (qk_conv)
  };

  // Where one layer's results go: the segment's memory write (M, z) and qk_conv's new tails, each
  // (1, H, ...) and null when the config has no such state.
  struct LayerOut {
    float* M = nullptr;
    float* z = nullptr;
    float* conv_q = nullptr;
    float* conv_k = nullptr;
  };
  // One layer over the segment in x_, its output for rows first..L-1 only (every row's keys and values
  // are written).
  void run_layer(size_t i, const LayerMemory& mem, const LayerOut& next, int threads, int64_t first);
  // work(thread, threads) on every thread of one parallel region.
  template <typename Work>
  static void in_parallel(int threads, const Work& work);
  // Causal softmax attention of head h into its columns of attn_, then the gated memory read, then
  // the head's memory write (M, z as of the segment's start -> next.M, next.z), both with the shared
  // kernels of kernels/infini_cpu.h. Rows before `first` are only written, not attended from or read for.
  void attend(size_t i, int64_t h, const LayerMemory& mem, const LayerOut& next, Scratch& s, int64_t first);
  // qk_conv: head h's convolved queries and keys of the segment into s.conv_q and s.conv_k, and its
  // new tails into next.conv_q and next.conv_k.
  void convolve(size_t i, int64_t h, const LayerMemory& mem, const LayerOut& next, Scratch& s) const;

  InfiniTransformer model_;
  ModelConfig config_;
  std::vector<torch::Tensor> held_;  // contiguous fp32 copies the pointers below point into
  torch::Tensor embed_;              // (V, D)
  torch::Tensor lm_head_;            // (V, D): the embedding when tied
  const float* final_norm_ = nullptr;  // (D)
  std::vector<LayerWeights> weights_;
  std::vector<float> rope_cos_, rope_sin_;  // (L, dk/2): positions 0..L-1 of a segment

  // Activations of the segment, shared by the threads.
  torch::Tensor x_;        // (L, D): the residual stream
  torch::Tensor normed_;   // (L, D)
  torch::Tensor qkv_;      // (L, H*dk + H*dk + H*dv): un-rotated q and k, then v
  torch::Tensor attn_;     // (L, H*dv): the heads' gated outputs
  torch::Tensor gate_up_;  // (L, 2F)
  torch::Tensor act_;      // (L, F): silu(gate) * up
  std::vector<Scratch> scratch_;  // one per thread
};

}  // namespace infini
