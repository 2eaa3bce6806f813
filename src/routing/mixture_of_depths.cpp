#include "routing/mixture_of_depths.h"

#include <cmath>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {
namespace {

namespace F = torch::nn::functional;

torch::Tensor accumulate(const torch::Tensor& total, const torch::Tensor& part) {
  return total.defined() ? total + part : part;
}

}  // namespace

int64_t topk_count(double capacity, int64_t n) {
  // The 1e-6 keeps ceil(0.3 * 10) at 3 although 0.3 * 10 is 3.0000000000000004 in binary.
  const auto k = static_cast<int64_t>(std::ceil(capacity * static_cast<double>(n) - 1e-6));
  return std::min(n, std::max<int64_t>(1, k));
}

torch::Tensor RoutingStats::aux_loss(const ModelConfig& c, double total_decisions) const {
  if (!router_bce.defined()) return {};
  return (router_bce * c.mod_aux_weight + predictor_bce) / total_decisions;
}

void RoutingStats::merge(const RoutingStats& o) {
  if (o.router_bce.defined()) {
    // Detached: a running total must not keep every forward pass's graph alive.
    router_bce = accumulate(router_bce, o.router_bce.detach());
    predictor_bce = accumulate(predictor_bce, o.predictor_bce.detach());
    router_agree = accumulate(router_agree, o.router_agree);
    predictor_agree = accumulate(predictor_agree, o.predictor_agree);
  }
  selected += o.selected;
  decisions += o.decisions;
}

torch::Tensor routed_forward(BlockImpl& block, const ModelConfig& c, const torch::Tensor& x, LayerMemory& mem,
                             const SegmentSpan& span, Routing routing, RoutingStats& stats) {
  const auto B = x.size(0), n = x.size(1), D = x.size(2);
  const auto r = block.router(x).squeeze(-1);           // (B, n): router logits, on the gradient path
  // Predictor logits from a stopped x: the top-k loss trains them; causal routing may decide by them.
  const bool need_p = routing == Routing::TopK || c.mod_predictor == CausalSelector::Mlp;
  const auto p = need_p ? block.predictor(x.detach()) : torch::Tensor();  // (B, n)
  torch::Tensor chosen;                                  // (B, k) int64, ascending: selected rows
  if (routing == Routing::TopK) {
    // A stable descending sort, so that of equal logits the earlier token wins (identical tokens
    // reach the first block with identical r); then sorted by index, not by score, so the block sees
    // its tokens in their order (causal masks).
    const auto by_score = std::get<1>(r.detach().sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));  // (B, n)
    chosen = std::get<0>(by_score.narrow(1, 0, topk_count(c.mod_capacity, n)).sort(1));
    const auto in_topk = torch::zeros_like(r).scatter(1, chosen, 1.0);  // (B, n): 1 if selected
    const auto bce_sum = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum);
    stats.router_bce = accumulate(stats.router_bce, F::binary_cross_entropy_with_logits(r, in_topk, bce_sum));
    stats.predictor_bce = accumulate(stats.predictor_bce, F::binary_cross_entropy_with_logits(p, in_topk, bce_sum));
    const auto target = in_topk.gt(0.5);
    stats.router_agree = accumulate(stats.router_agree, r.detach().gt(0).eq(target).sum());
    stats.predictor_agree = accumulate(stats.predictor_agree, p.detach().gt(0).eq(target).sum());
  } else {
    if (B != 1)
      throw Error(fmt::format("causal routing reads one sequence at a time (its selections differ in length), "
                              "got a batch of {}", B));
    const auto& logit = c.mod_predictor == CausalSelector::Router ? r : p;
    chosen = logit.detach()[0].gt(0).nonzero().view({1, -1});  // (1, k), ascending
  }
  const auto k = chosen.size(1);
  stats.decisions += B * n;
  stats.selected += B * k;

  const auto cached = mem.seg_k.size(2);
  if (k == 0) {
    // Nothing selected here: the block leaves no trace, but a segment that ends must still be written.
    if (span.ends) finish_segment(c, mem, mem.seg_k, mem.seg_v, mem.seg_pos, block.attn->key_shift);
    return x;
  }
  const auto rows = chosen.unsqueeze(-1).expand({B, k, D});  // (B, k, D)
  const auto selected = x.gather(1, rows);                   // (B, k, D)
  const auto f = block.update(selected, mem, cached, span.ends, chosen + span.start);  // (B, k, D)
  const auto w = (c.mod_router == RouterWeight::Raw ? r : torch::sigmoid(r)).gather(1, chosen);  // (B, k)
  return x.scatter(1, rows, selected + w.unsqueeze(-1).to(f.scalar_type()) * f);
}

}  // namespace infini
