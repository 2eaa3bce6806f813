#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "data/tokenizer.h"
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
    const auto tokenizer = data::load_tokenizer(f->model);
    if (f->prompt.empty()) throw Error("--prompt is empty; give at least one character");
    const auto prompt = tokenizer->encode(f->prompt, "--prompt");
    // Text is printed as it grows; a SentencePiece piece may only make sense with the next one, so
    // the whole continuation is decoded each time and only its new tail is printed.
    std::vector<int64_t> continuation;
    std::string printed;
    generate(model, prompt, f->sample, [&](int64_t token) {
      continuation.push_back(token);
      const auto text = tokenizer->decode(continuation);
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
        std::fflush(stdout);
        printed = text;
      }
    });
    std::fputc('\n', stdout);
    return 0;
  };
}

}  // namespace infini::cli
