#include "infer/prefill.h"

#include <algorithm>
#include <cmath>

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <fmt/format.h>
#include <omp.h>

#include "kernels/vector_cpu.h"
#include "memory/compressive.h"
#include "model/attention.h"
#include "model/rope.h"
#include "util/error.h"

namespace infini {
namespace {

// Queries per block of the causal scores: block b sees only keys [0, end of block b).
constexpr int64_t kQueryBlock = 64;

torch::Tensor fp32(const torch::Tensor& t) { return t.detach().to(torch::kFloat32).contiguous(); }

}  // namespace

bool SegmentPrefill::supports(const ModelConfig& c, torch::Device device) {
  if (!device.is_cpu() || c.dtype != torch::kFloat32 || c.memory_dtype() != torch::kFloat32) return false;
  if (c.memory == MemoryMode::XL) return false;
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

void SegmentPrefill::attend(size_t i, int64_t h, const LayerMemory& mem, Scratch& s) {
  const auto& c = config_;
  const int64_t L = c.segment_len, H = c.n_heads, dk = c.d_key, dv = c.d_value, N = H * (2 * dk + dv);
  const float* qkv = qkv_.data_ptr<float>();
  float* q = s.q.data_ptr<float>();
  float* k = s.k.data_ptr<float>();
  for (int64_t r = 0; r < L; ++r) {
    const float* cos = rope_cos_.data() + r * (dk / 2);
    const float* sin = rope_sin_.data() + r * (dk / 2);
    kernels::rope_rotate(qkv + r * N + h * dk, cos, sin, q + r * dk, dk);
    kernels::rope_rotate(qkv + r * N + (H + h) * dk, cos, sin, k + r * dk, dk);
  }
  const auto v = qkv_.narrow(1, 2 * H * dk + h * dv, dv);  // (L, dv)
  auto out = attn_.narrow(1, h * dv, dv);                   // (L, dv)
  const double scale = 1.0 / std::sqrt(static_cast<double>(dk));
  float* scores = s.scores.data_ptr<float>();
  for (int64_t b0 = 0; b0 < L; b0 += kQueryBlock) {
    const auto nb = std::min(kQueryBlock, L - b0), seen = b0 + nb;
    auto block = s.scores.narrow(0, b0, nb).narrow(1, 0, seen);  // (nb, seen)
    torch::addmm_out(block, block, s.q.narrow(0, b0, nb), s.k.narrow(0, 0, seen).t(), 0.0, scale);
    // Query r sees keys 0..r: the block's later keys are masked out.
    for (int64_t r = b0; r < seen; ++r) std::fill(scores + r * L + r + 1, scores + r * L + seen, -INFINITY);
    torch::softmax_out(block, block, -1);
    auto out_block = out.narrow(0, b0, nb);
    torch::mm_out(out_block, block, v.narrow(0, 0, seen));
  }
  if (!c.has_compressive_memory()) return;
  // A_mem = sigma(q) M / (sigma(q) z + eps), read from the memory as it stood at the segment's start;
  // then lerp(local, A_mem, sigmoid(beta)).
  const auto sigma_q = memory::feature_map(qkv_.narrow(1, h * dk, dk));  // (L, dk), un-rotated q
  torch::mm_out(s.read, sigma_q, mem.M[0][h]);                            // (L, dv)
  torch::mv_out(s.norm, sigma_q, mem.z[0][h]);                            // (L)
  const float* read = s.read.data_ptr<float>();
  const float* norm = s.norm.data_ptr<float>();
  const float g = weights_[i].gate[static_cast<size_t>(h)];
  const auto eps = static_cast<float>(c.memory_eps);
  float* o = attn_.data_ptr<float>() + h * dv;
  for (int64_t r = 0; r < L; ++r) {
    const float inv = 1.0f / (norm[r] + eps);
    float* o_row = o + r * H * dv;
    for (int64_t e = 0; e < dv; ++e) o_row[e] += g * (read[r * dv + e] * inv - o_row[e]);
  }
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

void SegmentPrefill::run_layer(size_t i, const LayerMemory& mem, int threads) {
  const auto& c = config_;
  const auto& w = weights_[i];
  const int64_t L = c.segment_len, D = c.d_model, H = c.n_heads, F = c.d_ff;
  float* x = x_.data_ptr<float>();
  float* normed = normed_.data_ptr<float>();
  const auto norm_rows = [&](const float* weight) {
    in_parallel(threads, [&](int t, int n) {
      const auto [r0, r1] = kernels::thread_share(L, t, n);
      for (int64_t r = r0; r < r1; ++r) kernels::rms_norm(x + r * D, weight, normed + r * D, D, c.norm_eps);
    });
  };
  // The products outside the parallel regions: BLAS splits each across the threads itself.
  norm_rows(w.attn_norm);
  torch::mm_out(qkv_, normed_, w.qkv.t());
  in_parallel(threads, [&](int t, int n) {
    for (int64_t h = t; h < H; h += n) attend(i, h, mem, scratch_[static_cast<size_t>(t)]);
  });
  x_.addmm_(attn_, w.out.t());
  norm_rows(w.mlp_norm);
  torch::mm_out(gate_up_, normed_, w.gate_up.t());
  torch::silu_out(act_, gate_up_.narrow(1, 0, F));
  act_.mul_(gate_up_.narrow(1, F, F));
  x_.addmm_(act_, w.down.t());
}

torch::Tensor SegmentPrefill::read(const int64_t* tokens, ModelState& state) {
  const auto& c = config_;
  const int64_t L = c.segment_len, D = c.d_model, H = c.n_heads, dk = c.d_key, dv = c.d_value, V = c.vocab_size;
  if (state.batch() != 1 || state.pos_in_segment() != 0)
    throw Error("the fused segment prefill reads one sequence from a segment start");
  for (int64_t j = 0; j < L; ++j)
    if (tokens[j] < 0 || tokens[j] >= V)
      throw Error(fmt::format("token {} is outside the vocabulary (0..{})", tokens[j], V - 1));
  const auto ids = torch::from_blob(const_cast<int64_t*>(tokens), {L}, torch::kInt64);  // (L)
  torch::index_select_out(x_, embed_, 0, ids);

  const int threads = std::max(1, at::get_num_threads());
  if (scratch_.size() < static_cast<size_t>(threads)) {
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    scratch_.resize(static_cast<size_t>(threads));
    for (auto& s : scratch_)
      s = {torch::empty({L, dk}, f32), torch::empty({L, dk}, f32), torch::empty({L, L}, f32),
           torch::empty({L, dv}, f32), torch::empty({L}, f32)};
  }
  for (size_t i = 0; i < weights_.size(); ++i) {
    auto& mem = state.layers()[i];
    if (mem.M.defined() && !(mem.M.is_contiguous() && mem.z.is_contiguous())) {
      mem.M = mem.M.contiguous();
      mem.z = mem.z.contiguous();
    }
    run_layer(i, mem, threads);
    // The segment is complete in this layer: the general code writes it into the memory.
    const auto k_seg = qkv_.narrow(1, H * dk, H * dk).view({1, L, H, dk}).transpose(1, 2);  // (1, H, L, dk)
    const auto v_seg = qkv_.narrow(1, 2 * H * dk, H * dv).view({1, L, H, dv}).transpose(1, 2);  // (1, H, L, dv)
    finish_segment(c, mem, k_seg, v_seg, torch::Tensor());
  }
  state.advance(L, L);

  std::vector<float> last(static_cast<size_t>(D));
  kernels::rms_norm(x_.data_ptr<float>() + (L - 1) * D, final_norm_, last.data(), D, c.norm_eps);
  return torch::mv(lm_head_, torch::from_blob(last.data(), {D}, torch::kFloat32));  // (V)
}

}  // namespace infini
