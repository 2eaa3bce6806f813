#include "bench/session_bench.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "bench/flops.h"
#include "infer/session.h"
#include "util/peak_rss.h"
#include "util/runtime.h"

namespace infini {

int64_t next_pseudo_random_token(uint64_t& state, int64_t vocab) {
  state ^= state << 13, state ^= state >> 7, state ^= state << 17;
  return static_cast<int64_t>(state % static_cast<uint64_t>(vocab));
}

double decode_greedy(SessionEngine& session, int64_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const auto& logits = session.last_logits();  // (V) fp32
    const float* l = logits.data_ptr<float>();
    session.feed({std::max_element(l, l + logits.numel()) - l});
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

namespace {

// Reads `n` pseudo-random tokens, generated a block at a time so the input itself takes no memory.
void read_tokens(SessionEngine& session, int64_t n, int64_t vocab) {
  std::vector<int64_t> block;
  uint64_t x = kPseudoRandomSeed;
  for (int64_t done = 0; done < n;) {
    const int64_t len = std::min<int64_t>(65536, n - done);
    block.resize(static_cast<size_t>(len));
    for (auto& t : block) t = next_pseudo_random_token(x, vocab);
    session.feed(block);
    done += len;
  }
}

// `n` sessions restored from where `from` stands decode at once, each on its own thread.
nlohmann::json decode_concurrently(const InfiniTransformer& model, const SessionEngine& from, int64_t n,
                                   const SessionBenchOptions& o) {
  const auto snapshot = from.snapshot();
  std::vector<std::unique_ptr<SessionEngine>> sessions;
  for (int64_t i = 0; i < n; ++i) {
    sessions.push_back(std::make_unique<SessionEngine>(model, o.fused_decode, o.fused_prefill));
    sessions.back()->restore(snapshot);
  }
  std::vector<double> seconds(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sessions.size(); ++i)
    threads.emplace_back([&, i] { seconds[i] = decode_greedy(*sessions[i], o.decode_tokens); });
  for (auto& t : threads) t.join();
  std::vector<double> rates;
  std::vector<int> chosen;
  for (size_t i = 0; i < sessions.size(); ++i) {
    rates.push_back(static_cast<double>(o.decode_tokens) / seconds[i]);
    chosen.push_back(sessions[i]->decode_threads().chosen());
  }
  auto sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  double total = 0;
  for (const double r : rates) total += r;
  fmt::print(stderr, "bench decode, {} sessions at once: {:.0f} tok/s per session (median), {:.0f} in all\n", n,
             sorted[sorted.size() / 2], total);
  return {{"sessions", n},
          {"tokens_per_second_per_session", rates},
          {"median_tokens_per_second_per_session", sorted[sorted.size() / 2]},
          {"total_tokens_per_second", total},
          {"threads_chosen", chosen}};
}

}  // namespace

nlohmann::json run_session_bench(InfiniTransformer model, const SessionBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  const auto vocab = model->config().vocab_size;
  nlohmann::json prefill = nlohmann::json::array();
  std::unique_ptr<SessionEngine> longest;
  int64_t longest_length = 0;
  // Prefill as MFU: the model's forward FLOPs per token (bench/flops.h, the training MFU's count) at
  // the read rate, over this machine's matmul peak measured now, so runs at other hours compare.
  const double peak = measure_matmul_peak();
  const double flops_per_token = forward_flops_per_token(model->config());
  for (const auto length : o.lengths) {
    longest.reset();  // one session at a time, so each peak is that read's own
    auto session = std::make_unique<SessionEngine>(model, o.fused_decode, o.fused_prefill);
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
    const double mfu = static_cast<double>(length) / s * flops_per_token / peak;
    prefill.push_back({{"path", session->fused_prefill() ? "fused" : "general"},
                       {"tokens", length},
                       {"seconds", s},
                       {"tokens_per_second", static_cast<double>(length) / s},
                       {"mfu", mfu},
                       {"peak_rss_bytes", rss.peak()},
                       {"threads_chosen", session->prefill_threads().chosen()},
                       {"state_bytes", session->state_bytes()},
                       {"memory_finite", finite},
                       {"z_max", z_max}});
    fmt::print(stderr, "bench read ({}) {} tokens: {:.0f} tok/s, MFU {:.1f}%, peak RSS {:.1f} MiB\n",
               session->fused_prefill() ? "fused" : "general", length, static_cast<double>(length) / s,
               100 * mfu,
               static_cast<double>(rss.peak()) / (1 << 20));
    longest = std::move(session);
    longest_length = length;
  }
  nlohmann::json decode;
  if (longest && o.decode_tokens > 0) {
    const double s = decode_greedy(*longest, o.decode_tokens);
    decode = {{"path", longest->fused_decode() ? "fused" : "general"},
              {"context_tokens", longest_length},
              {"tokens", o.decode_tokens},
              {"tokens_per_second", static_cast<double>(o.decode_tokens) / s},
              {"threads_chosen", longest->decode_threads().chosen()},
              {"thread_probes", longest->decode_threads().probes()}};
    fmt::print(stderr, "bench decode ({}) after {} tokens: {:.0f} tok/s\n",
               longest->fused_decode() ? "fused" : "general", longest_length,
               static_cast<double>(o.decode_tokens) / s);
  }
  nlohmann::json concurrent = nlohmann::json::array();
  if (longest && o.decode_tokens > 0)
    for (const auto n : o.concurrent_sessions) concurrent.push_back(decode_concurrently(model, *longest, n, o));
  return {{"config", model->config().to_json()},
          {"threads", at::get_num_threads()},
          {"blas", loaded_blas()},
          {"matmul_peak_flops", peak},
          {"forward_flops_per_token", flops_per_token},
          {"prefill", prefill},
          {"decode", decode},
          {"concurrent_decode", concurrent}};
}

}  // namespace infini
