// The engine behind infini::Session (include/infini/session.h): one sequence's state over a fixed
// model, for reading and generation, with the fused paths. feed() takes any number of tokens and reads them a segment at a time, so memory stays at one segment's cache plus
// the compressive memory however long the input (after llama.cpp's split of weights and memory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <memory>

#include "infer/decoder.h"
#include "infer/prefill.h"
#include "memory/state.h"
#include "model/transformer.h"
#include "util/thread_tuner.h"

namespace infini {

// A fingerprint of a model's config and weights (64-bit FNV-1a, hex): a state file made with
// another model is refused by it.
std::string model_identity(InfiniTransformer& model);

// Throws infini::Error naming the first id outside [0, vocab) and its position (counted from
// `position`, where the tokens would start).
void check_token_ids(const std::vector<int64_t>& tokens, int64_t vocab, int64_t position);

class SessionEngine {
 public:
  // One-token feeds go through the fused TokenDecoder when the model allows it (fp32 on the CPU), and
  // whole segments through the fused SegmentPrefill (a dense fp32 model on the CPU, without the XL
  // cache); `false` keeps those feeds on the general forward pass (for comparisons).
  // `identity` is model_identity(model) when the caller knows it (computing it hashes every weight).
  explicit SessionEngine(InfiniTransformer model, bool fused_decode = true, bool fused_prefill = true,
                         std::string identity = {});

  // Reads `tokens` after everything fed so far.
  void feed(const std::vector<int64_t>& tokens);
  // Reads tokens[k] into engines[k] (distinct sessions of one model): one batched decode step for
  // those on the fused decoder (TokenDecoder::step_batch), the same logits as feeding each alone.
  static void feed_batch(const std::vector<SessionEngine*>& engines, const std::vector<int64_t>& tokens);
  // (V) fp32 logits for the token after the last one fed; undefined before the first feed.
  const torch::Tensor& last_logits() const { return last_logits_; }
  int64_t position() const { return state_.tokens_seen(); }
  // model_identity() of the model, taken when the session was made.
  const std::string& identity() const { return identity_; }
  int64_t state_bytes() const { return state().bytes(); }
  // Valid until the next feed, load or clear (one-token feeds update the state lazily).
  const ModelState& state() const;
  bool fused_decode() const { return use_decoder_; }
  bool fused_prefill() const { return use_prefill_; }
  // The thread counts the fused paths run on, as measured so far (util/thread_tuner.h).
  const ThreadTuner& decode_threads() const { return decode_threads_; }
  const ThreadTuner& prefill_threads() const { return prefill_threads_; }
  void clear();

  // Where the session stands, held in memory: read a shared prefix once, then restore() it before
  // each continuation. Deep copies, so the session and the snapshot never change each other.
  struct Snapshot {
    ModelState state;
    torch::Tensor last_logits;  // (V)
  };
  Snapshot snapshot() const;
  void restore(const Snapshot& snapshot);

  // A state file is safetensors: the state tensors and the last logits, with metadata naming the
  // model (its identity) and the position. Written atomically; load() refuses another model's.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  // Hands the segment cache back from the decoder to state_, before anything else reads state_.
  void settle() const;
  TokenDecoder& decoder();
  SegmentPrefill& prefill();

  InfiniTransformer model_;
  std::string identity_;
  // state_'s segment cache is stale while the decoder holds it (decoding_); settle() brings it back.
  mutable ModelState state_;
  bool use_decoder_ = false, use_prefill_ = false;  // the fused paths serve this model
  std::unique_ptr<TokenDecoder> decoder_;            // made at first use
  std::unique_ptr<SegmentPrefill> prefill_;
  // How many threads the fused decoder and prefill run on: measured, since a busy neighbour makes
  // fewer threads faster (util/thread_tuner.h).
  ThreadTuner decode_threads_;
  ThreadTuner prefill_threads_;
  mutable bool decoding_ = false;
  torch::Tensor last_logits_;  // (V)
};

}  // namespace infini
