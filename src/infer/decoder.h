// The one-token decode step, fused. Generation feeds one token at a time, and at that size each
// LibTorch op costs more in dispatch than in arithmetic (about 4-6 us, and a step through the general
// forward pass takes about 80 of them). This step runs the whole model for one token inside one
// parallel region on raw fp32 pointers: each product with a weight split by row panels across the
// threads (the weights packed once per model, kernels/matvecs_cpu.h),
// attention (kernels/query_attention_cpu.h) and the memory read split by heads, a barrier between
// stages. At the segment boundary
// (once per segment_len tokens) the memory is written with the fused prefill's kernels
// (kernels/infini_cpu.h), and the caches are closed by the general code (finish_segment).
//
// It computes what InfiniTransformer::forward computes for one token, and the consistency tests check
// it against that path (tests/test_session.cpp, tests/test_routing.cpp, tests/test_fused_paths.cpp).
//
// step_batch() runs the step for several sequences at once (a server's concurrent generations), each
// with its own decoder and state: every weight row is loaded once per step and multiplied by every
// sequence's vector while it is in cache, and the barriers are shared. Each output is the same dot
// product, in the same order, as in a step of its own, so a sequence's logits do not depend on what
// else is in the batch, bit for bit (tests/test_session.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "kernels/matvecs_cpu.h"
#include "memory/state.h"
#include "model/rope.h"
#include "model/transformer.h"

namespace infini {

class TokenDecoder {
 public:
  // fp32 weights on the CPU, batch 1, any memory but knn and rmt: the case this step is written for.
  static bool supports(const ModelConfig& config, torch::Device device);

  explicit TokenDecoder(InfiniTransformer model);

  // Takes over a state: copies its unfinished segment (and XL cache) into the decoder's own caches,
  // where new keys and values are then written in place.
  void attach(const ModelState& state);
  // Reads one token after `state` (attached, or last stepped by this decoder); returns the (V) fp32
  // logits of the next token. The state's position, M, z and XL cache are kept current; its segment
  // cache (seg_k, seg_v) only by write_back().
  torch::Tensor step(int64_t token, ModelState& state);
  // One step for each decoder (of one model; each attached or last stepped as step() requires),
  // reading tokens[k] after states[k]. Returns each sequence's (V) fp32 logits.
  static std::vector<torch::Tensor> step_batch(const std::vector<TokenDecoder*>& decoders,
                                               const std::vector<int64_t>& tokens,
                                               const std::vector<ModelState*>& states);
  // Copies the decoder's segment cache back into the state, so that the general path, a state file
  // or another decoder can continue from it.
  void write_back(ModelState& state) const;

 private:

 public:
  // The matrices of the products, packed for kernels::matvecs_packed: once per model and weights,
  // shared by every decoder of it (cached_packing() in decoder.cpp).
  struct PackedLayer {
    kernels::PackedRows qkv, out, gate, up, down, pred_hidden;
  };
  struct PackedModel {
    std::vector<PackedLayer> layers;
    kernels::PackedRows lm_head;
  };

