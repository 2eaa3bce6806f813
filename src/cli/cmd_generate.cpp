#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/open_model.h"
#include "data/text_stream.h"
#include "infer/generate.h"
#include "util/error.h"

namespace infini::cli {

Runner add_generate(CLI::App& app) {
  struct Flags {
    std::string model, prompt, prompt_file, state, save_state;
    std::vector<std::string> stops;
    int threads = 0;
    SampleOptions sample;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("generate", "continue a prompt (or a saved reading state) with a trained model");
  sub->add_option("--model", f->model, "model folder")->required();
  auto* prompt = sub->add_option("--prompt", f->prompt, "text to continue");
  auto* prompt_file = sub->add_option("--prompt-file", f->prompt_file, "read the text to continue from this file");
  prompt->excludes(prompt_file);
  sub->add_option("--state", f->state, "start from this state file (see 'infini read'); it is not modified");
  sub->add_option("--save-state", f->save_state, "write the state after the continuation here");
  sub->add_option("--tokens", f->sample.max_tokens, "most tokens to generate")->check(at_least(1));
  sub->add_option("--temperature", f->sample.temperature, "sampling temperature (0: greedy)")->check(at_least(0));
  sub->add_option("--top-k", f->sample.top_k, "sample among the k likeliest tokens (0: all)")->check(at_least(0));
  sub->add_option("--top-p", f->sample.top_p, "sample among the likeliest tokens holding this much probability")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--repetition-penalty", f->sample.repetition_penalty,
                  "divide the odds of tokens seen in the last --repetition-window by this (1: off)")
      ->check(positive());
  sub->add_option("--repetition-window", f->sample.repetition_window, "tokens the penalty looks back over")
      ->check(at_least(1));
  sub->add_option("--stop", f->stops, "stop once the continuation contains this text (repeatable)");
  sub->add_option("--seed", f->sample.seed, "random seed");
  add_threads_flag(*sub, f->threads);
  return [f]() {
    auto opened = open_model(f->model, f->state, f->threads);
    const auto& tokenizer = opened.tokenizer;
    auto& session = *opened.session;
    std::vector<int64_t> prompt;
    if (!f->prompt_file.empty()) {
      data::stream_tokens(f->prompt_file, *tokenizer,
                          [&](const std::vector<int64_t>& tokens, uint64_t) { session.feed(tokens); });
    } else if (!f->prompt.empty()) {
      prompt = tokenizer->encode(f->prompt, "--prompt");
    } else if (f->state.empty()) {
      throw Error("give --prompt, --prompt-file or --state: there is nothing to continue");
    }
    // Text is printed as it grows. A SentencePiece byte piece may be half a character, which decodes
    // to U+FFFD until the rest arrives, so trailing U+FFFDs are held back until the end; so is text
    // that may be the start of a stop string.
    std::vector<int64_t> continuation;
    std::string printed;
    const auto print_new = [&](const std::string& text) {
      if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
        std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
        std::fflush(stdout);
        printed = text;
      }
    };
    const auto t0 = std::chrono::steady_clock::now();
    generate(session, prompt, f->sample, [&](int64_t token) {
      continuation.push_back(token);
      auto text = tokenizer->decode(continuation);
      for (const auto& stop : f->stops) {
        const auto at = text.find(stop);
        if (!stop.empty() && at != std::string::npos) {
          print_new(text.substr(0, at));  // the stop string itself is not printed
          return false;
        }
      }
      static const std::string kReplacement = "\xEF\xBF\xBD";
      while (text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0) text.resize(text.size() - 3);
      // Text that may be the start of a stop string waits until it is known not to be one.
      size_t hold = 0;
      for (const auto& stop : f->stops)
        for (size_t k = std::min(stop.empty() ? 0 : stop.size() - 1, text.size()); k > hold; --k)
          if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
            hold = k;
            break;
          }
      print_new(text.substr(0, text.size() - hold));
      return true;
    });
    bool stopped = false;
    const auto final_text = tokenizer->decode(continuation);
    for (const auto& stop : f->stops) stopped |= !stop.empty() && final_text.find(stop) != std::string::npos;
    if (!stopped) print_new(final_text);
    std::fputc('\n', stdout);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "infini generate: {} tokens in {:.2f} s ({:.0f} tok/s, prompt included), position {}\n",
               continuation.size(), seconds, static_cast<double>(continuation.size()) / std::max(seconds, 1e-9),
               session.position());
    if (!f->save_state.empty()) session.save(f->save_state);
    return 0;
  };
}

}  // namespace infini::cli
