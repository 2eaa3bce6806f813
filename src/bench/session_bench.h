// `infini bench --model DIR`: how fast a session reads (prefill) and generates (decode), and how
// much memory reading takes as the input grows.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/session.h"
#include "model/transformer.h"

namespace infini {

struct SessionBenchOptions {
  std::vector<int64_t> lengths = {16384, 131072, 1048576};  // tokens read, each by a fresh session
  int64_t decode_tokens = 256;  // generated after the longest read
  bool fused_decode = true;     // false: decode through the general forward pass, for comparison
  bool fused_prefill = true;    // false: read whole segments through the general forward pass too
  // Then, per entry N: N sessions, each from the longest read's state, decode decode_tokens at once
  // on N threads of this process (as a server's would).
  std::vector<int64_t> concurrent_sessions;
};

// The next of a fixed pseudo-random sequence of tokens in [0, vocab) (xorshift64 over `state`, which
// starts at kPseudoRandomSeed): benchmark input that takes no memory to hold.
constexpr uint64_t kPseudoRandomSeed = 0x9E3779B97F4A7C15ull;
int64_t next_pseudo_random_token(uint64_t& state, int64_t vocab);

// Generates `n` tokens greedily from where `session` stands (a token's logits read straight from the
// fp32 buffer, no tensor op per token); returns the seconds taken.
double decode_greedy(SessionEngine& session, int64_t n);

// Per length: tokens/s and the peak resident memory while reading (sampled every 10 ms). Then decode
// tokens/s with the longest input as context, alone and per concurrent_sessions.
nlohmann::json run_session_bench(InfiniTransformer model, const SessionBenchOptions& options);

}  // namespace infini
