#include "infer/decoder.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <omp.h>

#include "kernels/infini_cpu.h"
#include "kernels/matvecs_cpu.h"
#include "kernels/query_attention_cpu.h"
#include "kernels/vector_cpu.h"
#include "model/attention.h"
#include "infini/error.h"

namespace infini {
namespace {

const float* weight_of(std::vector<torch::Tensor>& held, const torch::Tensor& t) {
  held.push_back(t.detach().to(torch::kFloat32).contiguous());
  return held.back().data_ptr<float>();
}

}  // namespace

namespace {

// The packed matrices of the last few (model, weights) pairs: packing the shipped model takes about
// as long as a hundred decode steps, and a server makes a session per request. A weight changed in
// place changes the key (the tensors' version counters). Entries hold the model weakly: a model that
// is gone can never match, even when a new one is made at its address.
std::shared_ptr<const TokenDecoder::PackedModel> cached_packing(
    const InfiniTransformer& model, int64_t versions,
    const std::function<std::shared_ptr<const TokenDecoder::PackedModel>()>& pack) {
  struct Entry {
    std::weak_ptr<InfiniTransformerImpl> model;
    int64_t versions;
    std::shared_ptr<const TokenDecoder::PackedModel> packed;
  };
  static std::mutex mutex;
  static std::vector<Entry> cache;
  std::lock_guard<std::mutex> lock(mutex);
  cache.erase(std::remove_if(cache.begin(), cache.end(), [](const Entry& e) { return e.model.expired(); }),
              cache.end());
  for (const auto& e : cache)
    if (e.model.lock() == model.ptr() && e.versions == versions) return e.packed;
  auto packed = pack();
  cache.push_back({model.ptr(), versions, packed});
  if (cache.size() > 2) cache.erase(cache.begin());
  return packed;
}

}  // namespace

bool TokenDecoder::supports(const ModelConfig& config, torch::Device device) {
  // The kNN memory's search and read, and RMT's memory rows, run on the general path only.
  return device.is_cpu() && config.dtype == torch::kFloat32 && config.memory_dtype() == torch::kFloat32 &&
         config.memory != MemoryMode::Knn && config.memory != MemoryMode::Rmt;
}

TokenDecoder::TokenDecoder(InfiniTransformer model)
    : model_(std::move(model)),
      config_(model_->config()),
      rope_(config_.d_key, config_.rope_theta, config_.segment_len) {
  const auto& c = config_;
  if (!supports(c, model_->embed->weight.device()))
    throw Error("the one-token decoder needs an fp32 model on the CPU");
  torch::NoGradGuard no_grad;
  embed_ = weight_of(held_, model_->embed->weight);
  final_norm_ = weight_of(held_, model_->norm->weight);
  lm_head_ = model_->lm_head ? weight_of(held_, model_->lm_head->weight) : embed_;
  for (const auto& module : *model_->blocks) {
    const auto* b = module->as<BlockImpl>();
    LayerWeights w;
    w.attn_norm = weight_of(held_, b->attn_norm->weight);
    w.qkv = weight_of(held_, b->attn->qkv_proj->weight);
    w.out = weight_of(held_, b->attn->out_proj->weight);
    w.mlp_norm = weight_of(held_, b->mlp_norm->weight);
    w.gate_up = weight_of(held_, b->mlp->gate_up_proj->weight);
    w.down = weight_of(held_, b->mlp->down_proj->weight);
    if (c.has_compressive_memory()) {
      const auto g = torch::sigmoid(b->attn->gate.detach().to(torch::kFloat32)).contiguous();  // (H)
      w.gate.assign(g.data_ptr<float>(), g.data_ptr<float>() + c.n_heads);
    }
    if (c.memory_key_shift) {
      w.key_shift_logits = b->attn->key_shift.detach();
      const auto share = torch::sigmoid(b->attn->key_shift.detach().to(torch::kFloat32)).contiguous();  // (H)
      w.key_shift.assign(share.data_ptr<float>(), share.data_ptr<float>() + c.n_heads);
    }
    if (c.qk_conv > 0) {
      w.q_conv = weight_of(held_, b->attn->q_conv);
      w.k_conv = weight_of(held_, b->attn->k_conv);
    }
    if (b->routed()) {
      w.router = weight_of(held_, b->router->weight);
      w.pred_hidden = weight_of(held_, b->predictor->hidden->weight);
      w.pred_hidden_bias = weight_of(held_, b->predictor->hidden->bias);
      w.pred_out = weight_of(held_, b->predictor->out->weight);
      w.pred_out_bias = b->predictor->out->bias.detach().to(torch::kFloat32).item<float>();
    }
    weights_.push_back(std::move(w));
  }
  int64_t versions = 0;
  for (const auto& p : model_->parameters()) versions += p._version();
  packed_ = cached_packing(model_, versions, [&] {
    auto packed = std::make_shared<PackedModel>();
    const int64_t D = c.d_model, F = c.d_ff;
    for (const auto& w : weights_) {
      PackedLayer layer;
      layer.qkv = kernels::PackedRows::pack(w.qkv, c.n_heads * (2 * c.d_key + c.d_value), D);
      layer.out = kernels::PackedRows::pack(w.out, D, c.n_heads * c.d_value);
      layer.gate = kernels::PackedRows::pack(w.gate_up, F, D);
      layer.up = kernels::PackedRows::pack(w.gate_up + F * D, F, D);
      layer.down = kernels::PackedRows::pack(w.down, D, F);
      if (w.pred_hidden) layer.pred_hidden = kernels::PackedRows::pack(w.pred_hidden, c.mod_predictor_hidden, D);
      packed->layers.push_back(std::move(layer));
    }
    packed->lm_head = kernels::PackedRows::pack(lm_head_, c.vocab_size, D);
    return std::shared_ptr<const PackedModel>(std::move(packed));
  });
  const auto L = c.segment_len, H = c.n_heads;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerCache cache;
    // Uninitialised: a row is read only after it is written (attach, load_xl, or the step itself).
    cache.seg_k = torch::empty({1, H, L, c.d_key}, f32);
    cache.rotated_k = torch::empty({H, 2 * L, c.d_key}, f32);
    cache.values = torch::empty({H, 2 * L, c.d_value}, f32);
    if (c.qk_conv > 0) {
      cache.conv_q = torch::zeros({1, H, c.qk_conv - 1, c.d_key}, f32);
      cache.conv_k = torch::zeros({1, H, c.qk_conv - 1, c.d_key}, f32);
    }
    caches_.push_back(std::move(cache));
  }
  const auto [cos, sin] = rope_.compute(0, L, f32);  // (L, dk/2) each
  rope_cos_.assign(cos.data_ptr<float>(), cos.data_ptr<float>() + cos.numel());
  rope_sin_.assign(sin.data_ptr<float>(), sin.data_ptr<float>() + sin.numel());
  x_.resize(c.d_model);
  qkv_.resize(H * (2 * c.d_key + c.d_value));
  attn_.resize(H * c.d_value);
  act_.resize(c.d_ff);
  up_.resize(c.d_ff);
  mlp_out_.resize(c.d_model);
  attn_res_.resize(c.d_model);
  h_.resize(c.d_model);
  pred_.resize(c.mod_predictor_hidden);
  took_.assign(c.n_layers, 0);
}

