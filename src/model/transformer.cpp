#include "model/transformer.h"

#include <cmath>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {

InfiniTransformerImpl::InfiniTransformerImpl(const ModelConfig& c) : config_(c) {
  c.validate();
  embed = register_module("embed", torch::nn::Embedding(c.vocab_size, c.d_model));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layers; ++i) blocks->push_back(Block(c, c.is_routed(i), i == c.knn_block()));
  norm = register_module("norm", RMSNorm(c.d_model, c.norm_eps));
  if (c.rmt_rows() > 0) rmt_memory = register_parameter("rmt_memory", torch::empty({c.rmt_rows(), c.d_model}));
  if (!c.tie_embeddings)
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.vocab_size).bias(false)));
  initialise_weights();
  to(c.dtype);
}

void InfiniTransformerImpl::initialise_weights() {
  torch::NoGradGuard no_grad;
  const double std = config_.init_std;
  // Residual-branch outputs are scaled down so the stream's variance does not grow with depth.
  const double out_std = std / std::sqrt(2.0 * static_cast<double>(config_.n_layers));
  torch::nn::init::normal_(embed->weight, 0.0, std);
  if (lm_head) torch::nn::init::normal_(lm_head->weight, 0.0, std);
  if (rmt_memory.defined()) torch::nn::init::normal_(rmt_memory, 0.0, std);
  for (const auto& module : *blocks) {
    auto* block = module->as<BlockImpl>();
    torch::nn::init::normal_(block->attn->qkv_proj->weight, 0.0, std);
    torch::nn::init::normal_(block->attn->out_proj->weight, 0.0, out_std);
    torch::nn::init::normal_(block->mlp->gate_up_proj->weight, 0.0, std);
    torch::nn::init::normal_(block->mlp->down_proj->weight, 0.0, out_std);
    if (block->routed()) {
      torch::nn::init::normal_(block->router->weight, 0.0, std);
      torch::nn::init::normal_(block->predictor->hidden->weight, 0.0, std);
      torch::nn::init::zeros_(block->predictor->hidden->bias);
      torch::nn::init::normal_(block->predictor->out->weight, 0.0, std);
      torch::nn::init::zeros_(block->predictor->out->bias);
    }
  }
}

ModelState InfiniTransformerImpl::initial_state(int64_t batch) const {
  return ModelState(config_, batch, embed->weight.device());
}

int64_t InfiniTransformerImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

InfiniTransformerImpl::Output InfiniTransformerImpl::forward(const torch::Tensor& tokens, ModelState state,
                                                             int64_t logits_from, Routing routing) {
  const auto& c = config_;
  if (tokens.dim() != 2 || tokens.size(1) == 0)
    throw Error(fmt::format("forward: tokens must be (batch, length>0), got shape {}",
                            fmt::join(tokens.sizes(), "x")));
  if (tokens.size(0) != state.batch())
    throw Error(fmt::format("forward: batch {} does not match the state's batch {}", tokens.size(0),
                            state.batch()));
  const auto T = tokens.size(1);
  if (logits_from < 0 || logits_from > T)
    throw Error(fmt::format("forward: logits_from {} is outside 0..{} (the tokens' length)", logits_from, T));
  // Segment after segment through all blocks. (Layer by layer over many segments is equivalent, but
  // measured slower here: a segment's activations stay in cache, a window's do not.)
  const auto spans = split_into_segments(T, state.pos_in_segment(), c.segment_len);
  std::vector<int64_t> lengths;
  for (const auto& span : spans) lengths.push_back(span.length);
  // split (not narrow per span): its backward is one concatenation, not a zero-filled copy per span.
  const auto pieces = embed(tokens).split_with_sizes(lengths, 1);  // each (B, n, D)
  std::vector<torch::Tensor> outputs;  // each (B, n, D), from token logits_from on
  RoutingStats stats;
  const auto last = blocks->size() - 1;
  const int64_t p = c.rmt_rows();  // RMT's memory rows: read before a segment's tokens, written after
  for (size_t s = 0; s < spans.size(); ++s) {
    const auto& span = spans[s];
    const bool scored = span.offset + span.length > logits_from;
    auto x = pieces[s];  // (B, n, D)
    auto rows = span;    // what the blocks see: RMT's memory rows count as tokens of the segment
    torch::Tensor memory;  // (B, p, D): the memory as it stood at the segment's start
    if (p > 0) {
      memory = state.rmt_memory().size(1) > 0 ? state.rmt_memory()
                                               : rmt_memory.unsqueeze(0).expand({x.size(0), p, c.d_model});
      if (span.start == 0) x = torch::cat({memory.to(x.scalar_type()), x}, 1);  // read rows first
      if (span.ends) x = torch::cat({x, memory.to(x.scalar_type())}, 1);        // write rows last
      rows.start = span.start == 0 ? 0 : span.start + p;
      rows.length = x.size(1);
    }
    for (size_t i = 0; i < blocks->size(); ++i) {
      auto& block = *blocks->ptr<BlockImpl>(i);
      auto& mem = state.layers()[i];
      // RMT's next memory is the last block's output at the write rows.
      if (i == last && !scored && !block.routed() && !(p > 0 && span.ends))
        block.remember(x, mem, rows);
      else
        x = block.routed() ? routed_forward(block, c, x, mem, rows, routing, stats) : block.forward(x, mem, rows);
    }
    if (p > 0) {
      if (span.ends) state.set_rmt_memory(x.narrow(1, x.size(1) - p, p));  // (B, p, D), before the final norm
      x = x.narrow(1, span.start == 0 ? p : 0, span.length);               // (B, n, D): the tokens' rows
    }
    if (!scored) continue;
    const auto skip = std::max<int64_t>(0, logits_from - span.offset);
    outputs.push_back(skip > 0 ? x.narrow(1, skip, span.length - skip) : x);
  }
  state.advance(T, c.segment_len);
  const auto x = outputs.empty()       ? pieces.back().narrow(1, 0, 0)  // (B, 0, D)
                 : outputs.size() == 1 ? outputs[0]
                                       : torch::cat(outputs, 1);  // (B, T - logits_from, D)
  const auto h = norm(x);
  auto logits = lm_head ? lm_head(h) : torch::matmul(h, embed->weight.t());  // (B, T - logits_from, V)
  return {logits, std::move(state), std::move(stats)};
}

}  // namespace infini
