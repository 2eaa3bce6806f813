#include "model/attention.h"

#include <cmath>

#include "compat/torch_compat.h"
#include "memory/compressive.h"
#include "memory/knn.h"
#include "model/qk_conv.h"

namespace infini {

std::vector<SegmentSpan> split_into_segments(int64_t length, int64_t pos_in_segment, int64_t segment_len) {
  std::vector<SegmentSpan> spans;
  for (int64_t offset = 0, start = pos_in_segment; offset < length;) {
    const auto n = std::min(length - offset, segment_len - start);
    spans.push_back({offset, n, start, start + n == segment_len});
    offset += n;
    start = 0;
  }
  return spans;
}

void finish_segment(const ModelConfig& c, LayerMemory& mem, const torch::Tensor& k_seg, const torch::Tensor& v_seg,
                    const torch::Tensor& pos_seg, const torch::Tensor& key_shift) {
  // A routed block may end a segment having taken no token: then there is nothing to write.
  if (c.has_compressive_memory() && k_seg.size(2) > 0)
    std::tie(mem.M, mem.z) = memory::write(memory::feature_map(memory::shift_keys(k_seg, key_shift)), v_seg, mem.M,
                                           mem.z, c.memory_eps, c.memory == MemoryMode::InfiniDelta,
                                           mem.next_write_weight);
  mem.next_write_weight = torch::Tensor();
  if (mem.knn_k.defined()) std::tie(mem.knn_k, mem.knn_v) = knn::append(mem.knn_k, mem.knn_v, k_seg, v_seg, c.knn_tokens);
  if (c.has_xl_cache()) {
    // Copies: a view would pin the whole qkv buffer, or alias the decoder's reusable cache.
    mem.xl_k = k_seg.detach().clone(at::MemoryFormat::Contiguous);
    mem.xl_v = v_seg.detach().clone(at::MemoryFormat::Contiguous);
    if (pos_seg.defined()) mem.xl_pos = pos_seg.clone();
  }
  if (pos_seg.defined()) mem.seg_pos = torch::empty({pos_seg.size(0), 0}, pos_seg.options());
  mem.seg_k = torch::empty({k_seg.size(0), k_seg.size(1), 0, k_seg.size(3)}, k_seg.options());
  mem.seg_v = torch::empty({v_seg.size(0), v_seg.size(1), 0, v_seg.size(3)}, v_seg.options());
}

InfiniAttentionImpl::InfiniAttentionImpl(const ModelConfig& c, bool knn)
    : config_(c),
      knn_(knn),
      rope_(c.d_key, c.rope_theta, c.segment_len + 2 * c.rmt_rows()),
      scale_(1.0 / std::sqrt(static_cast<double>(c.d_key))) {
  const auto H = c.n_heads;
  qkv_proj = register_module(
      "qkv_proj",
      torch::nn::Linear(torch::nn::LinearOptions(c.d_model, H * (2 * c.d_key + c.d_value)).bias(false)));
  out_proj = register_module(
      "out_proj", torch::nn::Linear(torch::nn::LinearOptions(H * c.d_value, c.d_model).bias(false)));
  if (c.has_compressive_memory() || knn_) gate = register_parameter("gate", torch::full({H}, c.gate_init));
  // exp(ln sqrt(dk)) = sqrt(dk): the kNN read's cosine scores start at the spread a plain dot product
  // of unit-variance rows has after its 1/sqrt(dk).
  if (knn_)
    knn_log_scale = register_parameter("knn_log_scale", torch::full({H}, 0.5 * std::log(static_cast<double>(c.d_key))));
  // 0: each written key starts as the mean of itself and the key before it.
  if (c.memory_key_shift) key_shift = register_parameter("key_shift", torch::zeros({H}));
  if (c.qk_conv > 0) {
    // Queries start as the raw query, keys as the mean of the raw key and the one before it (where
    // memory_key_shift's share starts). From the identity, a language-model stage of 600 steps left the
    // earlier taps near 0 (|tap| 0.02-0.05 at step 150; experiments/passkey-qk-conv), so recall would
    // have to find them first.
    const auto q_taps = torch::zeros({H, c.d_key, c.qk_conv});
    q_taps.select(2, 0).fill_(1.0);
    const auto k_taps = torch::zeros({H, c.d_key, c.qk_conv});
    k_taps.narrow(2, 0, 2).fill_(0.5);
    q_conv = register_parameter("q_conv", q_taps);
    k_conv = register_parameter("k_conv", k_taps);
  }
}

torch::Tensor InfiniAttentionImpl::gated(const torch::Tensor& local, const torch::Tensor& a_mem) {
  // sigmoid(beta) A_mem + (1 - sigmoid(beta)) A_dot, as one lerp.
  const auto g = torch::sigmoid(gate).to(local.scalar_type()).view({1, config_.n_heads, 1, 1});  // (1, H, 1, 1)
  return torch::lerp(local, a_mem.to(local.scalar_type()), g);
}

InfiniAttentionImpl::Projected InfiniAttentionImpl::project(const torch::Tensor& x, LayerMemory& mem,
                                                             bool queries) {
  const auto& c = config_;
  const auto B = x.size(0), n = x.size(1), H = c.n_heads, dk = c.d_key, dv = c.d_value;
  // split (not narrow): its backward is one concatenation instead of a zero-filled buffer per part.
  const auto qkv = qkv_proj(x).split_with_sizes({2 * H * dk, H * dv}, -1);
  const auto qk = qkv[0].view({B, n, 2 * H, dk}).transpose(1, 2);  // (B, 2H, n, dk)
  const auto q_k = qk.chunk(2, 1);
  Projected p;
  p.q = q_k[0];                                              // (B, H, n, dk), un-rotated
  p.k = q_k[1];                                              // (B, H, n, dk), un-rotated
  p.v = qkv[1].view({B, n, H, dv}).transpose(1, 2);          // (B, H, n, dv)
  if (c.qk_conv > 0) {
    // From here on the convolved rows are the queries and keys: attended, read with, written, cached.
    // Unused queries still pass their raw rows on: the next tokens' queries convolve over them.
    if (queries)
      p.q = qk_conv::apply(p.q, mem.conv_q, q_conv);  // (B, H, n, dk)
    else
      qk_conv::advance(p.q, mem.conv_q);
    p.k = qk_conv::apply(p.k, mem.conv_k, k_conv);  // (B, H, n, dk)
  }
  if (!queries) p.q = torch::Tensor();
  return p;
}

void InfiniAttentionImpl::keep(LayerMemory& mem, const torch::Tensor& k_seg, const torch::Tensor& v_seg,
                               const torch::Tensor& pos_seg, bool ends) {
  if (ends) {
    finish_segment(config_, mem, k_seg, v_seg, pos_seg, key_shift);
  } else {
    mem.seg_k = k_seg;
    mem.seg_v = v_seg;
    if (pos_seg.defined()) mem.seg_pos = pos_seg;
  }
}

void InfiniAttentionImpl::remember(const torch::Tensor& x, LayerMemory& mem, int64_t start, bool ends) {
  const auto p = project(x, mem, /*queries=*/false);
  const auto k_seg = start > 0 ? torch::cat({mem.seg_k, p.k}, 2) : p.k;  // (B, H, start+n, dk)
  const auto v_seg = start > 0 ? torch::cat({mem.seg_v, p.v}, 2) : p.v;  // (B, H, start+n, dv)
  keep(mem, k_seg, v_seg, torch::Tensor(), ends);
}

torch::Tensor InfiniAttentionImpl::forward(const torch::Tensor& x, LayerMemory& mem, int64_t start, bool ends,
                                          const torch::Tensor& positions) {
  const auto& c = config_;
  const auto B = x.size(0), n = x.size(1), H = c.n_heads, dv = c.d_value;
  const auto p = project(x, mem, /*queries=*/true);
  const auto& q = p.q;  // (B, H, n, dk), un-rotated
  const auto& k = p.k;  // (B, H, n, dk), un-rotated
  const auto& v = p.v;  // (B, H, n, dv)

  // All cached keys/values of the segment so far, un-rotated: earlier spans, then this one.
  const auto k_seg = start > 0 ? torch::cat({mem.seg_k, k}, 2) : k;  // (B, H, start+n, dk)
  const auto v_seg = start > 0 ? torch::cat({mem.seg_v, v}, 2) : v;  // (B, H, start+n, dv)
  const bool routed = positions.defined();
  const auto pos_seg = !routed ? torch::Tensor() : start > 0 ? torch::cat({mem.seg_pos, positions}, 1) : positions;  // (B, start+n)
  const bool has_cache = c.has_xl_cache() && mem.xl_k.size(2) > 0;
  // RoPE at the tokens' own positions: consecutive from `first` in a dense block, listed in a routed one.
  const auto rotate = [&](const torch::Tensor& t, int64_t first, const torch::Tensor& listed) {
    return routed ? rope_.apply_at(t, listed) : rope_.apply(t, first);
  };

  torch::Tensor local;  // (B, H, n, dv)
  if (start == 0 && !has_cache) {
    // The training hot path: the segment starts here and sees nothing before it.
    local = compat::causal_attention(rotate(q, 0, positions), rotate(k, 0, positions), v, scale_);
  } else {
    // Cached token j is visible to query i when j <= start + i: the cache keeps the segment's order.
    // The XL cache sits before the segment, at positions -L..-1 (its own, minus segment_len, when
    // routed), and carries no gradient.
    const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
    auto keys = rotate(k_seg, 0, pos_seg);  // (B, H, start+n, dk)
    auto values = v_seg;
    auto allowed = torch::ones({n, start + n}, bool_opts).tril(start);  // (n, start+n)
    if (has_cache) {
      const auto L = mem.xl_k.size(2);
      keys = torch::cat({routed ? rope_.apply_at(mem.xl_k, mem.xl_pos - c.segment_len) : rope_.apply(mem.xl_k, -L), keys},
                        2);                                                // (B, H, L+start+n, dk)
      values = torch::cat({mem.xl_v, values}, 2);                          // (B, H, L+start+n, dv)
      allowed = torch::cat({torch::ones({n, L}, bool_opts), allowed}, 1);  // (n, L+start+n)
    }
    local = compat::masked_attention(rotate(q, start, positions), keys, values, allowed, scale_);
  }

  if (c.has_compressive_memory())
    local = gated(local, memory::read(memory::feature_map(q), mem.M, mem.z, c.memory_eps));
  if (knn_) {
    // The memory as it stood at the segment's start; empty (the first segment) it reads as zeros.
    const auto& keys = mem.knn_k;  // (B, H, F, dk)
    torch::Tensor a_knn;           // (B, H, n, dv)
    if (keys.size(2) == 0) {
      a_knn = torch::zeros({B, H, n, dv}, local.options());
    } else {
      const auto q_hat = knn::normalize(q);  // (B, H, n, dk), un-rotated: retrieved keys carry no position
      a_knn = knn::read(q_hat, keys, mem.knn_v, knn::search(q_hat, keys, c.knn_top_k), knn_log_scale);
    }
    local = gated(local, a_knn);
  }

  keep(mem, k_seg, v_seg, pos_seg, ends);
  return out_proj(local.transpose(1, 2).reshape({B, n, H * dv}));
}

}  // namespace infini