void TokenDecoder::load_xl(const LayerMemory& mem, LayerCache& cache) const {
  const auto L = config_.segment_len;
  cache.xl_len = mem.xl_k.defined() ? mem.xl_k.size(2) : 0;
  if (cache.xl_len == 0) return;
  const auto n = cache.xl_len;
  const auto rotated = mem.xl_pos.defined() ? rope_.apply_at(mem.xl_k, mem.xl_pos - L) : rope_.apply(mem.xl_k, -n);
  cache.rotated_k.narrow(1, L - n, n).copy_(rotated[0]);  // (H, n, dk)
  cache.values.narrow(1, L - n, n).copy_(mem.xl_v[0]);                     // (H, n, dv)
}

void TokenDecoder::attach(const ModelState& state) {
  torch::InferenceMode inference;
  if (state.batch() != 1) throw Error(fmt::format("the one-token decoder reads one sequence, not {}", state.batch()));
  const auto L = config_.segment_len, p = state.pos_in_segment();
  for (size_t i = 0; i < caches_.size(); ++i) {
    const auto& mem = state.layers()[i];
    auto& cache = caches_[i];
    const bool routed = mem.seg_pos.defined();
    cache.count = routed ? mem.seg_k.size(2) : p;
    cache.positions.clear();
    if (routed) {
      const auto pos = mem.seg_pos[0].contiguous();  // (count)
      cache.positions.assign(pos.data_ptr<int64_t>(), pos.data_ptr<int64_t>() + cache.count);
    }
    if (const auto n = cache.count; n > 0) {
      cache.seg_k.narrow(2, 0, n).copy_(mem.seg_k);  // (1, H, n, dk)
      const auto rotated = routed ? rope_.apply_at(mem.seg_k, mem.seg_pos) : rope_.apply(mem.seg_k, 0);
      cache.rotated_k.narrow(1, L, n).copy_(rotated[0]);  // (H, n, dk)
      cache.values.narrow(1, L, n).copy_(mem.seg_v[0]);  // (H, n, dv)
    }
    load_xl(mem, cache);
    if (cache.conv_q.defined()) {
      cache.conv_q.copy_(mem.conv_q);
      cache.conv_k.copy_(mem.conv_k);
    }
  }
}

