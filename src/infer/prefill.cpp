#include "infer/prefill.h"

#include <algorithm>
#include <cmath>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <fmt/format.h>
#include <omp.h>

#include "kernels/gemm_cpu.h"
#include "kernels/infini_cpu.h"
#include "kernels/vector_cpu.h"
#include "model/attention.h"
#include "model/rope.h"
#include "infini/error.h"

namespace infini {
namespace {

// Queries per block of the causal scores: block b sees only keys [0, end of block b).
constexpr int64_t kQueryBlock = 64;

torch::Tensor fp32(const torch::Tensor& t) { return t.detach().to(torch::kFloat32).contiguous(); }

}  // namespace

bool SegmentPrefill::supports(const ModelConfig& c, torch::Device device) {
  if (!device.is_cpu() || c.dtype != torch::kFloat32 || c.memory_dtype() != torch::kFloat32) return false;
  if (c.has_xl_cache() || c.memory == MemoryMode::Rmt) return false;  // xl, knn and rmt: the general path
  for (int64_t i = 0; i < c.n_layers; ++i)
    if (c.is_routed(i)) return false;
  return true;
}

SegmentPrefill::SegmentPrefill(InfiniTransformer model) : model_(std::move(model)), config_(model_->config()) {
  const auto& c = config_;
  if (!supports(c, model_->embed->weight.device()))
    throw Error("the fused segment prefill needs a dense fp32 model on the CPU with memory none, "
                "infini-linear or infini-delta");
  torch::NoGradGuard no_grad;
  const auto held = [this](const torch::Tensor& t) {
    held_.push_back(fp32(t));
    return held_.back().data_ptr<float>();
  };
  embed_ = fp32(model_->embed->weight);
  lm_head_ = model_->lm_head ? fp32(model_->lm_head->weight) : embed_;
  final_norm_ = held(model_->norm->weight);
  for (const auto& module : *model_->blocks) {
    const auto* b = module->as<BlockImpl>();
    LayerWeights w;
    w.qkv = fp32(b->attn->qkv_proj->weight);
    w.out = fp32(b->attn->out_proj->weight);
    w.gate_up = fp32(b->mlp->gate_up_proj->weight);
    w.down = fp32(b->mlp->down_proj->weight);
    w.attn_norm = held(b->attn_norm->weight);
    w.mlp_norm = held(b->mlp_norm->weight);
    if (c.has_compressive_memory()) {
      const auto g = torch::sigmoid(fp32(b->attn->gate));  // (H)
      w.gate.assign(g.data_ptr<float>(), g.data_ptr<float>() + c.n_heads);
    }
    if (c.memory_key_shift) {
      const auto s = torch::sigmoid(fp32(b->attn->key_shift));  // (H)
      w.key_shift.assign(s.data_ptr<float>(), s.data_ptr<float>() + c.n_heads);
    }
    if (c.qk_conv > 0) {
      w.q_conv = held(b->attn->q_conv);
      w.k_conv = held(b->attn->k_conv);
    }
    weights_.push_back(std::move(w));
  }
  const auto L = c.segment_len, D = c.d_model, H = c.n_heads, dk = c.d_key, dv = c.d_value, F = c.d_ff;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const auto [cos, sin] = Rope(dk, c.rope_theta, L).compute(0, L, f32);  // (L, dk/2) each
  rope_cos_.assign(cos.data_ptr<float>(), cos.data_ptr<float>() + cos.numel());
  rope_sin_.assign(sin.data_ptr<float>(), sin.data_ptr<float>() + sin.numel());
  x_ = torch::empty({L, D}, f32);
  normed_ = torch::empty({L, D}, f32);
  qkv_ = torch::empty({L, H * (2 * dk + dv)}, f32);
  attn_ = torch::empty({L, H * dv}, f32);
  gate_up_ = torch::empty({L, 2 * F}, f32);
  act_ = torch::empty({L, F}, f32);
}

void SegmentPrefill::convolve(size_t i, int64_t h, const LayerMemory& mem, const LayerOut& next, Scratch& s) const {
  const auto& c = config_;
  const auto& w = weights_[i];
  const int64_t L = c.segment_len, H = c.n_heads, dk = c.d_key, N = H * (2 * dk + c.d_value), W = c.qk_conv;
  const float* qkv = qkv_.data_ptr<float>();  // (L, N)
  const auto run = [&](const float* taps, const float* raw, const torch::Tensor& tail, float* out, float* tail_next) {
    std::copy(tail.data_ptr<float>() + h * (W - 1) * dk, tail.data_ptr<float>() + (h + 1) * (W - 1) * dk,
              s.tail.begin());
    for (int64_t r = 0; r < L; ++r) {
      kernels::qk_conv_row(taps + h * dk * W, s.tail.data(), raw + r * N, out + r * dk, dk, W);
      kernels::qk_conv_slide(s.tail.data(), raw + r * N, dk, W);
    }
    std::copy(s.tail.begin(), s.tail.end(), tail_next + h * (W - 1) * dk);
  };
  run(w.q_conv, qkv + h * dk, mem.conv_q, s.conv_q.data(), next.conv_q);
  run(w.k_conv, qkv + (H + h) * dk, mem.conv_k, s.conv_k.data(), next.conv_k);
}

void SegmentPrefill::attend(size_t i, int64_t h, const LayerMemory& mem, const LayerOut& next, Scratch& s,
                            int64_t first) {
  const auto& c = config_;
  const int64_t L = c.segment_len, H = c.n_heads, dk = c.d_key, dv = c.d_value, N = H * (2 * dk + dv);
  const bool memory = c.has_compressive_memory();
  const float* qkv = qkv_.data_ptr<float>();  // (L, N): rows of [q heads | k heads | v heads]
  const auto& shift = weights_[i].key_shift;
  // Un-rotated queries and keys: the projection's own rows, or under qk_conv their convolution.
  const bool conv = weights_[i].q_conv != nullptr;
  if (conv) convolve(i, h, mem, next, s);
  const float* q_rows = conv ? s.conv_q.data() : qkv + h * dk;        // (L, dk), row stride q_ld
  const float* k_rows = conv ? s.conv_k.data() : qkv + (H + h) * dk;  // (L, dk), row stride k_ld
  const int64_t q_ld = conv ? dk : N, k_ld = conv ? dk : N;
  // RoPE for the local attention; the memory sees q and k without it.
  for (int64_t r = 0; r < L; ++r) {
    const float* cos = rope_cos_.data() + r * (dk / 2);
    const float* sin = rope_sin_.data() + r * (dk / 2);
    if (r >= first) kernels::rope_rotate(q_rows + r * q_ld, cos, sin, s.q.data() + r * dk, dk);
    kernels::rope_rotate(k_rows + r * k_ld, cos, sin, s.k.data() + r * dk, dk);
  }
  const float* v = qkv + 2 * H * dk + h * dv;  // (L, dv), row stride N
  float* out = attn_.data_ptr<float>() + h * dv;  // (L, dv), row stride H * dv
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dk)));
  for (int64_t b0 = first; b0 < L; b0 += kQueryBlock) {
    const auto nb = std::min(kQueryBlock, L - b0), seen = b0 + nb;
    float* block = s.scores.data() + b0 * L;  // (nb, seen), row stride L
    kernels::gemm(false, true, nb, seen, dk, scale, s.q.data() + b0 * dk, dk, s.k.data(), dk, 0.0f, block, L);
    // Query r sees keys 0..r: the block's later keys get weight 0.
    for (int64_t r = b0; r < seen; ++r) {
      float* row = s.scores.data() + r * L;
      kernels::softmax(row, r + 1);
      std::fill(row + r + 1, row + seen, 0.0f);
    }
    kernels::gemm(false, false, nb, dv, seen, 1.0f, block, L, v, N, 0.0f, out + b0 * H * dv, H * dv);
  }
  if (!memory) return;
  // The gated read of the memory as it stood at the segment's start, then the segment's write.
  const float* M = mem.M.data_ptr<float>() + h * dk * dv;  // (dk, dv)
  const float* z = mem.z.data_ptr<float>() + h * dk;       // (dk)
  const auto eps = static_cast<float>(c.memory_eps);
  for (int64_t r = first; r < L; ++r) kernels::elu_plus_one(q_rows + r * q_ld, s.sq.data() + r * dk, dk);
  kernels::gated_memory_read(s.sq.data() + first * dk, L - first, M, z, dk, dv, eps,
                             weights_[i].gate[static_cast<size_t>(h)], out + first * H * dv, H * dv, s.work.data());
  kernels::written_key_features(k_rows, k_ld, L, dk, shift.empty() ? nullptr : &shift[static_cast<size_t>(h)],
                                s.sk.data());
  kernels::memory_write(s.sk.data(), L, v, N, M, z, dk, dv, eps, c.memory == MemoryMode::InfiniDelta,
                        next.M + h * dk * dv, next.z + h * dk, s.work.data());
}

