#include "memory/state.h"

#include <algorithm>
#include <array>
#include <set>

#include <fmt/format.h>

#include "infini/error.h"

namespace infini {
namespace {

// Every tensor a layer's state may hold (undefined ones included), for the loops over all of them;
// const pointers for a const layer.
template <typename Layer>
auto all_tensors(Layer& l) {
  return std::array{&l.M,       &l.z,      &l.seg_k,  &l.seg_v,  &l.xl_k,  &l.xl_v,
                    &l.seg_pos, &l.xl_pos, &l.conv_q, &l.conv_k, &l.knn_k, &l.knn_v};
}

}  // namespace

ModelState::ModelState(const ModelConfig& config, int64_t batch, torch::Device device)
    : config_(config), batch_(batch), device_(device) {
  clear();
}

void ModelState::clear() {
  const auto& c = config_;
  const auto mem = torch::TensorOptions().dtype(c.memory_dtype()).device(device_);
  const auto act = torch::TensorOptions().dtype(c.dtype).device(device_);
  const int64_t B = batch_, H = c.n_heads;
  const auto positions = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  layers_.assign(static_cast<size_t>(c.n_layers), LayerMemory{});
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& l = layers_[i];
    if (c.is_routed(static_cast<int64_t>(i))) {
      l.seg_pos = torch::zeros({B, 0}, positions);
      if (c.has_xl_cache()) l.xl_pos = torch::zeros({B, 0}, positions);
    }
    if (c.has_compressive_memory()) {
      l.M = torch::zeros({B, H, c.d_key, c.d_value}, mem);
      l.z = torch::zeros({B, H, c.d_key}, mem);
    }
    l.seg_k = torch::zeros({B, H, 0, c.d_key}, act);
    l.seg_v = torch::zeros({B, H, 0, c.d_value}, act);
    if (c.qk_conv > 0) {
      l.conv_q = torch::zeros({B, H, c.qk_conv - 1, c.d_key}, act);
      l.conv_k = torch::zeros({B, H, c.qk_conv - 1, c.d_key}, act);
    }
    if (c.has_xl_cache()) {
      l.xl_k = torch::zeros({B, H, 0, c.d_key}, act);
      l.xl_v = torch::zeros({B, H, 0, c.d_value}, act);
    }
    if (static_cast<int64_t>(i) == c.knn_block()) {
      l.knn_k = torch::zeros({B, H, 0, c.d_key}, act);
      l.knn_v = torch::zeros({B, H, 0, c.d_value}, act);
    }
  }
  rmt_memory_ = c.rmt_rows() > 0 ? torch::zeros({B, 0, c.d_model}, act) : torch::Tensor();
  pos_in_segment_ = 0;
  tokens_seen_ = 0;
}

void ModelState::detach() {
  for (auto& l : layers_)
    for (auto* t : all_tensors(l))
      if (t->defined()) *t = t->detach();
  if (rmt_memory_.defined()) rmt_memory_ = rmt_memory_.detach();
}

ModelState ModelState::clone() const {
  ModelState copy = *this;
  for (auto& l : copy.layers_)
    for (auto* t : all_tensors(l))
      if (t->defined()) *t = t->detach().clone();
  if (copy.rmt_memory_.defined()) copy.rmt_memory_ = copy.rmt_memory_.detach().clone();
  return copy;
}

void ModelState::weigh_next_write(const torch::Tensor& weights) {
  if (weights.dim() != 1 || weights.size(0) != batch_)
    throw Error(fmt::format("write weights of shape {} for a batch of {}", fmt::join(weights.sizes(), "x"), batch_));
  for (auto& l : layers_) l.next_write_weight = weights;
}

void ModelState::advance(int64_t n_tokens, int64_t segment_len) {
  tokens_seen_ += n_tokens;
  pos_in_segment_ = (pos_in_segment_ + n_tokens) % segment_len;
}

