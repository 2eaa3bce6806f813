// A session: one sequence read by a model, for reading long inputs and generating. It reads any
// number of tokens a segment at a time, so its memory stays at one segment's cache plus the
// compressive memory however long the input; whole segments and single tokens go through fused CPU
// paths that give the general forward pass's logits. Part of infini's public API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "infini/model.h"

namespace infini {

namespace detail {
struct SessionData;
struct SnapshotData;
struct GenerationData;
}  // namespace detail

struct SampleOptions {
  int64_t max_tokens = 200;
  double temperature = 0.8;          // 0: greedy
  int64_t top_k = 0;                 // sample among the k likeliest (0: all)
  double top_p = 1.0;                // nucleus: the smallest set with this much probability (1: all)
  double repetition_penalty = 1.0;   // > 1 discourages tokens already in the last `repetition_window`
  int64_t repetition_window = 256;
  uint64_t seed = 1234;
  // Session::generate stops once the text generated contains one of these; the stop string and what
  // follows it are not returned (they are read into the session).
  std::vector<std::string> stop;
};

// A generation in progress, pulled a token at a time (streaming): Session::start_generation makes
// one. The session must outlive it, and is not used otherwise until the generation has ended.
class Generation {
 public:
  ~Generation();
  Generation(Generation&&) noexcept;
  Generation& operator=(Generation&&) noexcept;

  // Samples the next token, reads it into the session and returns the text that became final with it:
  // empty while text is held back (half a UTF-8 character, or what may be the start of a stop string).
  // std::nullopt once the generation has ended (max_tokens reached, or a stop string found); the
  // last text comes before that.
  std::optional<std::string> next();
  bool ended() const;
  bool stopped() const;  // ended at a stop string
  const std::vector<int64_t>& tokens() const;  // generated so far, the stop string's included
  const std::string& text() const;             // returned by next() so far

 private:
  explicit Generation(std::unique_ptr<detail::GenerationData> data);
  std::unique_ptr<detail::GenerationData> data_;
  friend class Session;
  friend std::vector<std::optional<std::string>> next_together(const std::vector<Generation*>& generations);
};

// next() for several generations (of one model, each from its own session) in one batched step:
// every weight is read once for all of them, which is what makes decoding many sequences together
// faster than one after another (a server's concurrent requests). Each gets exactly what its own
// next() would return, whatever else is in the batch.
std::vector<std::optional<std::string>> next_together(const std::vector<Generation*>& generations);

class Session {
 public:
  explicit Session(const Model& model);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  const Model& model() const;

  // Progress of a long read: (done, total), in tokens (bytes for feed_file).
  using Progress = std::function<void(int64_t, int64_t)>;
  // Reads `tokens` after everything read so far, in pieces of at most 16384 tokens, calling
  // `progress` after each. Ids outside [0, vocab_size) are an error and nothing is read.
  void feed(const std::vector<int64_t>& tokens, const Progress& progress = {});
  void feed(std::string_view text, const Progress& progress = {});
  // Streams a text file (never loaded whole); progress in bytes.
  void feed_file(const std::string& path, const Progress& progress = {});

  // Reads `prompt` (may be empty once the session has read something), then samples up to
  // options.max_tokens tokens, each read back in. Returns the new text, up to a stop string.
  // `on_text` gets the text as it grows, piece by piece: held back while it may be the start of a stop
  // string, or ends in half a UTF-8 character.
  std::string generate(std::string_view prompt, const SampleOptions& options = {},
                       const std::function<void(std::string_view)>& on_text = {});
  // The same, pulled a token at a time. Reads `prompt` now.
  Generation start_generation(std::string_view prompt, const SampleOptions& options = {});
  // The same on token ids: `on_token` gets each new token and returns false to stop. Stop strings
  // are not used. Returns the new tokens.
  std::vector<int64_t> generate_tokens(const std::vector<int64_t>& prompt, const SampleOptions& options = {},
                                       const std::function<bool(int64_t)>& on_token = {});

  // (V) fp32 logits of the token after the last one read; undefined before the first read.
  torch::Tensor last_logits() const;
  int64_t position() const;     // tokens read
  int64_t state_bytes() const;  // bounded by the config, not by position()
  // A detached copy of the state (batch 1).
  State state() const;
  void clear();  // back to an empty memory

  // Where the session stands, held in memory: read a shared prefix once, then restore() it before
  // each continuation. Deep copies: the session and a snapshot never change each other.
  class Snapshot {
   public:
    int64_t position() const;

   private:
    std::shared_ptr<const detail::SnapshotData> data_;
    friend class Session;
  };
  Snapshot snapshot() const;
  void restore(const Snapshot& snapshot);  // one of this model's

  // State files (safetensors, written atomically) hold the state, the last logits and the model's
  // identity; load() refuses another model's, or a damaged file, and then leaves the session as it was.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  std::unique_ptr<detail::SessionData> data_;
  friend struct detail::Access;
};

}  // namespace infini
