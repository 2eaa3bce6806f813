#include "model/attention.h"

#include <cmath>

#include "compat/torch_compat.h"
#include "memory/compressive.h"

namespace infini {

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

torch::Tensor InfiniAttentionImpl::local_attention(const torch::Tensor& q_rot,
                                                   const torch::Tensor& k_seg,
                                                   const torch::Tensor& v_seg,
                                                   const LayerMemory& mem, int64_t start) const {
  const auto n = q_rot.size(2);
  const auto k_rot = rope_.apply(k_seg, 0);  // (B, H, start+n, dk)
  const bool has_cache = config_.memory == MemoryMode::XL && mem.xl_k.size(2) > 0;
  if (!has_cache && start == 0) return compat::causal_attention(q_rot, k_rot, v_seg, scale_);

  // Query i sits at position start+i and sees segment keys 0..start+i.
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(q_rot.device());
  auto allowed = torch::ones({n, start + n}, bool_opts).tril(start);  // (n, start+n)
  auto keys = k_rot, values = v_seg;
  if (has_cache) {
    // The previous segment sits at positions -L..-1 and is fully visible.
    const auto L = mem.xl_k.size(2);
    keys = torch::cat({rope_.apply(mem.xl_k, -L), k_rot}, 2);   // (B, H, L+start+n, dk)
    values = torch::cat({mem.xl_v, v_seg}, 2);                    // (B, H, L+start+n, dv)
    allowed = torch::cat({torch::ones({n, L}, bool_opts), allowed}, 1);  // (n, L+start+n)
  }
  return compat::masked_attention(q_rot, keys, values, allowed, scale_);
}

torch::Tensor InfiniAttentionImpl::forward(const torch::Tensor& x, LayerMemory& mem, int64_t start,
                                           bool segment_ends) {
  const auto& c = config_;
  const auto B = x.size(0), n = x.size(1), H = c.n_heads;
  const auto qkv = qkv_proj(x);  // (B, n, H*(2dk+dv))
  const auto split = qkv.split_with_sizes({H * c.d_key, H * c.d_key, H * c.d_value}, -1);
  const auto q = split[0].view({B, n, H, c.d_key}).transpose(1, 2);    // (B, H, n, dk)
  const auto k = split[1].view({B, n, H, c.d_key}).transpose(1, 2);    // (B, H, n, dk)
  const auto v = split[2].view({B, n, H, c.d_value}).transpose(1, 2);  // (B, H, n, dv)

  // All keys/values of the segment so far, un-rotated: earlier chunks, then this one.
  const auto k_seg = start > 0 ? torch::cat({mem.seg_k, k}, 2) : k;  // (B, H, start+n, dk)
  const auto v_seg = start > 0 ? torch::cat({mem.seg_v, v}, 2) : v;  // (B, H, start+n, dv)

  auto attended = local_attention(rope_.apply(q, start), k_seg, v_seg, mem, start);  // (B, H, n, dv)

  if (c.has_compressive_memory()) {
    // Read before this segment's write, with un-rotated queries.
    const auto a_mem = memory::read(memory::feature_map(q), mem.M, mem.z, c.memory_eps)
                           .to(attended.scalar_type());             // (B, H, n, dv)
    const auto g = torch::sigmoid(gate).view({1, H, 1, 1}).to(attended.scalar_type());  // (1, H, 1, 1)
    attended = g * a_mem + (1 - g) * attended;
  }

  if (segment_ends) {
    if (c.has_compressive_memory())
      std::tie(mem.M, mem.z) = memory::write(memory::feature_map(k_seg), v_seg, mem.M, mem.z,
                                             c.memory_eps, c.memory == MemoryMode::InfiniDelta);
    if (c.memory == MemoryMode::XL) {
      mem.xl_k = k_seg.detach();
      mem.xl_v = v_seg.detach();
    }
    // Fresh empty tensors: a zero-length view would keep the whole qkv buffer alive.
    mem.seg_k = torch::empty({B, H, 0, c.d_key}, k_seg.options());
    mem.seg_v = torch::empty({B, H, 0, c.d_value}, v_seg.options());
  } else {
    mem.seg_k = k_seg;
    mem.seg_v = v_seg;
  }

  return out_proj(attended.transpose(1, 2).reshape({B, n, H * c.d_value}));
}

}  // namespace infini
