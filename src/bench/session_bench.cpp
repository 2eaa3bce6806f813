#include "bench/session_bench.h"

#include <algorithm>
#include <chrono>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "infer/session.h"
#include "util/peak_rss.h"
#include "util/runtime.h"

namespace infini {

namespace {

// Reads `n` pseudo-random tokens, generated a block at a time so the input itself takes no memory.
void read_tokens(Session& session, int64_t n, int64_t vocab) {
  std::vector<int64_t> block;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int64_t done = 0; done < n;) {
    const int64_t len = std::min<int64_t>(65536, n - done);
    block.resize(static_cast<size_t>(len));
    for (auto& t : block) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      t = static_cast<int64_t>(x % static_cast<uint64_t>(vocab));
    }
    session.feed(block);
    done += len;
  }
}

}  // namespace

nlohmann::json run_session_bench(InfiniTransformer model, const SessionBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  const auto vocab = model->config().vocab_size;
  nlohmann::json prefill = nlohmann::json::array();
  std::unique_ptr<Session> longest;
  int64_t longest_length = 0;
  for (const auto length : o.lengths) {
    longest.reset();  // one session at a time, so each peak is that read's own
    auto session = std::make_unique<Session>(model, o.fused_decode);
    PeakRss rss;
    const auto t0 = clock::now();
    read_tokens(*session, length, vocab);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    const auto z_max = [&] {
      double m = 0;
      for (const auto& l : session->state().layers())
        if (l.z.defined()) m = std::max(m, l.z.abs().max().item<double>());
      return m;
    }();
    bool finite = true;
    for (const auto& l : session->state().layers())
      if (l.M.defined()) finite = finite && torch::isfinite(l.M).all().item<bool>() && torch::isfinite(l.z).all().item<bool>();
    prefill.push_back({{"tokens", length},
                       {"seconds", s},
                       {"tokens_per_second", static_cast<double>(length) / s},
                       {"peak_rss_bytes", rss.peak()},
                       {"state_bytes", session->state_bytes()},
                       {"memory_finite", finite},
                       {"z_max", z_max}});
    fmt::print(stderr, "bench read {} tokens: {:.0f} tok/s, peak RSS {:.1f} MiB\n", length,
               static_cast<double>(length) / s, static_cast<double>(rss.peak()) / (1 << 20));
    longest = std::move(session);
    longest_length = length;
  }
  nlohmann::json decode;
  if (longest && o.decode_tokens > 0) {
    const auto t0 = clock::now();
    for (int64_t i = 0; i < o.decode_tokens; ++i) {
      const auto& logits = longest->last_logits();  // (V) fp32: greedy, without a tensor op per token
      const float* l = logits.data_ptr<float>();
      longest->feed({std::max_element(l, l + logits.numel()) - l});
    }
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    decode = {{"path", longest->fused_decode() ? "fused" : "general"},
              {"context_tokens", longest_length},
              {"tokens", o.decode_tokens},
              {"tokens_per_second", static_cast<double>(o.decode_tokens) / s}};
    fmt::print(stderr, "bench decode ({}) after {} tokens: {:.0f} tok/s\n",
               longest->fused_decode() ? "fused" : "general", longest_length,
               static_cast<double>(o.decode_tokens) / s);
  }
  return {{"config", model->config().to_json()},
          {"threads", at::get_num_threads()},
          {"blas", loaded_blas()},
          {"prefill", prefill},
          {"decode", decode}};
}

}  // namespace infini
