// The public Session (include/infini/session.h) over the engine's SessionEngine.
#include <algorithm>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "api/access.h"
#include "data/text_stream.h"
#include "infer/generate.h"
#include "infini/interrupt.h"
#include "util/runtime.h"

namespace infini {

using detail::Access;

namespace {

// Tokens read per engine call: the progress callback and the interrupt check run between pieces.
constexpr size_t kPiece = 16384;

// The longest tail of `text` that is a proper prefix of a stop string: it waits until known.
size_t held_for_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& stop : stops)
    for (size_t k = std::min(stop.empty() ? 0 : stop.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

void check_sample_options(const SampleOptions& options) {
  if (options.max_tokens < 0) throw Error(fmt::format("generate: max_tokens must be at least 0, not {}", options.max_tokens));
  if (options.temperature < 0) throw Error(fmt::format("generate: temperature must be at least 0, not {}", options.temperature));
  if (options.top_k < 0) throw Error(fmt::format("generate: top_k must be at least 0, not {}", options.top_k));
  if (!(options.top_p > 0 && options.top_p <= 1))
    throw Error(fmt::format("generate: top_p must be in (0, 1], not {}", options.top_p));
  if (!(options.repetition_penalty > 0))
    throw Error(fmt::format("generate: repetition_penalty must be positive, not {}", options.repetition_penalty));
  if (options.repetition_window < 1)
    throw Error(fmt::format("generate: repetition_window must be at least 1, not {}", options.repetition_window));
}

}  // namespace

Session::Session(const Model& model)
    : data_((apply_default_threads(), std::make_unique<detail::SessionData>(detail::SessionData{
               model, SessionEngine(Access::module(model), true, true, model.identity())}))) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const Model& Session::model() const { return data_->model; }

void Session::feed(const std::vector<int64_t>& tokens, const Progress& progress) {
  auto& engine = data_->engine;
  check_token_ids(tokens, data_->model.config().vocab_size, engine.position());  // before any is read
  for (size_t i = 0; i < tokens.size(); i += kPiece) {
    const auto end = std::min(tokens.size(), i + kPiece);
    engine.feed({tokens.begin() + static_cast<std::ptrdiff_t>(i), tokens.begin() + static_cast<std::ptrdiff_t>(end)});
    if (progress) progress(static_cast<int64_t>(end), static_cast<int64_t>(tokens.size()));
  }
}

void Session::feed(std::string_view text, const Progress& progress) {
  feed(data_->model.tokenizer().encode(text), progress);
}

void Session::feed_file(const std::string& path, const Progress& progress) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(fmt::format("{}: {}", path,
                            std::filesystem::is_directory(path, ec) ? "is a folder; give one text file" : "no such file"));
  const auto total = static_cast<int64_t>(std::filesystem::file_size(path));
  auto& engine = data_->engine;
  int64_t reported = -1;
  const auto report = [&](int64_t done) {
    if (progress && done != reported) progress(done, total);
    reported = done;
  };
  data::stream_tokens(path, Access::tokenizer(data_->model.tokenizer()),
                      [&](const std::vector<int64_t>& piece, uint64_t bytes_done) {
                        for (size_t i = 0; i < piece.size(); i += kPiece) {
                          const auto end = std::min(piece.size(), i + kPiece);
                          engine.feed({piece.begin() + static_cast<std::ptrdiff_t>(i),
                                       piece.begin() + static_cast<std::ptrdiff_t>(end)});
                          // Within a block, tokens stand in for bytes: an estimate for progress only.
                          report(std::max<int64_t>(0, static_cast<int64_t>(bytes_done) -
                                                          static_cast<int64_t>(piece.size() - end)));
                        }
                      });
  report(total);
}

std::vector<int64_t> Session::generate_tokens(const std::vector<int64_t>& prompt, const SampleOptions& options,
                                              const std::function<bool(int64_t)>& on_token) {
  check_sample_options(options);
  check_token_ids(prompt, data_->model.config().vocab_size, data_->engine.position());
  // The prompt goes in with the options: the repetition penalty looks back into it.
  return infini::generate(data_->engine, prompt, options, on_token);
}

Generation Session::start_generation(std::string_view prompt, const SampleOptions& options) {
  check_sample_options(options);
  const auto& tokenizer = data_->model.tokenizer();
  auto prompt_tokens = prompt.empty() ? std::vector<int64_t>{} : Access::tokenizer(tokenizer).encode(prompt, "prompt");
  auto& engine = data_->engine;
  check_token_ids(prompt_tokens, data_->model.config().vocab_size, engine.position());
  if (!prompt_tokens.empty()) engine.feed(prompt_tokens);
  if (!engine.last_logits().defined())
    throw Error("generate: nothing to continue; give a prompt or a state that has read some text");
  return Generation(std::make_unique<detail::GenerationData>(
      detail::GenerationData{&engine, tokenizer, options, at::make_generator<at::CPUGeneratorImpl>(options.seed),
                             std::move(prompt_tokens), {}, "", false, false}));
}

std::string Session::generate(std::string_view prompt, const SampleOptions& options,
                              const std::function<void(std::string_view)>& on_text) {
  auto generation = start_generation(prompt, options);
  while (const auto piece = generation.next())
    if (on_text && !piece->empty()) on_text(*piece);
  return generation.text();
}

// --- Generation --------------------------------------------------------------------------------------

Generation::Generation(std::unique_ptr<detail::GenerationData> data) : data_(std::move(data)) {}
Generation::~Generation() = default;
Generation::Generation(Generation&&) noexcept = default;
Generation& Generation::operator=(Generation&&) noexcept = default;

bool Generation::ended() const { return data_->ended; }
bool Generation::stopped() const { return data_->stopped; }
const std::vector<int64_t>& Generation::tokens() const { return data_->tokens; }
const std::string& Generation::text() const { return data_->sent; }

namespace {

// What of `text` (which extends what was sent) is new.
std::string release(detail::GenerationData& d, const std::string& text) {
  if (text.size() <= d.sent.size() || text.compare(0, d.sent.size(), d.sent) != 0) return std::string();
  auto piece = text.substr(d.sent.size());
  d.sent = text;
  return piece;
}

// Bytes at the end of `text` that start a UTF-8 character and do not finish it: a byte tokenizer's
// next token may complete it.
size_t incomplete_utf8_tail(const std::string& text) {
  for (size_t back = 1; back <= std::min<size_t>(3, text.size()); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    return length > back && byte < 0xF8 ? back : 0;
  }
  return 0;
}

// The text that became final with the token just read.
std::string text_after_token(detail::GenerationData& d) {
  auto text = d.tokenizer.decode(d.tokens);
  for (const auto& stop : d.options.stop) {
    const auto at = stop.empty() ? std::string::npos : text.find(stop);
    if (at != std::string::npos) {
      d.ended = d.stopped = true;
      return release(d, text.substr(0, at));  // the stop string itself is not returned
    }
  }
  // A SentencePiece byte piece may be half a character, which decodes to U+FFFD until the rest
  // arrives, so trailing U+FFFDs wait; so do a byte tokenizer's first bytes of a character, and text
  // that may be the start of a stop string.
  static const std::string kReplacement = "\xEF\xBF\xBD";
  while (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0) text.resize(text.size() - 3);
  text.resize(text.size() - incomplete_utf8_tail(text));
  return release(d, text.substr(0, text.size() - held_for_stop(text, d.options.stop)));
}

}  // namespace

std::optional<std::string> Generation::next() { return next_together({this})[0]; }

std::vector<std::optional<std::string>> next_together(const std::vector<Generation*>& generations) {
  std::vector<std::optional<std::string>> out(generations.size());
  std::vector<size_t> stepping;
  std::vector<SessionEngine*> engines;
  std::vector<int64_t> tokens;
  torch::InferenceMode inference;
  for (size_t i = 0; i < generations.size(); ++i) {
    auto& d = *generations[i]->data_;
    if (d.ended) continue;
    if (static_cast<int64_t>(d.tokens.size()) >= d.options.max_tokens) {
      d.ended = true;
      auto rest = release(d, d.tokenizer.decode(d.tokens));  // nothing is held back at the end
      if (!rest.empty()) out[i] = std::move(rest);
      continue;
    }
    if (std::find(engines.begin(), engines.end(), d.engine) != engines.end())
      throw Error("next_together: two generations share a session; each needs its own");
    stepping.push_back(i);
    engines.push_back(d.engine);
  }
  for (const auto i : stepping) {  // once the batch is known to be sound
    auto& d = *generations[i]->data_;
    tokens.push_back(sample_token(d.engine->last_logits(), d.recent, d.options, d.random));
  }
  // Every session reads its token (it holds everything generated, ready to go on).
  SessionEngine::feed_batch(engines, tokens);
  for (size_t k = 0; k < stepping.size(); ++k) {
    auto& d = *generations[stepping[k]]->data_;
    d.tokens.push_back(tokens[k]);
    d.recent.push_back(tokens[k]);
    out[stepping[k]] = text_after_token(d);
  }
  return out;
}

torch::Tensor Session::last_logits() const {
  const auto& logits = data_->engine.last_logits();
  return logits.defined() ? logits.clone() : logits;
}

int64_t Session::position() const { return data_->engine.position(); }
int64_t Session::state_bytes() const { return data_->engine.state_bytes(); }
State Session::state() const { return Access::make_state(data_->engine.state().clone()); }
void Session::clear() { data_->engine.clear(); }

int64_t Session::Snapshot::position() const {
  if (!data_) throw Error("Snapshot::position: an empty snapshot; take one with Session::snapshot()");
  return data_->snapshot.state.tokens_seen();
}

Session::Snapshot Session::snapshot() const {
  Snapshot s;
  s.data_ = std::make_shared<const detail::SnapshotData>(
      detail::SnapshotData{data_->engine.snapshot(), data_->engine.identity()});
  return s;
}

void Session::restore(const Snapshot& snapshot) {
  if (!snapshot.data_) throw Error("restore: an empty snapshot; take one with Session::snapshot()");
  if (snapshot.data_->identity != data_->engine.identity())
    throw Error(fmt::format("restore: the snapshot was taken with another model (identity {}, this model {})",
                            snapshot.data_->identity, data_->engine.identity()));
  data_->engine.restore(snapshot.data_->snapshot);
}

void Session::save(const std::string& path) const { data_->engine.save(path); }
void Session::load(const std::string& path) { data_->engine.load(path); }

}  // namespace infini