 private:
  struct LayerWeights {
    const float* attn_norm;  // (D)
    const float* qkv;        // (H*dk + H*dk + H*dv, D)
    const float* out;        // (D, H*dv)
    const float* mlp_norm;   // (D)
    const float* gate_up;    // (2F, D): gate rows, then up rows
    const float* down;       // (D, F)
    std::vector<float> gate;  // (H): sigmoid(beta), the memory read's share
    std::vector<float> key_shift;     // (H): sigmoid of memory_key_shift's logits, else empty
    torch::Tensor key_shift_logits;   // (H) or undefined: for a write through finish_segment
    const float* q_conv = nullptr;   // (H, dk, W), qk_conv only
    const float* k_conv = nullptr;   // (H, dk, W)
    // Routed blocks only (Mixture-of-Depths): the router and the predictor.
    const float* router = nullptr;       // (D)
    const float* pred_hidden = nullptr;  // (P, D)
    const float* pred_hidden_bias = nullptr;  // (P)
    const float* pred_out = nullptr;     // (P)
    float pred_out_bias = 0;
  };
  // Per-layer caches. Rows [L - xl_len, L) of rotated_k/values hold the XL cache (at positions
  // -xl_len..-1), rows [L, L + p) the current segment, so one head attends to one contiguous range.
  // A routed block caches only the tokens it took: `count` of them, at their `positions`.
  struct LayerCache {
    torch::Tensor seg_k;      // (1, H, L, dk): un-rotated, for the memory write
    torch::Tensor rotated_k;  // (H, 2L, dk)
    torch::Tensor values;     // (H, 2L, dv)
    int64_t xl_len = 0;
    int64_t count = 0;               // cached tokens of the current segment
    std::vector<int64_t> positions;  // routed blocks: their positions in the segment
    torch::Tensor conv_q, conv_k;    // (1, H, W - 1, dk): qk_conv's tails, the state's own until write_back
  };
  struct Scratch {
    std::vector<float> normed;  // (B, D): each sequence's normed vector, computed by every thread
    std::vector<char> take;     // (B): whether the current routed layer takes each sequence's token
    std::vector<float> weight;  // (B): and the weight w(r) of its update
    std::vector<const float*> xs;  // (B): the vectors of a product (kernels/matvecs_cpu.h)
    std::vector<float*> ys;        // (B): and where its results go
    std::vector<float> q;       // (dk): rotated query
    std::vector<float> sigma_q; // (dk)
    std::vector<float> scores;  // (2L)
    std::vector<float> head;    // (dv)
    std::vector<float> conv_q, conv_k;  // (dk) each: the convolved query and key (qk_conv)
  };

  // One sequence of a batched step: its decoder (caches and activations), state and segment position.
  struct Sequence {
    TokenDecoder* decoder;
    ModelState* state;
    int64_t p;
  };
  void load_xl(const LayerMemory& mem, LayerCache& cache) const;
  // Whether routed layer i takes each sequence's token (in its x_), and the weight w(r) of its
  // update, into s.take and s.weight; every thread computes the same answer.
  void route(const std::vector<Sequence>& batch, size_t i, Scratch& s, int thread, int threads) const;
  // Layer i for every sequence of the batch, run by every thread of the parallel region; `thread` of
  // `threads` takes its share of rows and of (sequence, head) pairs. Sets s.take: whether the layer
  // took each sequence's token (always, for a dense layer).
  void run_layer(const std::vector<Sequence>& batch, size_t i, Scratch& s, int thread, int threads) const;
  // Caches and the memory after the step: the token counted, and a finished segment written.
  void finish_step(ModelState& state, int64_t p);
  // The segment boundary's write of layer i's n cached tokens into mem's M and z (new tensors), with
  // the fused prefill's kernels (kernels/infini_cpu.h).
  void write_memory(size_t i, LayerMemory& mem, int64_t n);

  InfiniTransformer model_;
  ModelConfig config_;
  Rope rope_;
  std::vector<torch::Tensor> held_;  // contiguous fp32 weights the pointers below point into
  std::shared_ptr<const PackedModel> packed_;
  const float* embed_ = nullptr;     // (V, D)
  const float* final_norm_ = nullptr;  // (D)
  const float* lm_head_ = nullptr;     // (V, D): the embedding when tied
  std::vector<LayerWeights> weights_;
  std::vector<LayerCache> caches_;
  std::vector<float> rope_cos_, rope_sin_;  // (L, dk/2): positions 0..L-1 of a segment

  // Activations shared by the threads of one step.
  std::vector<float> x_;     // (D): the residual stream
  std::vector<float> qkv_;   // (H*dk + H*dk + H*dv)
  std::vector<float> attn_;  // (H*dv)
  std::vector<float> act_;   // (F): silu(gate) * up
  std::vector<float> up_;    // (F): the up projection, before the product
  std::vector<float> mlp_out_;  // (D): the MLP's output, before the residual
  std::vector<float> attn_res_;  // (D): the attention output (a routed layer keeps it for x + w (a + m))
  std::vector<float> h_;         // (D): a routed layer's x + a, the MLP's input
  std::vector<float> pred_;      // (P): the predictor's hidden layer
  std::vector<char> took_;       // (n_layers): what each layer did with the current token
  std::vector<Scratch> scratch_;  // one per thread
  std::vector<float> write_sk_;    // (L, dk): the written keys' features, at a segment boundary
  std::vector<float> write_work_;  // (L * dv + dk): the memory write's scratch
};

}  // namespace infini
