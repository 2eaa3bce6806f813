// The public Model, State and Tokenizer (include/infini/model.h) over the engine's transformer.
#include <algorithm>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "api/access.h"
#include "data/text_stream.h"
#include "io/model_dir.h"
#include "train/trainer.h"
#include "util/runtime.h"

namespace infini {

using detail::Access;
using detail::ModelData;

// --- Tokenizer ---------------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const data::Tokenizer> impl) : impl_(std::move(impl)) {}
Tokenizer Tokenizer::bytes() { return Tokenizer(data::byte_tokenizer()); }
Tokenizer Tokenizer::sentencepiece(const std::string& model_file) {
  return Tokenizer(data::load_sentencepiece(model_file));
}
Tokenizer Tokenizer::load(const std::string& model_dir) { return Tokenizer(data::load_tokenizer(model_dir)); }
std::string Tokenizer::kind() const { return impl_->kind(); }
int64_t Tokenizer::vocab_size() const { return impl_->vocab_size(); }
std::vector<int64_t> Tokenizer::encode(std::string_view text) const { return impl_->encode(text, "text"); }

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  const auto V = impl_->vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw Error(fmt::format("decode: id {} at index {} is outside the vocabulary (0..{})", ids[i], i, V - 1));
  return impl_->decode(ids);
}

StreamEncoder::StreamEncoder(const Tokenizer& tokenizer, size_t max_hold)
    : tokenizer_(tokenizer),
      cutter_(std::make_unique<data::TextCutter>(Access::tokenizer(tokenizer).one_token_per_byte(), max_hold)) {}
StreamEncoder::~StreamEncoder() = default;
StreamEncoder::StreamEncoder(StreamEncoder&&) noexcept = default;
StreamEncoder& StreamEncoder::operator=(StreamEncoder&&) noexcept = default;

std::vector<int64_t> StreamEncoder::encode(const std::string& text) {
  if (text.empty()) return {};
  auto tokens = Access::tokenizer(tokenizer_).encode(text, fmt::format("text (from byte {})", encoded_));
  encoded_ += static_cast<int64_t>(text.size());
  return tokens;
}
std::vector<int64_t> StreamEncoder::push(std::string_view bytes) { return encode(cutter_->push(bytes)); }
std::vector<int64_t> StreamEncoder::finish() { return encode(cutter_->finish()); }
int64_t StreamEncoder::bytes_encoded() const { return encoded_; }
int64_t StreamEncoder::bytes_held() const { return static_cast<int64_t>(cutter_->held()); }

// --- State -------------------------------------------------------------------------------------------

State::State() = default;
State::State(std::shared_ptr<const ModelState> impl) : impl_(std::move(impl)) {}
bool State::defined() const { return impl_ != nullptr; }

namespace {
const ModelState& get(const std::shared_ptr<const ModelState>& impl, const char* what) {
  if (!impl) throw Error(fmt::format("State::{}: the state is empty (State()); use one that forward() returned", what));
  return *impl;
}
}  // namespace

int64_t State::batch() const { return get(impl_, "batch").batch(); }
int64_t State::position() const { return get(impl_, "position").tokens_seen(); }
int64_t State::bytes() const { return get(impl_, "bytes").bytes(); }

State State::detach() const {
  auto copy = get(impl_, "detach");  // shares the tensors; detach() replaces them in the copy only
  copy.detach();
  return State(std::make_shared<const ModelState>(std::move(copy)));
}

State State::clone() const { return State(std::make_shared<const ModelState>(get(impl_, "clone").clone())); }

std::map<std::string, torch::Tensor> State::tensors() const { return get(impl_, "tensors").to_tensors(); }

// --- Model -------------------------------------------------------------------------------------------

namespace {

// Forward passes called in a loop run on a measured thread count, as `infini train`'s steps do: the
// time from one call to the next is one step of the caller's loop (its backward pass and optimizer
// included, which run on the count set here). Beside a busy neighbour fewer threads are faster
// (util/thread_tuner.h). Nothing changes under an explicit set_threads(n), and a pause of a minute
// or more starts the timing afresh rather than counting as a step.
void pace_threads(detail::StepThreads& s) {
  if (!thread_tuning()) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto now = std::chrono::steady_clock::now();
  if (!s.tuner) {
    s.tuner.emplace(training_thread_tuner());
  } else {
    const double seconds = std::chrono::duration<double>(now - s.last_call).count();
    if (seconds < 60) s.tuner->record(seconds);
  }
  s.last_call = now;
  at::set_num_threads(s.tuner->threads());
}

}  // namespace