template <typename Work>
void SegmentPrefill::in_parallel(int threads, const Work& work) {
  const at::ThreadLocalState caller;  // InferenceMode and grad mode, for the worker threads
#pragma omp parallel num_threads(threads)
  {
    at::ThreadLocalStateGuard same_mode(caller);
    work(omp_get_thread_num(), omp_get_num_threads());
  }
}

void SegmentPrefill::run_layer(size_t i, const LayerMemory& mem, const LayerOut& next, int threads, int64_t first) {
  const auto& c = config_;
  const auto& w = weights_[i];
  const int64_t L = c.segment_len, D = c.d_model, H = c.n_heads, F = c.d_ff;
  float* x = x_.data_ptr<float>();
  float* normed = normed_.data_ptr<float>();
  const auto norm_rows = [&](const float* weight, int64_t from) {
    in_parallel(threads, [&](int t, int n) {
      const auto [r0, r1] = kernels::thread_share(L - from, t, n);
      for (int64_t r = from + r0; r < from + r1; ++r)
        kernels::rms_norm(x + r * D, weight, normed + r * D, D, c.norm_eps);
    });
  };
  const auto rows = [&](const torch::Tensor& t) { return t.narrow(0, first, L - first); };  // rows first..L-1
  // The products outside the parallel regions: BLAS splits each across the threads itself.
  norm_rows(w.attn_norm, 0);
  torch::mm_out(qkv_, normed_, w.qkv.t());  // every row: the keys and values go into the memory
  in_parallel(threads, [&](int t, int n) {
    for (int64_t h = t; h < H; h += n) attend(i, h, mem, next, scratch_[static_cast<size_t>(t)], first);
  });
  rows(x_).addmm_(rows(attn_), w.out.t());
  norm_rows(w.mlp_norm, first);
  auto gate_up_rows = rows(gate_up_);
  torch::mm_out(gate_up_rows, rows(normed_), w.gate_up.t());
  const float* gate_up = gate_up_.data_ptr<float>();
  float* act = act_.data_ptr<float>();
  in_parallel(threads, [&](int t, int n) {
    const auto [r0, r1] = kernels::thread_share(L - first, t, n);
    for (int64_t r = first + r0; r < first + r1; ++r)
      kernels::silu_mul(gate_up + r * 2 * F, gate_up + r * 2 * F + F, act + r * F, F);
  });
  rows(x_).addmm_(rows(act_), w.down.t());
}

