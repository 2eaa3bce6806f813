#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/open_model.h"
#include "infini/error.h"

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
    auto& session = opened.session;
    if (!f->prompt_file.empty()) {
      session.feed_file(f->prompt_file);
    } else if (f->prompt.empty() && f->state.empty()) {
      throw Error("give --prompt, --prompt-file or --state: there is nothing to continue");
    }
    f->sample.stop = f->stops;
    const auto t0 = std::chrono::steady_clock::now();
    const auto start = session.position();
    session.generate(f->prompt, f->sample, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto prompt_tokens = static_cast<int64_t>(opened.model.tokenizer().encode(f->prompt).size());
    const auto tokens = session.position() - start - prompt_tokens;  // generated
    fmt::print(stderr, "infini generate: {} tokens in {:.3f} s ({:.0f} tok/s, prompt included), position {}\n",
               tokens, seconds, static_cast<double>(tokens) / std::max(seconds, 1e-9), session.position());
    if (!f->save_state.empty()) session.save(f->save_state);
    return 0;
  };
}

}  // namespace infini::cli
