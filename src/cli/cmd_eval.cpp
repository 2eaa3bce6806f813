#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "infini/evaluate.h"
#include "infini/runtime.h"

namespace infini::cli {

namespace {

// Loss by segment index in power-of-two groups (0, 1, 2-3, 4-7, ...), so a long document fits a screen.
void print_table(const nlohmann::json& r, const std::string& model) {
  const auto tokens = r.at("tokens").get<int64_t>();
  const auto seconds = r.at("seconds").get<double>();
  fmt::print(stderr, "model {} ({}): {} documents, {} tokens, {} bytes, {:.1f} s ({:.0f} tok/s)\n", model,
             r.at("memory").get<std::string>(), r.at("documents").get<int64_t>(), tokens, r.at("bytes").get<int64_t>(),
             seconds, seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0);
  if (r.at("forget_memory").get<bool>())
    fmt::print(stderr, "memory forgotten at every segment boundary (--forget-memory)\n");
  fmt::print(stderr, "loss {:.4f} nats/token | perplexity {:.3f} | {:.4f} bits/byte | state {} bytes\n",
             r.at("loss").get<double>(), r.at("perplexity").get<double>(), r.at("bits_per_byte").get<double>(),
             r.at("state_bytes").get<int64_t>());
  if (r.contains("routing")) {
    fmt::print(stderr, "routing {}: {:.1f}% of tokens through the routed blocks", r.at("routing").get<std::string>(),
               100 * r.at("routed_share").get<double>());
    if (r.contains("router_accuracy"))
      fmt::print(stderr, " | causal decisions matching top-k: router {:.1f}%, predictor {:.1f}%",
                 100 * r.at("router_accuracy").get<double>(), 100 * r.at("predictor_accuracy").get<double>());
    fmt::print(stderr, "\n");
  }
  // (tokens, loss sum) by segment index; indices without tokens are absent from the JSON.
  std::vector<std::pair<int64_t, double>> by_segment;
  for (const auto& row : r.at("loss_by_segment")) {
    const auto i = row.at("segment").get<size_t>();
    if (by_segment.size() <= i) by_segment.resize(i + 1);
    const auto n = row.at("tokens").get<int64_t>();
    by_segment[i] = {n, row.at("loss").get<double>() * static_cast<double>(n)};
  }
  fmt::print(stderr, "{:>15}  {:>10}  {:>8}\n", "segments", "tokens", "loss");
  for (size_t lo = 0; lo < by_segment.size(); lo = lo == 0 ? 1 : lo * 2) {
    const size_t hi = std::min(by_segment.size(), lo == 0 ? size_t{1} : lo * 2);
    int64_t n = 0;
    double sum = 0;
    for (size_t i = lo; i < hi; ++i) n += by_segment[i].first, sum += by_segment[i].second;
    const auto label = hi - lo == 1 ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi - 1);
    if (n > 0) fmt::print(stderr, "{:>15}  {:>10}  {:>8.4f}\n", label, n, sum / static_cast<double>(n));
  }
}

}  // namespace

Runner add_eval(CLI::App& app) {
  struct Flags {
    std::string model, data;
    EvalOptions options;
    bool json = false;
    int threads = 0;
    std::string routing = "causal";
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "eval", "loss, perplexity, bits per byte and loss by segment index over whole documents, memory carried through each");
  sub->add_option("--model", f->model, "model folder")->required();
  sub->add_option("--data", f->data,
                  "documents: a file, a folder of .txt/.tex files, or a PG19-style folder (then --split)")
      ->required();
  sub->add_option("--split", f->options.split, "subfolder of a PG19-style folder (default: test/ if present, else validation/)");
  sub->add_option("--max-documents", f->options.max_documents, "documents to read (0: all)")->check(at_least(0));
  sub->add_option("--max-tokens", f->options.max_tokens, "tokens read per document (0: the whole document)")
      ->check(at_least(0));
  sub->add_flag("--forget-memory", f->options.forget_memory,
                "reset the memory and XL cache at every segment boundary (an ablation: what the memory adds)");
  sub->add_option("--routing", f->routing,
                  "routed (Mixture-of-Depths) models: causal (each token decided on its own, as when sampling) or "
                  "topk (the training objective's selection, which sees the whole segment)")
      ->check(CLI::IsMember({"causal", "topk"}));
  sub->add_flag("--json", f->json, "print the results as one JSON object on stdout");
  add_threads_flag(*sub, f->threads);
  return [f]() {
    set_threads(f->threads);
    f->options.routing = f->routing == "topk" ? Routing::TopK : Routing::Causal;
    const auto model = Model::load(f->model);
    const auto result = evaluate(model, f->data, f->options, [&](int64_t done, int64_t tokens) {
      fmt::print(stderr, "eval: {} documents, {} tokens\n", done, tokens);
    });
    print_table(result, f->model);
    if (f->json) fmt::print("{}\n", result.dump());
    return 0;
  };
}

}  // namespace infini::cli
