#include "model/attention.h"

#include <cmath>

#include "compat/torch_compat.h"
#include "memory/compressive.h"

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

InfiniAttentionImpl::InfiniAttentionImpl(const ModelConfig& c)
    : config_(c),
      rope_(c.d_key, c.rope_theta, c.segment_len),
      scale_(1.0 / std::sqrt(static_cast<double>(c.d_key))) {
  const auto H = c.n_heads;
  qkv_proj = register_module(
      "qkv_proj",
      torch::nn::Linear(torch::nn::LinearOptions(c.d_model, H * (2 * c.d_key + c.d_value)).bias(false)));
  out_proj = register_module(
      "out_proj", torch::nn::Linear(torch::nn::LinearOptions(H * c.d_value, c.d_model).bias(false)));
  if (c.has_compressive_memory()) gate = register_parameter("gate", torch::full({H}, c.gate_init));
}

torch::Tensor InfiniAttentionImpl::gated(const torch::Tensor& local, const torch::Tensor& a_mem) {
  // sigmoid(beta) A_mem + (1 - sigmoid(beta)) A_dot, as one lerp.
  std::vector<int64_t> shape(static_cast<size_t>(local.dim()), 1);
  shape[shape.size() - 3] = config_.n_heads;
  const auto g = torch::sigmoid(gate).to(local.scalar_type()).view(shape);  // (.., H, 1, 1)
  return torch::lerp(local, a_mem.to(local.scalar_type()), g);
}

torch::Tensor InfiniAttentionImpl::forward(const torch::Tensor& x, LayerMemory& mem,
                                           const std::vector<SegmentSpan>& spans) {
  const auto& c = config_;
  const auto qkv = qkv_proj(x);  // (B, T, H*(2dk+dv))
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < spans.size();) {
    const auto whole = [&](size_t j) { return spans[j].start == 0 && spans[j].length == c.segment_len; };
    if (whole(i)) {
      size_t j = i;
      while (j < spans.size() && whole(j)) ++j;
      const auto S = static_cast<int64_t>(j - i);
      parts.push_back(whole_segments(qkv.narrow(1, spans[i].offset, S * c.segment_len), mem, S));
      i = j;
    } else {
      parts.push_back(partial_segment(qkv.narrow(1, spans[i].offset, spans[i].length), mem,
                                      spans[i].start, spans[i].ends));
      ++i;
    }
  }
  return out_proj(parts.size() == 1 ? parts[0] : torch::cat(parts, 1));
}

torch::Tensor InfiniAttentionImpl::whole_segments(const torch::Tensor& qkv, LayerMemory& mem, int64_t S) {
  const auto& c = config_;
  const auto B = qkv.size(0), N = c.segment_len, H = c.n_heads, dk = c.d_key, dv = c.d_value;
  // Segments become a batch dimension: (B, S, H, N, d).
  const auto qk = qkv.narrow(-1, 0, 2 * H * dk).view({B, S, N, 2 * H, dk}).permute({0, 1, 3, 2, 4});
  const auto q = qk.narrow(2, 0, H);                                                         // (B, S, H, N, dk)
  const auto k = qk.narrow(2, H, H);                                                         // (B, S, H, N, dk)
  const auto v = qkv.narrow(-1, 2 * H * dk, H * dv).view({B, S, N, H, dv}).permute({0, 1, 3, 2, 4});  // (B, S, H, N, dv)

  const auto qk_rot = rope_.apply(qk, 0);  // (B, S, 2H, N, dk): one rotation for Q and K
  const auto q_rot = qk_rot.narrow(2, 0, H).reshape({B * S, H, N, dk});
  const auto k_rot = qk_rot.narrow(2, H, H).reshape({B * S, H, N, dk});
  torch::Tensor local;  // (B*S, H, N, dv)
  if (c.memory == MemoryMode::XL) {
    // Segment s also sees segment s-1 (the cache for s = 0), at positions -N..-1, without gradient.
    const bool has_cache = mem.xl_k.size(2) == N;
    const auto first_k = has_cache ? mem.xl_k : torch::zeros({B, H, N, dk}, k.options());
    const auto first_v = has_cache ? mem.xl_v : torch::zeros({B, H, N, dv}, v.options());
    const auto prev_k = torch::cat({first_k.unsqueeze(1), k.narrow(1, 0, S - 1).detach()}, 1);  // (B, S, H, N, dk)
    const auto prev_v = torch::cat({first_v.unsqueeze(1), v.narrow(1, 0, S - 1).detach()}, 1);  // (B, S, H, N, dv)
    const auto keys = torch::cat({rope_.apply(prev_k, -N).reshape({B * S, H, N, dk}), k_rot}, 2);  // (B*S, H, 2N, dk)
    const auto values = torch::cat({prev_v.reshape({B * S, H, N, dv}), v.reshape({B * S, H, N, dv})}, 2);
    const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(qkv.device());
    auto allowed = torch::cat({torch::ones({S, 1, N, N}, bool_opts),
                               torch::ones({N, N}, bool_opts).tril().expand({S, 1, N, N})}, -1);  // (S, 1, N, 2N)
    if (!has_cache) allowed.select(0, 0).narrow(-1, 0, N).fill_(false);
    allowed = allowed.unsqueeze(0).expand({B, S, 1, N, 2 * N}).reshape({B * S, 1, N, 2 * N});
    local = compat::masked_attention(q_rot, keys, values, allowed, scale_);
    mem.xl_k = k.select(1, S - 1).detach().contiguous();  // a copy: a view would pin all of qkv
    mem.xl_v = v.select(1, S - 1).detach().contiguous();
  } else {
    local = compat::causal_attention(q_rot, k_rot, v.reshape({B * S, H, N, dv}), scale_);
  }
  local = local.view({B, S, H, N, dv});

  if (c.has_compressive_memory()) {
    // The recurrence is sequential in s, but only the small (dk x dv) states are; each segment's
    // read then uses the state from before it, all segments in one batched product.
    const auto sigma_k = memory::feature_map(k);  // (B, S, H, N, dk)
    std::vector<torch::Tensor> Ms, zs;             // state before segment s
    for (int64_t s = 0; s < S; ++s) {
      Ms.push_back(mem.M);
      zs.push_back(mem.z);
      std::tie(mem.M, mem.z) = memory::write(sigma_k.select(1, s), v.select(1, s), mem.M, mem.z,
                                             c.memory_eps, c.memory == MemoryMode::InfiniDelta);
    }
    const auto a_mem = memory::read(memory::feature_map(q), torch::stack(Ms, 1), torch::stack(zs, 1),
                                    c.memory_eps);  // (B, S, H, N, dv)
    local = gated(local, a_mem);
  }
  mem.seg_k = torch::empty({B, H, 0, dk}, k.options());
  mem.seg_v = torch::empty({B, H, 0, dv}, v.options());
  return local.permute({0, 1, 3, 2, 4}).reshape({B, S * N, H * dv});
}

