// A model: its config, weights and tokenizer, and the forward pass over an explicit per-sequence
// state (after llama.cpp, the state is kept apart from the weights). Part of infini's public API
// (include/infini/infini.h); every failure is an infini::Error whose message names the file, field
// or argument and says how to fix it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "infini/config.h"
#include "infini/error.h"

namespace infini {

namespace data {
class Tokenizer;
class TextCutter;
}
class ModelState;
namespace detail {
struct ModelData;
struct Access;
}  // namespace detail

// Text <-> token ids: bytes (256 ids) or SentencePiece. A handle: copies share one tokenizer.
class Tokenizer {
 public:
  static Tokenizer bytes();
  // A SentencePiece .model file (see `infini tokenizer train`).
  static Tokenizer sentencepiece(const std::string& model_file);
  // The tokenizer saved in a model folder (tokenizer.json, plus tokenizer.model for SentencePiece).
  static Tokenizer load(const std::string& model_dir);

  std::string kind() const;  // "byte" or "sentencepiece"
  int64_t vocab_size() const;
  // SentencePiece refuses text that is not UTF-8.
  std::vector<int64_t> encode(std::string_view text) const;
  // Ids outside [0, vocab_size) are an error.
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  explicit Tokenizer(std::shared_ptr<const data::Tokenizer> impl);
  std::shared_ptr<const data::Tokenizer> impl_;
  friend struct detail::Access;
};

// Encodes text that arrives in pieces (an upload, a pipe) into the tokens the whole text would give.
// A SentencePiece tokenizer must not see a word cut in two, so text waits for a line end, or, past
// `max_hold` bytes without one, for a character boundary; a byte tokenizer encodes every byte at once.
class StreamEncoder {
 public:
  explicit StreamEncoder(const Tokenizer& tokenizer, size_t max_hold = size_t{1} << 20);
  ~StreamEncoder();
  StreamEncoder(StreamEncoder&&) noexcept;
  StreamEncoder& operator=(StreamEncoder&&) noexcept;
  // The tokens of what is complete now (may be none). Text that is not UTF-8 is an error for
  // SentencePiece, naming the byte offset.
  std::vector<int64_t> push(std::string_view bytes);
  // The tokens of the rest, once the input has ended.
  std::vector<int64_t> finish();
  int64_t bytes_encoded() const;  // handed to the tokenizer so far
  int64_t bytes_held() const;     // waiting for a line end

 private:
  std::vector<int64_t> encode(const std::string& text);
  Tokenizer tokenizer_;
  std::unique_ptr<data::TextCutter> cutter_;
  int64_t encoded_ = 0;
};

// What a model remembers of the sequences it has read: per layer the compressive memory (M, z), the
// unfinished segment's keys and values and, by mode, the XL cache and routed positions. Its size is
// bounded by the config, never by the input's length. Immutable: forward() returns a new one.
// It carries autograd history across segments until detach().
class State {
 public:
  State();  // none: forward() then starts from an empty state
  bool defined() const;
  int64_t batch() const;
  int64_t position() const;  // tokens read since the empty state
  int64_t bytes() const;     // held by its tensors
  // The same values without autograd history: the cut of truncated back-propagation through time.
  State detach() const;
  // A deep copy, detached.
  State clone() const;
  // Named tensors ("layers.{i}.M", "layers.{i}.z", ...; shapes in docs/INFERENCE.md), shared with the
  // state, plus the position counters as 0-d int64 tensors.
  std::map<std::string, torch::Tensor> tensors() const;

 private:
  explicit State(std::shared_ptr<const ModelState> impl);
  std::shared_ptr<const ModelState> impl_;
  friend struct detail::Access;
};

// A handle: copies share the weights (as torch modules do).
class Model {
 public:
  // A model folder: config.json, model.safetensors and the tokenizer. Every byte is checked before
  // it is used (docs/RELIABILITY.md).
  static Model load(const std::string& dir);
  // New weights drawn from N(0, init_std) with `seed` (as `infini train` draws them), and the byte
  // tokenizer, or `tokenizer`, whose vocabulary must be the config's.
  explicit Model(const ModelConfig& config, uint64_t seed = 1234);
  Model(const ModelConfig& config, const Tokenizer& tokenizer, uint64_t seed = 1234);

  // Writes a model folder that Model::load and the CLI read; each file is replaced atomically.
  void save(const std::string& dir) const;

  const ModelConfig& config() const;
  const Tokenizer& tokenizer() const;
  // The folder the model was loaded from or last saved to; empty for one made in code.
  const std::string& path() const;

  struct Output {
    torch::Tensor logits;  // (B, T, V), the model's dtype
    State state;           // after the last token
  };
  // Reads `tokens`, (B, T) int64 with ids in [0, vocab_size), after the sequences `state` describes
  // (none: empty ones), segment after segment. Any chunking of a sequence gives the same logits.
  // Gradients flow into the weights and back through the state until it is detached. `routing`
  // matters to Mixture-of-Depths models only: top-k is the training objective's selection, causal the
  // one reading and sampling use.
  Output forward(const torch::Tensor& tokens, const State& state = State(),
                 Routing routing = Routing::TopK) const;
  // The state of `batch` sequences that have read nothing.
  State initial_state(int64_t batch = 1) const;

  // The weights, by their names in model.safetensors: the engine's own tensors, so an optimizer that
  // updates them updates the model.
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  int64_t parameter_count() const;
  // A fingerprint of the config and the current weights (16 hex digits): state files name it.
  std::string identity() const;

 private:
  explicit Model(std::shared_ptr<detail::ModelData> data);
  std::shared_ptr<detail::ModelData> data_;
  friend struct detail::Access;
};

}  // namespace infini
