// Each subcommand registers its flags on the one CLI11 app (so `--help` lists every flag with its
// default) and returns the function that runs it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace infini::cli {

using Runner = std::function<int()>;

Runner add_train(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_tokenizer(CLI::App& app);
Runner add_plot(CLI::App& app);
Runner add_read(CLI::App& app);
Runner add_eval(CLI::App& app);
Runner add_info(CLI::App& app);
Runner add_passkey(CLI::App& app);
Runner add_serve(CLI::App& app);

// Rejects values below `min` with a message that names the flag and the value.
CLI::Validator at_least(double min);
CLI::Validator positive();

// A token count such as 5000, 32K (x 1024) or 1M (x 1048576); errors name `flag`.
int64_t parse_token_count(const std::string& flag, const std::string& text);

// The command line as given (without the program name), for `train --nproc` to start its workers with.
const std::vector<std::string>& command_line();
void set_command_line(int argc, char** argv);

// Flags shared by several subcommands.
void add_threads_flag(CLI::App& sub, int& threads);

}  // namespace infini::cli
