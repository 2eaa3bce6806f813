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
    // Text is printed as it grows. A SentencePiece byte piece may be half a character, which decodes
    // to U+FFFD until the rest arrives, so trailing U+FFFDs are held back until the end.
    std::vector<int64_t> continuation;
    std::string printed;
    const auto print_new = [&](const std::string& text) {
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
        std::fflush(stdout);
        printed = text;
      }
    };
    generate(model, prompt, f->sample, [&](int64_t token) {
      continuation.push_back(token);
      auto text = tokenizer->decode(continuation);
      static const std::string kReplacement = "\xEF\xBF\xBD";
      while (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0) text.resize(text.size() - 3);
      print_new(text);
    });
    print_new(tokenizer->decode(continuation));
    std::fputc('\n', stdout);
    return 0;
  };
}

}  // namespace infini::cli