void TokenDecoder::write_back(ModelState& state) const {
  const auto L = config_.segment_len;
  for (size_t i = 0; i < caches_.size(); ++i) {
    auto& mem = state.layers()[i];
    const auto& cache = caches_[i];
    const auto n = cache.count;
    mem.seg_k = cache.seg_k.narrow(2, 0, n).clone();                    // (1, H, n, dk)
    mem.seg_v = cache.values.narrow(1, L, n).unsqueeze(0).clone();      // (1, H, n, dv)
    if (mem.seg_pos.defined()) mem.seg_pos = torch::tensor(cache.positions, torch::kInt64).view({1, n});
    if (cache.conv_q.defined()) {
      mem.conv_q = cache.conv_q.clone();  // (1, H, W - 1, dk)
      mem.conv_k = cache.conv_k.clone();
    }
  }
}

void TokenDecoder::route(const std::vector<Sequence>& batch, size_t i, Scratch& s, int thread, int threads) const {
  const auto& c = config_;
  const auto& w = weights_[i];
  const int64_t D = c.d_model, P = c.mod_predictor_hidden;
  const auto B = batch.size();
  if (c.mod_predictor == CausalSelector::Mlp) {
    const auto& packed = packed_->layers[i].pred_hidden;
    const auto [q0, q1] = kernels::thread_share(packed.panel_count(), thread, threads);
    const int64_t j0 = packed.row_begin(q0), j1 = packed.row_end(q1);
    for (size_t b = 0; b < B; ++b) {
      s.xs[b] = batch[b].decoder->x_.data();
      s.ys[b] = batch[b].decoder->pred_.data();
    }
    kernels::matvecs_packed(packed, s.xs.data(), static_cast<int64_t>(B), s.ys.data(), q0, q1);
    for (size_t b = 0; b < B; ++b)
      for (int64_t j = j0; j < j1; ++j) {
        float& a = batch[b].decoder->pred_[static_cast<size_t>(j)];
        a += w.pred_hidden_bias[j];
        a = a / (1.0f + std::exp(-a));
      }
#pragma omp barrier
  }
  for (size_t b = 0; b < B; ++b) {
    const auto& d = *batch[b].decoder;
    const float r = kernels::dot(w.router, d.x_.data(), D);
    const float logit =
        c.mod_predictor == CausalSelector::Mlp ? kernels::dot(w.pred_out, d.pred_.data(), P) + w.pred_out_bias : r;
    s.take[b] = logit > 0.0f;
    s.weight[b] = c.mod_router == RouterWeight::Raw ? r : 1.0f / (1.0f + std::exp(-r));
  }
  if (c.mod_predictor == CausalSelector::Mlp) {
#pragma omp barrier  // everyone has read pred_ before a later layer writes it again
  }
}

