#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "infer/generate.h"
#include "io/model_dir.h"
#include "util/error.h"
#include "util/runtime.h"

namespace infini::cli {

Runner add_generate(CLI::App& app) {
  struct Flags {
    std::string model, prompt;
    int threads = 0;
    SampleOptions sample;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("generate", "continue a prompt with a trained model");
  sub->add_option("--model", f->model, "model folder")->required();
  sub->add_option("--prompt", f->prompt, "text to continue")->required();
  sub->add_option("--tokens", f->sample.max_tokens, "tokens to generate")->check(at_least(1));
  sub->add_option("--temperature", f->sample.temperature, "sampling temperature (0: greedy)")
      ->check(at_least(0));
  sub->add_option("--top-k", f->sample.top_k, "sample among the k likeliest tokens (0: all)")
      ->check(at_least(0));
  sub->add_option("--seed", f->sample.seed, "random seed");
  add_threads_flag(*sub, f->threads);
  return [f]() {
    configure_runtime(f->threads);
    auto model = io::load_model(f->model);
    if (model->config().vocab_size < 256)
      throw Error(fmt::format("{}: vocab_size {} is too small for byte-level text", f->model,
                              model->config().vocab_size));
    if (f->prompt.empty()) throw Error("--prompt is empty; give at least one character");
    std::vector<int64_t> prompt(f->prompt.begin(), f->prompt.end());
    for (auto& t : prompt) t &= 0xff;
    generate(model, prompt, f->sample, [](int64_t token) {
      std::fputc(static_cast<int>(token & 0xff), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    return 0;
  };
}

}  // namespace infini::cli
