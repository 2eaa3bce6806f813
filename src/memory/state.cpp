#include "memory/state.h"

#include <fmt/format.h>

#include "util/error.h"

namespace infini {

ModelState::ModelState(const ModelConfig& config, int64_t batch, torch::Device device)
    : config_(config), batch_(batch), device_(device) {
  clear();
}

void ModelState::clear() {
  const auto& c = config_;
  const auto mem = torch::TensorOptions().dtype(c.memory_dtype()).device(device_);
  const auto act = torch::TensorOptions().dtype(c.dtype).device(device_);
  const int64_t B = batch_, H = c.n_heads;
  layers_.assign(static_cast<size_t>(c.n_layers), LayerMemory{});
  for (auto& l : layers_) {
    if (c.has_compressive_memory()) {
      l.M = torch::zeros({B, H, c.d_key, c.d_value}, mem);
      l.z = torch::zeros({B, H, c.d_key}, mem);
    }
    l.seg_k = torch::zeros({B, H, 0, c.d_key}, act);
    l.seg_v = torch::zeros({B, H, 0, c.d_value}, act);
    if (c.memory == MemoryMode::XL) {
      l.xl_k = torch::zeros({B, H, 0, c.d_key}, act);
      l.xl_v = torch::zeros({B, H, 0, c.d_value}, act);
    }
  }
  pos_in_segment_ = 0;
  tokens_seen_ = 0;
}

void ModelState::detach() {
  for (auto& l : layers_)
    for (auto* t : {&l.M, &l.z, &l.seg_k, &l.seg_v, &l.xl_k, &l.xl_v})
      if (t->defined()) *t = t->detach();
}

ModelState ModelState::clone() const {
  ModelState copy = *this;
  for (auto& l : copy.layers_)
    for (auto* t : {&l.M, &l.z, &l.seg_k, &l.seg_v, &l.xl_k, &l.xl_v})
      if (t->defined()) *t = t->detach().clone();
  return copy;
}

void ModelState::advance(int64_t n_tokens, int64_t segment_len) {
  tokens_seen_ += n_tokens;
  pos_in_segment_ = (pos_in_segment_ + n_tokens) % segment_len;
}

int64_t ModelState::bytes() const {
  int64_t total = 0;
  for (const auto& l : layers_)
    for (const auto* t : {&l.M, &l.z, &l.seg_k, &l.seg_v, &l.xl_k, &l.xl_v})
      if (t->defined()) total += t->numel() * static_cast<int64_t>(t->element_size());
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
  }
  out["pos_in_segment"] = torch::tensor({pos_in_segment_}, torch::kInt64);
  out["tokens_seen"] = torch::tensor({tokens_seen_}, torch::kInt64);
  return out;
}

ModelState ModelState::from_tensors(const ModelConfig& config,
                                    const std::map<std::string, torch::Tensor>& tensors,
                                    torch::Device device) {
  const auto get = [&](const std::string& name) -> const torch::Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(fmt::format("state: missing tensor '{}'", name));
    return it->second;
  };
  const auto& first_k = get("layers.0.seg_k");
  ModelState s(config, first_k.size(0), device);
  s.pos_in_segment_ = get("pos_in_segment").item<int64_t>();
  s.tokens_seen_ = get("tokens_seen").item<int64_t>();
  if (s.pos_in_segment_ < 0 || s.pos_in_segment_ >= config.segment_len || s.tokens_seen_ < s.pos_in_segment_ ||
      (s.tokens_seen_ - s.pos_in_segment_) % config.segment_len != 0)
    throw Error(fmt::format("state: position {} with {} tokens into its segment does not fit segments of {}",
                            s.tokens_seen_, s.pos_in_segment_, config.segment_len));
  for (size_t i = 0; i < s.layers_.size(); ++i) {
    auto& l = s.layers_[i];
    const auto load = [&](const char* name, torch::Tensor& dst) {
      if (!dst.defined()) return;
      const auto& src = get(fmt::format("layers.{}.{}", i, name));
      // The segment cache holds pos_in_segment rows; every other size is the config's.
      auto expected = dst.sizes().vec();
      if (std::string(name) == "seg_k" || std::string(name) == "seg_v") expected[2] = s.pos_in_segment_;
      if (std::string(name) == "xl_k" || std::string(name) == "xl_v")  // empty before the first segment ends
        expected[2] = src.dim() == 4 && src.size(2) == 0 ? 0 : config.segment_len;
      if (src.sizes().vec() != expected)
        throw Error(fmt::format("state: tensor 'layers.{}.{}' has shape {}, the model expects {}",
                                i, name, fmt::join(src.sizes(), "x"), fmt::join(expected, "x")));
      dst = src.to(dst.options());
    };
    load("M", l.M);
    load("z", l.z);
    load("seg_k", l.seg_k);
    load("seg_v", l.seg_v);
    load("xl_k", l.xl_k);
    load("xl_v", l.xl_v);
  }
  return s;
}

}  // namespace infini
