#include <memory>

#include <fmt/format.h>

#include "bench/busy_neighbours.h"
#include "bench/compare_bench.h"
#include "bench/session_bench.h"
#include "bench/train_bench.h"
#include "cli/commands.h"
#include "data/text_stream.h"
#include "data/tokenizer.h"
#include "io/model_dir.h"
#include "infini/config.h"
#include "infini/error.h"
#include "util/runtime.h"

namespace infini::cli {

namespace {

// Each throughput of a busy measurement as a share of the same figure measured first.
nlohmann::json busy_shares(const nlohmann::json& first, const nlohmann::json& busy) {
  nlohmann::json share;
  const auto ratio = [](const nlohmann::json& a, const nlohmann::json& b, const char* key) {
    return b.at(key).get<double>() / a.at(key).get<double>();
  };
  if (first.contains("train_tokens_per_second")) share["train"] = ratio(first, busy, "train_tokens_per_second");
  if (first.contains("prefill"))
    for (size_t i = 0; i < first["prefill"].size(); ++i)
      share["prefill_" + std::to_string(first["prefill"][i]["tokens"].get<int64_t>())] =
          ratio(first["prefill"][i], busy["prefill"][i], "tokens_per_second");
  if (first.contains("decode") && !first["decode"].is_null())
    share["decode"] = ratio(first["decode"], busy["decode"], "tokens_per_second");
  if (first.contains("concurrent_decode"))
    for (size_t i = 0; i < first["concurrent_decode"].size(); ++i)
      share["decode_" + std::to_string(first["concurrent_decode"][i]["sessions"].get<int64_t>()) + "_sessions"] =
          ratio(first["concurrent_decode"][i], busy["concurrent_decode"][i], "median_tokens_per_second_per_session");
  return share;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  struct Flags {
    std::string config;
    bool json = false;
    int threads = 0;
    int busy = 0, nice = 0;
    TrainBenchOptions bench;
    std::string model, vs, context_file;
    SessionBenchOptions session;
    CompareBenchOptions compare;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "bench", "measure training tokens/s and MFU for a config, or (--model) reading and decoding speed and memory");
  sub->add_option("--config", f->config, "model config JSON (default: the reference config)");
  sub->add_flag("--json", f->json, "print the figures as one JSON object");
  sub->add_option("--batch", f->bench.batch, "sequences per step")->check(at_least(1));
  sub->add_option("--window", f->bench.window, "tokens per sequence")->check(at_least(1));
  sub->add_option("--steps", f->bench.steps, "timed steps")->check(at_least(1));
  sub->add_option("--warmup-steps", f->bench.warmup_steps, "untimed steps first")
      ->check(at_least(0));
  sub->add_option("--bptt-segments", f->bench.bptt_segments, "detach the memory every k segments (0: never)")
      ->check(at_least(0));
  sub->add_flag("--autocast-bf16", f->bench.autocast_bf16, "bf16 matmuls under CPU autocast (M and z stay fp32)");
  sub->add_option("--profile", f->bench.profile_path, "write a Chrome trace of the timed steps here");
  auto* model = sub->add_option("--model", f->model,
                                 "measure a session of this model folder instead: prefill tokens/s, MFU (against "
                                 "the matmul peak measured in the same run) and peak RSS per --lengths, then "
                                 "decode tokens/s");
  sub->add_option("--lengths", f->session.lengths, "tokens read per prefill measurement (comma-separated)")
      ->delimiter(',')->check(at_least(1))->needs(model);
  sub->add_option("--decode-tokens", f->session.decode_tokens, "tokens generated after the longest read (with --vs: per model and round)")
      ->check(at_least(0))->needs(model);
  sub->add_flag("--general-decode", [f](int64_t) { f->session.fused_decode = false; },
                "decode through the general forward pass instead of the fused one-token step (for comparison)")
      ->needs(model);
  sub->add_flag("--general-prefill", [f](int64_t) { f->session.fused_prefill = false; },
                "read whole segments through the general forward pass instead of the fused segment prefill (for "
                "comparison)")
      ->needs(model);
  auto* vs = sub->add_option("--vs", f->vs,
                              "compare --model (A) with this model folder (B) side by side in alternating rounds: "
                              "decode time per token, training step time, FLOPs per token")
                  ->needs(model);
  sub->add_option("--context", f->compare.context, "with --vs: tokens each model reads before decoding")
      ->check(at_least(0))->needs(vs);
  sub->add_option("--context-file", f->context_file,
                  "with --vs: read the first --context tokens of this text file instead of random tokens")
      ->check(CLI::ExistingFile)->needs(vs);
  sub->add_option("--rounds", f->compare.rounds, "with --vs: alternating rounds (figures are their medians)")
      ->check(at_least(1))->needs(vs);
  sub->add_flag("--no-train", [f](int64_t) { f->compare.train = false; }, "with --vs: decode only")->needs(vs);
  sub->add_option("--concurrent-sessions", f->session.concurrent_sessions,
                  "then decode --decode-tokens in this many sessions at once, each on its own thread "
                  "(comma-separated counts)")
      ->delimiter(',')->check(at_least(1))->needs(model);
  auto* busy = sub->add_option("--busy-neighbours", f->busy,
                               "measure twice, on the machine as it is and then beside this many processes "
                               "that each keep a CPU busy, and report each figure's busy share of the first")
                   ->check(at_least(0));
  sub->add_option("--neighbour-nice", f->nice, "the busy neighbours' nice level (0: normal priority, 19: lowest)")
      ->check(CLI::Range(0, 19))->needs(busy);
  add_threads_flag(*sub, f->threads);
  return [f]() {
    set_threads(f->threads);
    if (f->busy > 0 && !f->vs.empty()) throw Error("--busy-neighbours: not with --vs");
    if (!f->vs.empty()) {
      f->compare.decode_tokens = f->session.decode_tokens;
      f->compare.train_bench = f->bench;
      auto a = io::load_model(f->model), b = io::load_model(f->vs);
      if (!f->context_file.empty()) {
        const auto tokenizer = data::load_tokenizer(f->model);
        if (tokenizer->vocab_size() > b->config().vocab_size)
          throw Error(fmt::format("--vs {}: its vocabulary ({}) is smaller than {}'s tokenizer's ({})", f->vs,
                                  b->config().vocab_size, f->model, tokenizer->vocab_size()));
        auto& tokens = f->compare.context_tokens;
        data::stream_tokens(f->context_file, *tokenizer, [&](const std::vector<int64_t>& piece, uint64_t) {
          const auto wanted = static_cast<size_t>(f->compare.context);
          if (tokens.size() >= wanted) return;
          const auto take = std::min(piece.size(), wanted - tokens.size());
          tokens.insert(tokens.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(take));
        });
        if (tokens.empty()) throw Error(fmt::format("--context-file {}: no tokens in it", f->context_file));
      }
      const auto r = run_compare_bench(a, b, f->compare);
      fmt::print("{}\n", r.dump(f->json ? -1 : 2));
      return 0;
    }
    const bool train = f->model.empty();
    const ModelConfig config = !train || f->config.empty() ? ModelConfig{} : ModelConfig::from_file(f->config);
    InfiniTransformer loaded{nullptr};
    if (!train) loaded = io::load_model(f->model);
    const auto measure = [&] { return train ? run_train_bench(config, f->bench) : run_session_bench(loaded, f->session); };
    if (f->busy > 0) {
      auto idle = measure();
      nlohmann::json busy;
      {
        fmt::print(stderr, "bench: starting {} busy neighbour{} at nice {}\n", f->busy, f->busy == 1 ? "" : "s",
                   f->nice);
        const BusyNeighbours neighbours(f->busy, f->nice);
        busy = measure();
      }
      const nlohmann::json r = {{"busy_neighbours", f->busy},
                                {"neighbour_nice", f->nice},
                                {"share", busy_shares(idle, busy)},
                                {"first", std::move(idle)},
                                {"busy", std::move(busy)}};
      fmt::print("{}\n", r.dump(f->json ? -1 : 2));
      return 0;
    }
    const auto r = measure();
    if (!train || f->json) {
      fmt::print("{}\n", r.dump(f->json ? -1 : 2));
      return 0;
    }
    fmt::print("parameters        {}\n", r["parameters"].get<int64_t>());
    fmt::print("threads           {}\n", r["threads"].get<int>());
    fmt::print("train tokens/s    {:.0f}\n", r["train_tokens_per_second"].get<double>());
    fmt::print("matmul peak       {:.1f} GFLOP/s\n", r["matmul_peak_flops"].get<double>() / 1e9);
    fmt::print("MFU               {:.1f}%\n", 100 * r["mfu"].get<double>());
    return 0;
  };
}

}  // namespace infini::cli
