#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "eval/evaluate.h"
#include "io/model_dir.h"
#include "util/runtime.h"

namespace infini::cli {

namespace {

// Loss by segment index in power-of-two groups (0, 1, 2-3, 4-7, ...), so a long document fits a screen.
void print_table(const EvalResult& r, const std::string& model, const std::string& memory) {
  fmt::print(stderr, "model {} ({}): {} documents, {} tokens, {} bytes, {:.1f} s ({:.0f} tok/s)\n", model, memory,
             r.documents.size(), r.tokens(), r.bytes(), r.seconds,
             r.seconds > 0 ? static_cast<double>(r.tokens()) / r.seconds : 0.0);
  if (r.forget_memory) fmt::print(stderr, "memory forgotten at every segment boundary (--forget-memory)\n");
  fmt::print(stderr, "loss {:.4f} nats/token | perplexity {:.3f} | {:.4f} bits/byte | state {} bytes\n", r.loss(),
             std::exp(r.loss()), r.bits_per_byte(), r.state_bytes);
  if (r.route_stats.decisions > 0) {
    const auto j = r.routing_json();
    fmt::print(stderr, "routing {}: {:.1f}% of tokens through the routed blocks", j.at("routing").get<std::string>(),
               100 * j.at("routed_share").get<double>());
    if (j.contains("router_accuracy"))
      fmt::print(stderr, " | causal decisions matching top-k: router {:.1f}%, predictor {:.1f}%",
                 100 * j.at("router_accuracy").get<double>(), 100 * j.at("predictor_accuracy").get<double>());
    fmt::print(stderr, "\n");
  }
  fmt::print(stderr, "{:>15}  {:>10}  {:>8}\n", "segments", "tokens", "loss");
  for (size_t lo = 0; lo < r.segment_tokens.size(); lo = lo == 0 ? 1 : lo * 2) {
    const size_t hi = std::min(r.segment_tokens.size(), lo == 0 ? size_t{1} : lo * 2);
    int64_t n = 0;
    double sum = 0;
    for (size_t i = lo; i < hi; ++i) n += r.segment_tokens[i], sum += r.segment_loss_sum[i];
    const auto label = hi - lo == 1 ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi - 1);
    if (n > 0) fmt::print(stderr, "{:>15}  {:>10}  {:>8.4f}\n", label, n, sum / static_cast<double>(n));
  }
}

}  // namespace

Runner add_eval(CLI::App& app) {
  struct Flags {
    std::string model, data, split;
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
  sub->add_option("--split", f->split, "subfolder of a PG19-style folder (default: test/ if present, else validation/)");
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
    configure_runtime(f->threads);
    f->options.routing = f->routing == "topk" ? Routing::TopK : Routing::Causal;
    auto model = io::load_model(f->model);
    const auto tokenizer = data::load_tokenizer(f->model);
    const auto documents = eval_documents(f->data, f->split);
    const auto memory = model->config().to_json().at("memory").get<std::string>();
    const auto result = evaluate(model, *tokenizer, documents, f->options, [&](size_t done, int64_t tokens) {
      fmt::print(stderr, "eval: {}/{} documents, {} tokens\n", done, documents.size(), tokens);
    });
    print_table(result, f->model, memory);
    if (f->json) {
      auto j = result.to_json();
      j["model"] = f->model;
      j["memory"] = memory;
      j["data"] = f->data;
      j["config"] = model->config().to_json();
      fmt::print("{}\n", j.dump());
    }
    return 0;
  };
}

}  // namespace infini::cli