namespace detail {

std::string current_identity(ModelData& data) {
  auto& cache = *data.identity;
  std::lock_guard<std::mutex> lock(cache.mutex);
  int64_t versions = 0;
  for (const auto& p : data.module->parameters()) versions += p._version();
  if (versions != cache.versions || cache.identity.empty()) {
    cache.identity = model_identity(data.module);
    cache.versions = versions;
  }
  return cache.identity;
}

}  // namespace detail

Model::Model(std::shared_ptr<ModelData> data) : data_(std::move(data)) {}

Model Model::load(const std::string& dir) {
  auto module = io::load_model(dir);  // first: its errors say what a model folder is
  return Model(std::make_shared<ModelData>(ModelData{module, Tokenizer::load(dir), dir}));
}

Model::Model(const ModelConfig& config, uint64_t seed) : Model(config, Tokenizer::bytes(), seed) {}

Model::Model(const ModelConfig& config, const Tokenizer& tokenizer, uint64_t seed) {
  config.validate();
  if (tokenizer.vocab_size() != config.vocab_size)
    throw Error(fmt::format("Model: the tokenizer has {} ids but the config's vocab_size is {}; set vocab_size "
                            "to the tokenizer's",
                            tokenizer.vocab_size(), config.vocab_size));
  // Drawn as `infini train --seed` draws them, without changing the caller's random stream.
  auto generator = at::detail::getDefaultCPUGenerator();
  const auto saved = generator.get_state();
  torch::manual_seed(seed);
  InfiniTransformer module(nullptr);
  try {
    module = InfiniTransformer(config);
  } catch (...) {
    generator.set_state(saved);
    throw;
  }
  generator.set_state(saved);
  data_ = std::make_shared<ModelData>(ModelData{module, tokenizer, ""});
}

void Model::save(const std::string& dir) const {
  io::save_model(dir, data_->module, Access::tokenizer(data_->tokenizer));
  data_->path = dir;
}

const ModelConfig& Model::config() const { return data_->module->config(); }
const Tokenizer& Model::tokenizer() const { return data_->tokenizer; }
const std::string& Model::path() const { return data_->path; }

Model::Output Model::forward(const torch::Tensor& tokens, const State& state, Routing routing) const {
  apply_default_threads();
  const auto& config = data_->module->config();
  if (!tokens.defined()) throw Error("forward: tokens is an undefined tensor");
  if (tokens.scalar_type() != torch::kInt64)
    throw Error(fmt::format("forward: tokens must be int64 (a LongTensor), not {}", c10::toString(tokens.scalar_type())));
  if (tokens.dim() != 2 || tokens.size(0) < 1 || tokens.size(1) < 1)
    throw Error(fmt::format("forward: tokens must have shape (batch, time) with both at least 1, not {}",
                            fmt::join(tokens.sizes(), "x")));
  const auto device = data_->module->embed->weight.device();
  if (tokens.device() != device)
    throw Error(fmt::format("forward: tokens are on {} but the model is on {}", tokens.device().str(), device.str()));
  const auto lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0 || hi >= config.vocab_size)
    throw Error(fmt::format("forward: token id {} is outside the vocabulary (0..{})", lo < 0 ? lo : hi,
                            config.vocab_size - 1));
  ModelState start;
  if (!state.defined()) {
    start = data_->module->initial_state(tokens.size(0));
  } else {
    const auto& given = Access::state(state);
    if (given.config().to_json() != config.to_json())
      throw Error("forward: the state was made by a model of another config; start from State() or this "
                  "model's initial_state()");
    if (given.batch() != tokens.size(0))
      throw Error(fmt::format("forward: the state holds {} sequences but tokens has {} rows", given.batch(),
                              tokens.size(0)));
    start = given;  // shares the tensors: forward returns a new state and changes none in place
  }
  pace_threads(*data_->step_threads);
  auto out = data_->module->forward(tokens, std::move(start), /*logits_from=*/0, routing);
  return {std::move(out.logits), Access::make_state(std::move(out.state))};
}

State Model::initial_state(int64_t batch) const {
  if (batch < 1) throw Error(fmt::format("initial_state: batch must be at least 1, not {}", batch));
  return Access::make_state(data_->module->initial_state(batch));
}

std::vector<std::pair<std::string, torch::Tensor>> Model::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : data_->module->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

int64_t Model::parameter_count() const { return data_->module->parameter_count(); }
std::string Model::identity() const { return detail::current_identity(*data_); }

}  // namespace infini
