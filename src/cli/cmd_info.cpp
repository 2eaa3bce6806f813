#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "eval/footprint.h"
#include "infini/model.h"
#include "infini/runtime.h"
#include "infini/session.h"

namespace infini::cli {

Runner add_info(CLI::App& app) {
  struct Flags {
    std::string model, config;
    FootprintOptions footprint;
    int64_t segments = 4;
    bool json = false;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "info", "parameters, the memory footprint of long-context methods for this config (the paper's Table 1), "
              "and the measured size of a session's state");
  auto* model = sub->add_option("--model", f->model, "model folder");
  auto* config = sub->add_option("--config", f->config, "model config JSON (weights initialised at random)");
  model->excludes(config);
  auto* knn_tokens =
      sub->add_option("--knn-tokens", f->footprint.knn_tokens,
                      "Memorizing Transformers' kNN memory, in tokens (a knn model: its own knn_tokens)")
          ->check(at_least(1));
  auto* rmt_p = sub->add_option("--rmt-p", f->footprint.rmt_p, "RMT's memory vectors (an rmt model: its own rmt_tokens)")
                   ->check(at_least(1));
  sub->add_option("--segments", f->segments, "segments read before measuring the state")->check(at_least(1));
  sub->add_flag("--json", f->json, "print one JSON object");
  add_threads_flag(*sub, f->threads);
  return [f, model, config, knn_tokens, rmt_p]() {
    if (model->count() + config->count() == 0) throw CLI::RequiredError("--model or --config");
    set_threads(f->threads);
    // A config alone is measured with the byte tokenizer's 256 ids: the state does not depend on the
    // vocabulary, and the parameters are counted from the config as given.
    auto given = f->model.empty() ? ModelConfig::from_file(f->config) : ModelConfig();
    const double config_parameters = given.parameter_count();
    given.vocab_size = 256;
    const auto m = f->model.empty() ? Model(given) : Model::load(f->model);
    const auto parameters = f->model.empty() ? static_cast<int64_t>(config_parameters) : m.parameter_count();
    const auto& c = m.config();
    if (c.memory == MemoryMode::Knn && knn_tokens->count() == 0) f->footprint.knn_tokens = c.knn_tokens;
    if (c.memory == MemoryMode::Rmt && rmt_p->count() == 0) f->footprint.rmt_p = c.rmt_tokens;
    // The state after whole segments (memory only), then with a segment cache one token short of full.
    Session session(m);
    std::vector<int64_t> tokens(static_cast<size_t>(c.segment_len));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int64_t>((i * 7 + 1) % c.vocab_size);
    for (int64_t s = 0; s < f->segments; ++s) session.feed(tokens);
    const auto at_boundary = session.state_bytes();
    session.feed({tokens.begin(), tokens.end() - 1});
    const auto largest = session.state_bytes();
    const auto table = footprints(c, f->footprint);
    const double infini = table.back().floats;

    nlohmann::json methods = nlohmann::json::array();
    for (const auto& fp : table)
      methods.push_back({{"method", fp.method}, {"floats", fp.floats}, {"formula", fp.formula},
                         {"compression_vs_infini", fp.floats / infini}});
    // A knn model's state grows until its kNN memory is full: what it holds after the segments read,
    // and its size when full (the rest of the state is as measured).
    const int64_t element = c.dtype == torch::kFloat32 ? 4 : c.dtype == torch::kFloat64 ? 8 : 2;
    const int64_t knn_held = c.memory == MemoryMode::Knn ? std::min(c.knn_tokens, f->segments * c.segment_len) : 0;
    const int64_t knn_row_bytes = c.n_heads * (c.d_key + c.d_value) * element;
    nlohmann::json j = {{"parameters", parameters},
                              {"memory", c.to_json().at("memory")},
                              {"knn_tokens", f->footprint.knn_tokens},
                              {"rmt_p", f->footprint.rmt_p},
                              {"footprints", methods},
                              {"measured", {{"tokens_read", session.position()},
                                            {"state_bytes_at_segment_boundary", at_boundary},
                                            {"state_bytes_largest", largest}}}};
    if (c.memory == MemoryMode::Knn)
      j["knn"] = {{"knn_tokens", c.knn_tokens},
                  {"knn_top_k", c.knn_top_k},
                  {"knn_block", c.knn_block()},
                  {"tokens_held_when_measured", knn_held},
                  {"memory_bytes_full", c.knn_tokens * knn_row_bytes},
                  {"state_bytes_at_segment_boundary_full", at_boundary + (c.knn_tokens - knn_held) * knn_row_bytes}};
    if (f->json) {
      fmt::print("{}\n", j.dump());
      return 0;
    }
    fmt::print("parameters  {}\n", parameters);
    fmt::print("memory      {} (segment {} tokens, {} layers, {} heads x {}/{})\n", j["memory"].get<std::string>(),
               c.segment_len, c.n_layers, c.n_heads, c.d_key, c.d_value);
    fmt::print("\nfootprint (floats; Table 1 of the paper; kNN memory {} tokens, RMT p = {})\n",
               f->footprint.knn_tokens, f->footprint.rmt_p);
    for (const auto& fp : table)
      fmt::print("  {:<24} {:>14.0f}  {:>8.1f}x Infini  {}\n", fp.method, fp.floats, fp.floats / infini, fp.formula);
    fmt::print("\nmeasured state after {} tokens: {} bytes at a segment boundary, {} with the segment cache "
               "one token short of full\n",
               session.position(), at_boundary, largest);
    if (c.memory == MemoryMode::Knn)
      fmt::print("kNN memory (block {}, top {}): {} of its {} tokens held then; full, it takes {} bytes, and the state "
                 "at a segment boundary {}\n",
                 c.knn_block(), c.knn_top_k, knn_held, c.knn_tokens, j["knn"]["memory_bytes_full"].get<int64_t>(),
                 j["knn"]["state_bytes_at_segment_boundary_full"].get<int64_t>());
    return 0;
  };
}

}  // namespace infini::cli