void TokenDecoder::run_layer(const std::vector<Sequence>& batch, size_t i, Scratch& s, int thread, int threads) const {
  const auto& c = config_;
  const auto& w = weights_[i];
  const int64_t D = c.d_model, H = c.n_heads, dk = c.d_key, dv = c.d_value, L = c.segment_len;
  const int64_t B = static_cast<int64_t>(batch.size());
  // A routed layer that skips a token leaves no trace of it; one that takes it caches the token in
  // its next free slot and adds w(r) times the block's update.
  const bool routed = w.router != nullptr;
  if (routed) {
    route(batch, i, s, thread, threads);
  } else {
    std::fill(s.take.begin(), s.take.begin() + B, 1);
  }
  const auto taken = [&](int64_t b) { return s.take[static_cast<size_t>(b)] != 0; };
  float* normed = s.normed.data();  // (B, D)
  // The products below: rows of a weight times the vectors of the sequences the layer takes, into
  // each sequence's buffer `out`.
  const auto& packed = packed_->layers[i];
  // This thread's panels of a matrix, and the rows they hold.
  struct Share {
    int64_t p0, p1, r0, r1;
  };
  const auto share = [&](const kernels::PackedRows& m) {
    const auto [p0, p1] = kernels::thread_share(m.panel_count(), thread, threads);
    return Share{p0, p1, m.row_begin(p0), m.row_end(p1)};
  };
  const auto products = [&](const kernels::PackedRows& m, const auto& in, const auto& out, const Share& rows) {
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b)
      if (taken(b)) {
        s.xs[n] = in(b);
        s.ys[n++] = out(*batch[b].decoder);
      }
    kernels::matvecs_packed(m, s.xs.data(), n, s.ys.data(), rows.p0, rows.p1);
  };
  const auto normed_of = [&](int64_t b) { return normed + b * D; };

  // Q, K, V in one product.
  for (int64_t b = 0; b < B; ++b)
    if (taken(b)) kernels::rms_norm(batch[b].decoder->x_.data(), w.attn_norm, normed + b * D, D, c.norm_eps);
  products(packed.qkv, normed_of, [](TokenDecoder& d) { return d.qkv_.data(); }, share(packed.qkv));
