#include "infer/session.h"

#include <algorithm>
#include <chrono>

#include <ATen/Parallel.h>

#include <fmt/format.h>

#include "io/safetensors.h"
#include "infini/error.h"
#include "infini/interrupt.h"
#include "util/runtime.h"

namespace infini {
namespace {

// Runs one round of `work` at the tuner's thread count and reports its time, per item when the
// round does `items` of them (a batched step), so rounds of different sizes compare.
template <typename Work>
auto timed(ThreadTuner& tuner, const Work& work, size_t items = 1) {
  const ScopedThreads threads(tuner.threads());
  const auto t0 = std::chrono::steady_clock::now();
  auto out = work();
  tuner.record(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
               static_cast<double>(items));
  return out;
}

constexpr int kStateFormatVersion = 1;

}  // namespace

std::string model_identity(InfiniTransformer& model) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto mix = [&h](const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  };
  const auto config = model->config().to_json().dump();
  mix(config.data(), config.size());
  for (const auto& item : model->named_parameters()) {
    mix(item.key().data(), item.key().size());
    const auto t = item.value().detach().contiguous().cpu();
    mix(t.data_ptr(), static_cast<size_t>(t.numel() * t.element_size()));
  }
  return fmt::format("{:016x}", h);
}

SessionEngine::SessionEngine(InfiniTransformer model, bool fused_decode, bool fused_prefill, std::string identity)
    : model_(std::move(model)),
      identity_(identity.empty() ? model_identity(model_) : std::move(identity)),
      state_(model_->initial_state(1)),
      // A token takes about 0.15 ms and a segment about 4 on the shipped model. A probe times each
      // count for at least 30 ms, several scheduler time slices, so that the stalls a busy neighbour
      // causes are seen at their rate.
      decode_threads_(at::get_num_threads(), {/*probe_rounds=*/8, /*probe_seconds=*/0.03, /*settle_rounds=*/1,
                                              /*settle_seconds=*/0.02, /*first_period=*/0.05, /*max_period=*/2.0,
                                              thread_tuning()}),
      prefill_threads_(at::get_num_threads(), {/*probe_rounds=*/3, /*probe_seconds=*/0.03, /*settle_rounds=*/1,
                                               /*settle_seconds=*/0.02, /*first_period=*/0.1, /*max_period=*/4.0,
                                               thread_tuning()}) {
  model_->eval();
  use_decoder_ = fused_decode && TokenDecoder::supports(model_->config(), model_->embed->weight.device());
  use_prefill_ = fused_prefill && SegmentPrefill::supports(model_->config(), model_->embed->weight.device());
}

// Made at first use: their buffers (a few MB for the shipped model) cost nothing to a session that
// only loads a state or snapshots one (a server keeps thousands).
TokenDecoder& SessionEngine::decoder() {
  if (!decoder_) decoder_ = std::make_unique<TokenDecoder>(model_);
  return *decoder_;
}

SegmentPrefill& SessionEngine::prefill() {
  if (!prefill_) prefill_ = std::make_unique<SegmentPrefill>(model_);
  return *prefill_;
}

const ModelState& SessionEngine::state() const {
  settle();
  return state_;
}

void SessionEngine::settle() const {
  if (!decoding_) return;
  decoder_->write_back(state_);
  decoding_ = false;
}

void check_token_ids(const std::vector<int64_t>& tokens, int64_t vocab, int64_t position) {
  for (size_t k = 0; k < tokens.size(); ++k)
    if (tokens[k] < 0 || tokens[k] >= vocab)
      throw Error(fmt::format("token {} at position {} is outside the vocabulary (0..{})", tokens[k],
                              position + static_cast<int64_t>(k), vocab - 1));
}

void SessionEngine::feed(const std::vector<int64_t>& tokens) {
  torch::InferenceMode inference;
  const auto L = model_->config().segment_len;
  const auto V = model_->config().vocab_size;
  check_token_ids(tokens, V, position());  // all first, so a bad token leaves the session as it was
  for (size_t i = 0; i < tokens.size();) {
    poll_interrupt();  // between pieces: state_ is whole here
    // Up to the end of the current segment: the forward pass then writes it into the memory.
    const auto n = std::min<size_t>(tokens.size() - i, static_cast<size_t>(L - state_.pos_in_segment()));
    if (n == 1 && use_decoder_) {
      if (!decoding_) decoder().attach(state_);
      decoding_ = true;
      last_logits_ = timed(decode_threads_, [&] { return decoder_->step(tokens[i], state_); });
      i += n;
      continue;
    }
    settle();
    if (n == static_cast<size_t>(L) && use_prefill_) {
      // A copy of the handles, as below: an exception keeps state_.
      auto next = state_;
      last_logits_ = timed(prefill_threads_, [&] { return prefill().read(tokens.data() + i, next); });
      state_ = std::move(next);
      i += n;
      continue;
    }
    const auto chunk = torch::from_blob(const_cast<int64_t*>(tokens.data() + i), {1, static_cast<int64_t>(n)},
                                        torch::kInt64);  // (1, n)
    // A copy of the handles (cheap; forward changes no tensor in place), so an exception keeps state_.
    // Causal routing: what a token skips must not depend on tokens not read yet.
    auto out = model_->forward(chunk, state_, /*logits_from=*/chunk.size(1) - 1, Routing::Causal);
    state_ = std::move(out.state);
    last_logits_ = out.logits[0][0].to(torch::kFloat32);  // (V)
    i += n;
  }
}

