#include "bench/compare_bench.h"

#include <algorithm>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "bench/flops.h"
#include "bench/session_bench.h"
#include "infer/session.h"
#include "util/runtime.h"

namespace infini {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

nlohmann::json run_compare_bench(InfiniTransformer a, InfiniTransformer b, const CompareBenchOptions& o) {
  const std::array<InfiniTransformer, 2> models{a, b};
  const char* names[2] = {"a", "b"};
  // The same context for both: the given tokens, or pseudo-random ones.
  std::vector<int64_t> context = o.context_tokens;
  if (context.empty()) {
    context.resize(static_cast<size_t>(o.context));
    uint64_t x = kPseudoRandomSeed;
    const auto vocab = std::min(a->config().vocab_size, b->config().vocab_size);
    for (auto& t : context) t = next_pseudo_random_token(x, vocab);
  }
  std::vector<std::unique_ptr<SessionEngine>> sessions;
  for (int m = 0; m < 2; ++m) {
    sessions.push_back(std::make_unique<SessionEngine>(models[m]));
    if (!context.empty()) sessions.back()->feed(context);
    else sessions.back()->feed({0});
  }
  std::array<std::vector<double>, 2> decode, train;
  for (int64_t round = 0; round < o.rounds; ++round) {
    // A B in even rounds, B A in odd ones.
    for (int k = 0; k < 2; ++k) {
      const int m = round % 2 == 0 ? k : 1 - k;
      decode[m].push_back(decode_greedy(*sessions[m], o.decode_tokens) / static_cast<double>(o.decode_tokens));
      fmt::print(stderr, "bench --vs round {}/{}: {} decodes {:.1f} us/token\n", round + 1, o.rounds, names[m],
                 1e6 * decode[m].back());
      if (o.train) {
        const auto r = run_train_bench(models[m]->config(), o.train_bench);
        train[m].push_back(r.at("step_seconds_median").get<double>());
      }
    }
  }
  nlohmann::json out = {{"threads", at::get_num_threads()}, {"blas", loaded_blas()}, {"rounds", o.rounds},
                        {"context_tokens", static_cast<int64_t>(context.size())},
                        {"context", o.context_tokens.empty() ? "random" : "given"}, {"decode_tokens", o.decode_tokens}};
  for (int m = 0; m < 2; ++m) {
    const auto& c = models[m]->config();
    nlohmann::json j = {{"config", c.to_json()},
                        {"parameters", models[m]->parameter_count()},
                        {"decode_path", sessions[m]->fused_decode() ? "fused" : "general"},
                        {"decode_seconds_per_token", median(decode[m])},
                        {"decode_tokens_per_second", 1.0 / median(decode[m])},
                        {"forward_flops_per_token", forward_flops_per_token(c)},
                        {"train_flops_per_token", train_flops_per_token(c)}};
    if (o.train) {
      j["train_step_seconds"] = median(train[m]);
      j["train_tokens_per_second"] = static_cast<double>(o.train_bench.batch * o.train_bench.window) / median(train[m]);
    }
    out[names[m]] = j;
  }
  // How many times faster B is than A (> 1: B is faster), in time and in FLOPs.
  nlohmann::json speedup = {{"decode", median(decode[0]) / median(decode[1])},
                            {"forward_flops", forward_flops_per_token(a->config()) / forward_flops_per_token(b->config())}};
  if (o.train) speedup["train_step"] = median(train[0]) / median(train[1]);
  out["b_speedup"] = speedup;
  return out;
}

}  // namespace infini
