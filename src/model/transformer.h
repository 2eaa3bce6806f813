// The decoder-only Infini-Transformer: embedding, blocks, final RMSNorm, LM head.
#pragma once

#include <torch/torch.h>

#include "memory/state.h"
#include "model/block.h"
#include "infini/config.h"
#include "model/layers.h"
#include "routing/mixture_of_depths.h"

namespace infini {

class InfiniTransformerImpl : public torch::nn::Module {
 public:
  explicit InfiniTransformerImpl(const ModelConfig& config);

  struct Output {
    torch::Tensor logits;  // (B, T - logits_from, V)
    ModelState state;      // the state after the last token
    RoutingStats routing;  // what the routed blocks decided (empty for a dense model)
  };

  // Reads T >= 1 tokens that continue the sequence `state` describes, segment after segment.
  // Any chunking of a sequence gives the same logits. `state` is not modified; the new one is
  // returned. Gradients flow through it until the caller calls detach() on it. The logits are those
  // of tokens logits_from..T-1 alone, (B, T - logits_from, V) (T - 1: reading a long input needs no
  // more; training on answers needs those from the first answer on). For segments that end before
  // logits_from the last block computes only its memory's input (BlockImpl::remember), unless routed.
  // `routing` matters only to routed (Mixture-of-Depths) blocks: top-k for training and its
  // validation, causal for reading and sampling. Under top-k, the chunking of a segment changes
  // which tokens are selected, so only whole-segment calls reproduce training.
  Output forward(const torch::Tensor& tokens,  // (B, T) int64
                 ModelState state, int64_t logits_from = 0, Routing routing = Routing::TopK);

  ModelState initial_state(int64_t batch) const;

  const ModelConfig& config() const { return config_; }
  int64_t parameter_count() const;

  torch::nn::Embedding embed{nullptr};  // (V, D)
  torch::nn::ModuleList blocks{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // (V, D); null when tied to the embedding
  torch::Tensor rmt_memory;            // (p, D), memory "rmt" only: the memory a sequence starts with

 private:
  void initialise_weights();

  ModelConfig config_;
};
TORCH_MODULE(InfiniTransformer);

}  // namespace infini