#pragma omp barrier

  // Per (sequence, head): cache the new key and value, attend over the XL cache and the segment so
  // far, read the memory as it stood at the segment's start, and gate the two.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dk)));
  for (int64_t task = thread; task < B * H; task += threads) {
    const int64_t b = task / H, h = task % H;
    if (!taken(b)) continue;
    auto& d = *batch[b].decoder;
    auto& cache = d.caches_[i];
    const auto& mem = batch[b].state->layers()[i];
    const int64_t p = batch[b].p, slot = cache.count;
    const float* cos = rope_cos_.data() + p * (dk / 2);
    const float* sin = rope_sin_.data() + p * (dk / 2);
    const float* qkv = d.qkv_.data();
    const float* q = qkv + h * dk;            // (dk), un-rotated
    const float* k = qkv + (H + h) * dk;      // (dk), un-rotated
    if (w.q_conv) {  // as qk_conv::apply: the convolved rows replace the raw ones, then the tails move on
      const int64_t W = c.qk_conv;
      float* tail_q = cache.conv_q.data_ptr<float>() + h * (W - 1) * dk;  // (W - 1, dk)
      float* tail_k = cache.conv_k.data_ptr<float>() + h * (W - 1) * dk;  // (W - 1, dk)
      kernels::qk_conv_row(w.q_conv + h * dk * W, tail_q, q, s.conv_q.data(), dk, W);
      kernels::qk_conv_row(w.k_conv + h * dk * W, tail_k, k, s.conv_k.data(), dk, W);
      kernels::qk_conv_slide(tail_q, q, dk, W);
      kernels::qk_conv_slide(tail_k, k, dk, W);
      q = s.conv_q.data();
      k = s.conv_k.data();
    }
    const float* v = qkv + 2 * H * dk + h * dv;  // (dv)
    float* keys = cache.rotated_k.data_ptr<float>() + h * 2 * L * dk;  // (2L, dk)
    float* values = cache.values.data_ptr<float>() + h * 2 * L * dv;   // (2L, dv)
    float* seg_k = cache.seg_k.data_ptr<float>() + h * L * dk;  // (L, dk), un-rotated, un-shifted (convolved under qk_conv)
    std::copy(k, k + dk, seg_k + slot * dk);
    kernels::rope_rotate(k, cos, sin, keys + (L + slot) * dk, dk);
    std::copy(v, v + dv, values + (L + slot) * dv);
    kernels::rope_rotate(q, cos, sin, s.q.data(), dk);

    const int64_t first = L - cache.xl_len, count = cache.xl_len + slot + 1;
    float* out = d.attn_.data() + h * dv;  // (dv)
    kernels::attend_one_query(s.q.data(), keys + first * dk, values + first * dv, count, dk, dv, scale,
                              s.scores.data(), out);

    if (c.has_compressive_memory()) {  // the gated read of the memory as it stood at the segment's start
      kernels::elu_plus_one(q, s.sigma_q.data(), dk);
      kernels::gated_memory_read(s.sigma_q.data(), 1, mem.M.data_ptr<float>() + h * dk * dv,
                                 mem.z.data_ptr<float>() + h * dk, dk, dv, static_cast<float>(c.memory_eps),
                                 w.gate[static_cast<size_t>(h)], out, dv, s.head.data());
    }
  }
#pragma omp barrier

  // Output projection and residual, each thread on its own rows of x. A routed layer keeps x as it
  // was and builds the MLP's input h = x + a apart, since its own residual is scaled by w(r).
  {
    const auto rows = share(packed.out);
    const int64_t r0 = rows.r0, r1 = rows.r1;
    products(packed.out, [&](int64_t b) { return batch[b].decoder->attn_.data(); },
             [](TokenDecoder& d) { return d.attn_res_.data(); }, rows);
    for (int64_t b = 0; b < B; ++b) {
      if (!taken(b)) continue;
      auto& d = *batch[b].decoder;
      for (int64_t r = r0; r < r1; ++r) {
        if (routed) {
          d.h_[r] = d.x_[r] + d.attn_res_[r];
        } else {
          d.x_[r] += d.attn_res_[r];
        }
      }
    }
  }
#pragma omp barrier

  // SwiGLU: a thread takes gate row f and up row F + f together, so it can finish act[f] itself.
  for (int64_t b = 0; b < B; ++b)
    if (taken(b)) {
      auto& d = *batch[b].decoder;
      kernels::rms_norm(routed ? d.h_.data() : d.x_.data(), w.mlp_norm, normed + b * D, D, c.norm_eps);
    }
  {
    const auto rows = share(packed.gate);
    const int64_t f0 = rows.r0, f1 = rows.r1;
    products(packed.gate, normed_of, [](TokenDecoder& d) { return d.act_.data(); }, rows);
    products(packed.up, normed_of, [](TokenDecoder& d) { return d.up_.data(); }, rows);
    for (int64_t b = 0; b < B; ++b) {
      if (!taken(b)) continue;
      auto& d = *batch[b].decoder;
      for (int64_t f = f0; f < f1; ++f) {
        const float g = d.act_[f];
        d.act_[f] = g / (1.0f + std::exp(-g)) * d.up_[f];
      }
    }
  }