torch::Tensor SegmentPrefill::read(const int64_t* tokens, ModelState& state) {
  const auto& c = config_;
  const int64_t L = c.segment_len, D = c.d_model, H = c.n_heads, dk = c.d_key, dv = c.d_value, V = c.vocab_size;
  if (state.batch() != 1 || state.pos_in_segment() != 0)
    throw Error("the fused segment prefill reads one sequence from a segment start");
  if (!state.layers().empty() && state.layers()[0].next_write_weight.defined())
    throw Error("the fused segment prefill does not weigh memory writes (a training feature)");
  for (int64_t j = 0; j < L; ++j)
    if (tokens[j] < 0 || tokens[j] >= V)
      throw Error(fmt::format("token {} is outside the vocabulary (0..{})", tokens[j], V - 1));
  const auto ids = torch::from_blob(const_cast<int64_t*>(tokens), {L}, torch::kInt64);  // (L)
  torch::index_select_out(x_, embed_, 0, ids);

  const int threads = std::max(1, at::get_num_threads());
  if (scratch_.size() < static_cast<size_t>(threads)) {
    scratch_.resize(static_cast<size_t>(threads));
    const auto n = [](int64_t rows, int64_t cols) { return static_cast<size_t>(rows * cols); };
    for (auto& s : scratch_) {
      s.q.resize(n(L, dk));
      s.k.resize(n(L, dk));
      s.sq.resize(n(L, dk));
      s.sk.resize(n(L, dk));
      s.scores.resize(n(L, L));
      s.work.resize(n(L, dv) + n(1, dk));
      if (c.qk_conv > 0) {
        s.conv_q.resize(n(L, dk));
        s.conv_k.resize(n(L, dk));
        s.tail.resize(n(c.qk_conv - 1, dk));
      }
    }
  }
  for (size_t i = 0; i < weights_.size(); ++i) {
    auto& mem = state.layers()[i];
    for (auto* t : {&mem.M, &mem.z, &mem.conv_q, &mem.conv_k})
      if (t->defined() && !t->is_contiguous()) *t = t->contiguous();
    // New tensors for the written memory and the tails: a saved or copied state may share the old ones.
    torch::Tensor M_next, z_next;            // (1, H, dk, dv), (1, H, dk)
    torch::Tensor conv_q_next, conv_k_next;  // (1, H, W - 1, dk) each
    LayerOut next;
    if (c.has_compressive_memory()) {
      M_next = torch::empty_like(mem.M);
      z_next = torch::empty_like(mem.z);
      next.M = M_next.data_ptr<float>();
      next.z = z_next.data_ptr<float>();
    }
    if (c.qk_conv > 0) {
      conv_q_next = torch::empty_like(mem.conv_q, at::MemoryFormat::Contiguous);
      conv_k_next = torch::empty_like(mem.conv_k, at::MemoryFormat::Contiguous);
      next.conv_q = conv_q_next.data_ptr<float>();
      next.conv_k = conv_k_next.data_ptr<float>();
    }
    // The last layer's output is read at the last token alone (the logits returned): its other rows
    // need only their keys and values, for the memory.
    run_layer(i, mem, next, threads, i + 1 == weights_.size() ? L - 1 : 0);
    if (c.has_compressive_memory()) {
      mem.M = M_next;
      mem.z = z_next;
    }
    if (c.qk_conv > 0) {
      mem.conv_q = conv_q_next;
      mem.conv_k = conv_k_next;
    }
    // The memory is written; with no rows to write, the general code only closes the segment (its
    // cache and write weight), as it does for a routed block that took no token.
    finish_segment(c, mem, torch::empty({1, H, 0, dk}), torch::empty({1, H, 0, dv}), torch::Tensor(), torch::Tensor());
  }
  state.advance(L, L);

  std::vector<float> last(static_cast<size_t>(D));
  kernels::rms_norm(x_.data_ptr<float>() + (L - 1) * D, final_norm_, last.data(), D, c.norm_eps);
  return torch::mv(lm_head_, torch::from_blob(last.data(), {D}, torch::kFloat32));  // (V)
}

}  // namespace infini
