// Mixture-of-Depths (arXiv 2404.02258; docs/MODEL.md): a routed block runs on a subset of each
// segment's tokens and the rest pass it on the residual stream. Top-k selection trains the router;
// it is not causal (a token's membership depends on later tokens), so sampling selects causally,
// token by token, with the router's sign or the auxiliary predictor.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "memory/state.h"
#include "model/attention.h"
#include "model/block.h"
#include "infini/config.h"

namespace infini {

// What the routed blocks of one forward pass decided, summed over every (block, row, token).
// The losses and agreement counts exist in top-k routing only, where membership is the target.
struct RoutingStats {
  torch::Tensor router_bce;     // () sum of BCE(r, in top-k); carries gradient to the router
  torch::Tensor predictor_bce;  // () sum of BCE(p, in top-k); gradient to the predictor only
  torch::Tensor router_agree;     // () int64: decisions where (r > 0) == in top-k
  torch::Tensor predictor_agree;  // () int64: decisions where (p > 0) == in top-k
  int64_t selected = 0;   // tokens that went through a routed block
  int64_t decisions = 0;  // (block, row, token) triples routed

  // The training objective's auxiliary term: mod_aux_weight * mean router BCE + mean predictor BCE,
  // both means over `total_decisions` (of the whole step, which may span several forward passes).
  torch::Tensor aux_loss(const ModelConfig& config, double total_decisions) const;
  // Adds another pass's totals, detached.
  void merge(const RoutingStats& other);
};

// k for n tokens: ceil(capacity * n), at least 1 and at most n (docs/MODEL.md).
int64_t topk_count(double capacity, int64_t n);

// Runs routed block `block` on span `span` of a segment: selects tokens, runs the block on them
// and returns x with x[S] + w(r_S) * f(x[S]) at the selected rows. Causal routing needs batch 1.
torch::Tensor routed_forward(BlockImpl& block, const ModelConfig& config,
                             const torch::Tensor& x,  // (B, n, D)
                             LayerMemory& mem, const SegmentSpan& span, Routing routing,
                             RoutingStats& stats);  // -> (B, n, D)

}  // namespace infini