#pragma omp barrier
  {
    const auto rows = share(packed.down);
    const int64_t r0 = rows.r0, r1 = rows.r1;
    products(packed.down, [&](int64_t b) { return batch[b].decoder->act_.data(); },
             [](TokenDecoder& d) { return d.mlp_out_.data(); }, rows);
    for (int64_t b = 0; b < B; ++b) {
      if (!taken(b)) continue;
      auto& d = *batch[b].decoder;
      const float weight = s.weight[static_cast<size_t>(b)];
      for (int64_t r = r0; r < r1; ++r) d.x_[r] += routed ? weight * (d.attn_res_[r] + d.mlp_out_[r]) : d.mlp_out_[r];
    }
  }
#pragma omp barrier
}

void TokenDecoder::write_memory(size_t i, LayerMemory& mem, int64_t n) {
  const auto& c = config_;
  const auto& w = weights_[i];
  const auto& cache = caches_[i];
  const int64_t L = c.segment_len, H = c.n_heads, dk = c.d_key, dv = c.d_value;
  // New tensors: a snapshot or a saved state may share the old ones.
  auto M_next = torch::empty_like(mem.M, at::MemoryFormat::Contiguous);  // (1, H, dk, dv)
  auto z_next = torch::empty_like(mem.z, at::MemoryFormat::Contiguous);  // (1, H, dk)
  write_sk_.resize(static_cast<size_t>(L * dk));
  write_work_.resize(static_cast<size_t>(L * dv + dk));
  for (int64_t h = 0; h < H; ++h) {
    const float* k = cache.seg_k.data_ptr<float>() + h * L * dk;           // (n, dk), un-rotated
    const float* v = cache.values.data_ptr<float>() + (h * 2 * L + L) * dv;  // (n, dv)
    kernels::written_key_features(k, dk, n, dk, w.key_shift.empty() ? nullptr : &w.key_shift[static_cast<size_t>(h)],
                                  write_sk_.data());
    kernels::memory_write(write_sk_.data(), n, v, dv, mem.M.data_ptr<float>() + h * dk * dv,
                          mem.z.data_ptr<float>() + h * dk, dk, dv, static_cast<float>(c.memory_eps),
                          c.memory == MemoryMode::InfiniDelta, M_next.data_ptr<float>() + h * dk * dv,
                          z_next.data_ptr<float>() + h * dk, write_work_.data());
  }
  mem.M = M_next;
  mem.z = z_next;
}

torch::Tensor TokenDecoder::step(int64_t token, ModelState& state) { return step_batch({this}, {token}, {&state})[0]; }