int64_t ModelState::bytes() const {
  int64_t total = 0;
  for (const auto& l : layers_)
    for (const auto* t : all_tensors(l))
      if (t->defined()) total += t->numel() * static_cast<int64_t>(t->element_size());
  if (rmt_memory_.defined()) total += rmt_memory_.numel() * static_cast<int64_t>(rmt_memory_.element_size());
  return total;
}

std::map<std::string, torch::Tensor> ModelState::to_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    const auto put = [&](const char* name, const torch::Tensor& t) {
      if (t.defined()) out[fmt::format("layers.{}.{}", i, name)] = t.detach();
    };
    put("M", l.M);
    put("z", l.z);
    put("seg_k", l.seg_k);
    put("seg_v", l.seg_v);
    put("xl_k", l.xl_k);
    put("xl_v", l.xl_v);
    put("seg_pos", l.seg_pos);
    put("xl_pos", l.xl_pos);
    put("conv_q", l.conv_q);
    put("conv_k", l.conv_k);
    put("knn_k", l.knn_k);
    put("knn_v", l.knn_v);
  }
  if (rmt_memory_.defined()) out["rmt_memory"] = rmt_memory_.detach();
  out["pos_in_segment"] = torch::tensor({pos_in_segment_}, torch::kInt64);
  out["tokens_seen"] = torch::tensor({tokens_seen_}, torch::kInt64);
  return out;
}