void SessionEngine::feed_batch(const std::vector<SessionEngine*>& engines, const std::vector<int64_t>& tokens) {
  if (engines.size() != tokens.size())
    throw Error(fmt::format("feed_batch: {} sessions and {} tokens", engines.size(), tokens.size()));
  torch::InferenceMode inference;
  std::vector<SessionEngine*> batched;
  std::vector<TokenDecoder*> decoders;
  std::vector<ModelState*> states;
  std::vector<int64_t> batch_tokens;
  for (size_t k = 0; k < engines.size(); ++k) {
    auto& e = *engines[k];
    if (std::find(engines.begin(), engines.begin() + static_cast<std::ptrdiff_t>(k), &e) !=
        engines.begin() + static_cast<std::ptrdiff_t>(k))
      throw Error("feed_batch: a session appears twice; each reads one token per step");
    check_token_ids({tokens[k]}, e.model_->config().vocab_size, e.position());
  }
  for (size_t k = 0; k < engines.size(); ++k) {
    auto& e = *engines[k];
    if (!e.use_decoder_) {  // not on the fused path (not fp32 on the CPU): alone, through the general one
      e.feed({tokens[k]});
      continue;
    }
    if (!e.decoding_) e.decoder().attach(e.state_);
    e.decoding_ = true;
    batched.push_back(&e);
    decoders.push_back(e.decoder_.get());
    states.push_back(&e.state_);
    batch_tokens.push_back(tokens[k]);
  }
  if (batched.empty()) return;
  poll_interrupt();
  const auto logits = timed(
      batched[0]->decode_threads_, [&] { return TokenDecoder::step_batch(decoders, batch_tokens, states); },
      batched.size());
  for (size_t k = 0; k < batched.size(); ++k) batched[k]->last_logits_ = logits[k];
}

void SessionEngine::clear() {
  decoding_ = false;
  state_.clear();
  last_logits_ = torch::Tensor();
}

SessionEngine::Snapshot SessionEngine::snapshot() const {
  settle();
  return {state_.clone(), last_logits_.defined() ? last_logits_.clone() : torch::Tensor()};
}

void SessionEngine::restore(const Snapshot& snapshot) {
  settle();
  decoding_ = false;
  state_ = snapshot.state.clone();
  last_logits_ = snapshot.last_logits.defined() ? snapshot.last_logits.clone() : torch::Tensor();
}

void SessionEngine::save(const std::string& path) const {
  settle();
  io::TensorFile file;
  file.tensors = state_.to_tensors();
  if (last_logits_.defined()) file.tensors["last_logits"] = last_logits_;
  file.metadata["format"] = "infini-state";
  file.metadata["format_version"] = std::to_string(kStateFormatVersion);
  file.metadata["model_identity"] = identity_;
  file.metadata["position"] = std::to_string(position());
  io::save_safetensors(path, file);
}

void SessionEngine::load(const std::string& path) {
  const auto file = io::load_safetensors(path);
  const auto meta = [&](const std::string& key) {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw Error(fmt::format("{}: not an infini state file (metadata '{}' missing)", path, key));
    return it->second;
  };
  if (meta("format") != "infini-state" || meta("format_version") != std::to_string(kStateFormatVersion))
    throw Error(fmt::format("{}: not an infini state file of version {}", path, kStateFormatVersion));
  if (meta("model_identity") != identity_)
    throw Error(fmt::format("{}: made with another model (identity {}, this model {}); read the text again "
                            "with this model ('infini read')", path, meta("model_identity"), identity_));
  // Everything is checked before anything is replaced: a failed load leaves the session as it was.
  ModelState loaded;
  try {
    loaded = ModelState::from_tensors(model_->config(), file.tensors, /*batch=*/1, model_->embed->weight.device(),
                                      {"last_logits"});
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
  if (std::to_string(loaded.tokens_seen()) != meta("position"))
    throw Error(fmt::format("{}: position {} in the metadata, {} in the tensors", path, meta("position"),
                            loaded.tokens_seen()));
  // The logits after the last token read: what the next token is sampled from. A session writes them
  // once it has read anything, as fp32 of the vocabulary's size.
  const auto logits = file.tensors.find("last_logits");
  const auto vocab = model_->config().vocab_size;
  if (logits == file.tensors.end() && loaded.tokens_seen() > 0)
    throw Error(fmt::format("{}: tensor 'last_logits' is missing, but the state has read {} tokens", path,
                            loaded.tokens_seen()));
  if (logits != file.tensors.end()) {
    const auto& t = logits->second;
    const auto dtype = model_->config().dtype;
    if ((t.scalar_type() != torch::kFloat32 && t.scalar_type() != dtype) || t.sizes() != torch::IntArrayRef{vocab})
      throw Error(fmt::format("{}: tensor 'last_logits' is {} of shape [{}]; expected {} of shape [{}] (the "
                              "vocabulary)", path, c10::toString(t.scalar_type()), fmt::join(t.sizes(), ", "),
                              dtype == torch::kFloat32 ? std::string("Float")
                                                       : fmt::format("Float or {}", c10::toString(dtype)),
                              vocab));
    if (!torch::isfinite(t).all().item<bool>())
      throw Error(fmt::format("{}: tensor 'last_logits' holds NaN or infinite values; the file is damaged", path));
  }
  settle();
  decoding_ = false;
  state_ = std::move(loaded);
  last_logits_ = logits == file.tensors.end() ? torch::Tensor() : logits->second;
}

}  // namespace infini