torch::Tensor InfiniAttentionImpl::partial_segment(const torch::Tensor& qkv, LayerMemory& mem, int64_t start,
                                                   bool ends) {
  const auto& c = config_;
  const auto B = qkv.size(0), n = qkv.size(1), H = c.n_heads, dk = c.d_key, dv = c.d_value;
  const auto split = qkv.split_with_sizes({H * dk, H * dk, H * dv}, -1);
  const auto q = split[0].view({B, n, H, dk}).transpose(1, 2);  // (B, H, n, dk)
  const auto k = split[1].view({B, n, H, dk}).transpose(1, 2);  // (B, H, n, dk)
  const auto v = split[2].view({B, n, H, dv}).transpose(1, 2);  // (B, H, n, dv)

  // All keys/values of the segment so far, un-rotated: earlier spans, then this one.
  const auto k_seg = start > 0 ? torch::cat({mem.seg_k, k}, 2) : k;  // (B, H, start+n, dk)
  const auto v_seg = start > 0 ? torch::cat({mem.seg_v, v}, 2) : v;  // (B, H, start+n, dv)

  // Query i sits at position start+i and sees segment keys 0..start+i, and the XL cache before them.
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(qkv.device());
  auto keys = rope_.apply(k_seg, 0);
  auto values = v_seg;
  auto allowed = torch::ones({n, start + n}, bool_opts).tril(start);  // (n, start+n)
  if (c.memory == MemoryMode::XL && mem.xl_k.size(2) > 0) {
    const auto L = mem.xl_k.size(2);
    keys = torch::cat({rope_.apply(mem.xl_k, -L), keys}, 2);            // (B, H, L+start+n, dk)
    values = torch::cat({mem.xl_v, values}, 2);                          // (B, H, L+start+n, dv)
    allowed = torch::cat({torch::ones({n, L}, bool_opts), allowed}, 1);  // (n, L+start+n)
  }
  auto local = compat::masked_attention(rope_.apply(q, start), keys, values, allowed, scale_);  // (B, H, n, dv)

  if (c.has_compressive_memory())
    local = gated(local, memory::read(memory::feature_map(q), mem.M, mem.z, c.memory_eps));

  if (ends) {
    if (c.has_compressive_memory())
      std::tie(mem.M, mem.z) = memory::write(memory::feature_map(k_seg), v_seg, mem.M, mem.z,
                                             c.memory_eps, c.memory == MemoryMode::InfiniDelta);
    if (c.memory == MemoryMode::XL) {
      mem.xl_k = k_seg.detach();
      mem.xl_v = v_seg.detach();
    }
    // Fresh empty tensors: a zero-length view would keep the whole qkv buffer alive.
    mem.seg_k = torch::empty({B, H, 0, dk}, k.options());
    mem.seg_v = torch::empty({B, H, 0, dv}, v.options());
  } else {
    mem.seg_k = k_seg;
    mem.seg_v = v_seg;
  }
  return local.transpose(1, 2).reshape({B, n, H * dv});
}

}  // namespace infini