ModelState ModelState::from_tensors(const ModelConfig& config,
                                    const std::map<std::string, torch::Tensor>& tensors, int64_t batch,
                                    torch::Device device, const std::set<std::string>& extra) {
  const auto get = [&](const std::string& name) -> const torch::Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(fmt::format("state: missing tensor '{}'", name));
    return it->second;
  };
  // Sizes first, from the file alone, before anything is allocated: the batch is the caller's, and
  // every other size the config's.
  const auto counter = [&](const char* name) {
    const auto& t = get(name);
    if (t.scalar_type() != torch::kInt64 || t.sizes() != torch::IntArrayRef{1})
      throw Error(fmt::format("state: tensor '{}' must be one int64, got {} of shape [{}]", name,
                              c10::toString(t.scalar_type()), fmt::join(t.sizes(), ", ")));
    return t.item<int64_t>();
  };
  const int64_t pos_in_segment = counter("pos_in_segment"), tokens_seen = counter("tokens_seen");
  if (pos_in_segment < 0 || pos_in_segment >= config.segment_len || tokens_seen < pos_in_segment ||
      (tokens_seen - pos_in_segment) % config.segment_len != 0)
    throw Error(fmt::format("state: position {} with {} tokens into its segment does not fit segments of {}",
                            tokens_seen, pos_in_segment, config.segment_len));
  const auto& first_k = get("layers.0.seg_k");
  if (first_k.dim() != 4 || first_k.size(0) != batch)
    throw Error(fmt::format("state: tensor 'layers.0.seg_k' has shape [{}]; expected a batch of {} sequence(s)",
                            fmt::join(first_k.sizes(), ", "), batch));
  ModelState s(config, batch, device);
  s.pos_in_segment_ = pos_in_segment;
  s.tokens_seen_ = tokens_seen;
  std::set<std::string> known = {"pos_in_segment", "tokens_seen"};
  for (size_t i = 0; i < s.layers_.size(); ++i) {
    auto& l = s.layers_[i];
    const bool routed = config.is_routed(static_cast<int64_t>(i));
    const auto load = [&](const std::string& name, torch::Tensor& dst, int64_t dim, int64_t rows) {
      if (!dst.defined()) return;
      const auto key = fmt::format("layers.{}.{}", i, name);
      const auto& src = get(key);
      known.insert(key);
      auto expected = dst.sizes().vec();
      if (dim >= 0) expected[static_cast<size_t>(dim)] = rows;
      if (src.sizes().vec() != expected)
        throw Error(fmt::format("state: tensor '{}' has shape {}, the model expects {}", key,
                                fmt::join(src.sizes(), "x"), fmt::join(expected, "x")));
      if (src.scalar_type() != dst.scalar_type())
        throw Error(fmt::format("state: tensor '{}' is stored as {}; the model keeps it as {}", key,
                                c10::toString(src.scalar_type()), c10::toString(dst.scalar_type())));
      if (src.is_floating_point() && !torch::isfinite(src).all().item<bool>())
        throw Error(fmt::format("state: tensor '{}' holds NaN or infinite values; the file is damaged", key));
      dst = src.to(dst.options());
    };
    // Rows of a cache: a dense block caches every token (pos_in_segment rows; the XL cache a whole
    // segment, or nothing before the first one ends); a routed block only its selected ones.
    const auto rows_of = [&](const char* name, int64_t dense_rows, int64_t most) {
      const auto& src = get(fmt::format("layers.{}.{}", i, name));
      const auto n = src.dim() == 4 ? src.size(2) : -1;
      if (!routed) return n == 0 && std::string(name) == "xl_k" ? int64_t{0} : dense_rows;
      if (n < 0 || n > most)
        throw Error(fmt::format("state: tensor 'layers.{}.{}' holds {} tokens, more than the {} it may",
                                i, name, n, most));
      return n;
    };
    load("M", l.M, -1, 0);
    load("z", l.z, -1, 0);
    load("conv_q", l.conv_q, -1, 0);
    load("conv_k", l.conv_k, -1, 0);
    // Under rmt a segment under way also caches its p read rows.
    const auto cached = s.pos_in_segment_ > 0 ? config.rmt_rows() + s.pos_in_segment_ : 0;
    const auto seg_rows = rows_of("seg_k", cached, s.pos_in_segment_);
    load("seg_k", l.seg_k, 2, seg_rows);
    load("seg_v", l.seg_v, 2, seg_rows);
    load("seg_pos", l.seg_pos, 1, seg_rows);
    if (l.xl_k.defined()) {
      const auto xl_rows = rows_of("xl_k", config.segment_len, config.segment_len);
      load("xl_k", l.xl_k, 2, xl_rows);
      load("xl_v", l.xl_v, 2, xl_rows);
      load("xl_pos", l.xl_pos, 1, xl_rows);
    }
    // The kNN memory holds every token before this segment, up to its capacity.
    const auto knn_rows = std::min(config.knn_tokens, s.tokens_seen_ - s.pos_in_segment_);
    load("knn_k", l.knn_k, 2, knn_rows);
    load("knn_v", l.knn_v, 2, knn_rows);
    for (const auto* pos : {&l.seg_pos, &l.xl_pos})
      if (pos->defined() && pos->numel() > 0 &&
          (pos->min().item<int64_t>() < 0 || pos->max().item<int64_t>() >= config.segment_len))
        throw Error(fmt::format("state: layer {} caches a token position outside 0..{}", i, config.segment_len - 1));
  }
  if (s.rmt_memory_.defined()) {
    // The written memory once a segment has ended; before that, none (the model's learned one).
    const int64_t rows = s.tokens_seen_ - s.pos_in_segment_ > 0 ? config.rmt_rows() : 0;
    const auto& src = get("rmt_memory");
    known.insert("rmt_memory");
    const std::vector<int64_t> expected = {batch, rows, config.d_model};
    if (src.sizes().vec() != expected)
      throw Error(fmt::format("state: tensor 'rmt_memory' has shape {}, the model expects {}", fmt::join(src.sizes(), "x"),
                              fmt::join(expected, "x")));
    if (src.scalar_type() != s.rmt_memory_.scalar_type())
      throw Error(fmt::format("state: tensor 'rmt_memory' is stored as {}; the model keeps it as {}",
                              c10::toString(src.scalar_type()), c10::toString(s.rmt_memory_.scalar_type())));
    if (!torch::isfinite(src).all().item<bool>())
      throw Error("state: tensor 'rmt_memory' holds NaN or infinite values; the file is damaged");
    s.rmt_memory_ = src.to(s.rmt_memory_.options());
  }
  for (const auto& [name, _] : tensors)
    if (!known.count(name) && !extra.count(name))
      throw Error(fmt::format("state: unexpected tensor '{}'; the file does not match this model", name));
  return s;
}

}  // namespace infini