std::vector<torch::Tensor> TokenDecoder::step_batch(const std::vector<TokenDecoder*>& decoders,
                                                    const std::vector<int64_t>& tokens,
                                                    const std::vector<ModelState*>& states) {
  if (decoders.empty()) return {};
  TokenDecoder& lead = *decoders[0];  // its weights, rope tables and per-thread scratch serve the batch
  const auto& c = lead.config_;
  if (tokens.size() != decoders.size() || states.size() != decoders.size())
    throw Error(fmt::format("step_batch: {} decoders, {} tokens and {} states", decoders.size(), tokens.size(),
                            states.size()));
  const int64_t D = c.d_model, V = c.vocab_size, L = c.segment_len;
  const auto B = static_cast<int64_t>(decoders.size());
  std::vector<Sequence> batch;
  std::vector<torch::Tensor> logits;
  for (int64_t b = 0; b < B; ++b) {
    auto& d = *decoders[b];
    if (d.embed_ != lead.embed_) throw Error("step_batch: the decoders belong to different models");
    if (std::find(decoders.begin(), decoders.begin() + b, &d) != decoders.begin() + b)
      throw Error("step_batch: a decoder appears twice; each sequence steps once per batch");
    const auto token = tokens[b];
    if (token < 0 || token >= c.vocab_size)
      throw Error(fmt::format("token {} is outside the vocabulary (0..{})", token, c.vocab_size - 1));
    auto& state = *states[b];
    for (auto& mem : state.layers())
      if (mem.M.defined() && !(mem.M.is_contiguous() && mem.z.is_contiguous())) {
        mem.M = mem.M.contiguous();
        mem.z = mem.z.contiguous();
      }
    std::copy(lead.embed_ + token * D, lead.embed_ + (token + 1) * D, d.x_.begin());
    batch.push_back({&d, &state, state.pos_in_segment()});
    logits.push_back(torch::empty({V}, torch::kFloat32));  // (V)
  }
  const int threads = std::max(1, at::get_num_threads());
  auto& scratch = lead.scratch_;
  if (scratch.size() < static_cast<size_t>(threads)) scratch.resize(static_cast<size_t>(threads));
  for (auto& s : scratch)
    if (s.normed.size() < static_cast<size_t>(B * D)) {
      s.normed.resize(B * D);
      s.take.resize(B);
      s.weight.resize(B);
      s.xs.resize(B);
      s.ys.resize(B);
      s.q.resize(c.d_key);
      s.sigma_q.resize(c.d_key);
      s.scores.resize(2 * L);
      s.head.resize(c.d_value);
      s.conv_q.resize(c.d_key);
      s.conv_k.resize(c.d_key);
    }
  std::vector<float*> out(B);
  for (int64_t b = 0; b < B; ++b) out[b] = logits[b].data_ptr<float>();
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    auto& s = scratch[static_cast<size_t>(t)];
    for (size_t i = 0; i < lead.caches_.size(); ++i) {
      lead.run_layer(batch, i, s, t, n);
      if (t == 0)
        for (int64_t b = 0; b < B; ++b) batch[b].decoder->took_[i] = s.take[b];
    }
    for (int64_t b = 0; b < B; ++b) {
      kernels::rms_norm(batch[b].decoder->x_.data(), lead.final_norm_, s.normed.data() + b * D, D, c.norm_eps);
      s.xs[b] = s.normed.data() + b * D;
    }
    const auto [p0, p1] = kernels::thread_share(lead.packed_->lm_head.panel_count(), t, n);
    kernels::matvecs_packed(lead.packed_->lm_head, s.xs.data(), B, out.data(), p0, p1);
  }
  for (auto& seq : batch) seq.decoder->finish_step(*seq.state, seq.p);
  return logits;
}

void TokenDecoder::finish_step(ModelState& state, int64_t p) {
  const auto& c = config_;
  const int64_t L = c.segment_len;
  for (size_t i = 0; i < caches_.size(); ++i)
    if (took_[i]) {
      caches_[i].count += 1;
      if (weights_[i].router) caches_[i].positions.push_back(p);
    }
  state.advance(1, L);
  if (p + 1 < L) return;
  // The segment is complete: the general code writes it into the memory (or the XL cache).
  torch::InferenceMode inference;
  for (size_t i = 0; i < caches_.size(); ++i) {
    auto& mem = state.layers()[i];
    auto& cache = caches_[i];
    const auto n = cache.count;
    const auto positions = weights_[i].router ? torch::tensor(cache.positions, torch::kInt64).view({1, n}) : torch::Tensor();
    // The compressive memory is written with the fused prefill's kernels, and finish_segment, given
    // no rows, then only closes the segment; it writes only what they do not cover (the XL cache, and
    // a training state's weighted write).
    const bool fused_write = c.has_compressive_memory() && !mem.next_write_weight.defined();
    if (fused_write && n > 0) write_memory(i, mem, n);
    const auto rows = fused_write ? 0 : n;
    finish_segment(c, mem, cache.seg_k.narrow(2, 0, rows), cache.values.narrow(1, L, rows).unsqueeze(0),
                   positions.defined() ? positions.narrow(1, 0, rows) : positions, weights_[i].key_shift_logits);
    load_xl(mem, cache);
    cache.count = 0;
    cache.positions.clear();
  }
}

}  // namespace infini
