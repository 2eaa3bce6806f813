// infini: train, sample from, plot and benchmark Infini-Transformer models.
// Data (generated text, JSON) goes to stdout; progress and speed go to stderr.
#include <iostream>
#include <map>

#include <fmt/format.h>

#include "cli/commands.h"
#include "infini/error.h"

int main(int argc, char** argv) {
  CLI::App app{"infini: language models with unbounded context (Infini-attention) in C++"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::map<std::string, infini::cli::Runner> runners;
  runners["train"] = infini::cli::add_train(app);
  runners["generate"] = infini::cli::add_generate(app);
  runners["bench"] = infini::cli::add_bench(app);
  runners["tokenizer"] = infini::cli::add_tokenizer(app);
  runners["plot"] = infini::cli::add_plot(app);
  runners["read"] = infini::cli::add_read(app);
  runners["eval"] = infini::cli::add_eval(app);
  runners["info"] = infini::cli::add_info(app);
  runners["passkey"] = infini::cli::add_passkey(app);
  runners["serve"] = infini::cli::add_serve(app);
  infini::cli::set_command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands()) return runners.at(sub->get_name())();
  } catch (const infini::Error& e) {
    fmt::print(stderr, "infini: error: {}\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "infini: error: {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "infini: error: {}\n", e.what());
    return 1;
  }
  return 1;
}
