#include <fmt/format.h>

#include "cli/commands.h"
#include "infini/error.h"
#include "util/runtime.h"

namespace infini::cli {

namespace {

CLI::Validator bounded(double min, bool inclusive) {
  const auto rule = fmt::format("{} {}", inclusive ? ">=" : ">", min);
  return CLI::Validator(
      [min, inclusive, rule](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(value, &used);
          if (used == value.size() && (inclusive ? v >= min : v > min)) return {};
        } catch (const std::exception&) {
        }
        return fmt::format("must be a number {}, got '{}'", rule, value);
      },
      "NUMBER " + rule);
}

}  // namespace

CLI::Validator at_least(double min) { return bounded(min, true); }
CLI::Validator positive() { return bounded(0, false); }

namespace {
std::vector<std::string> g_command_line;
}

const std::vector<std::string>& command_line() { return g_command_line; }

void set_command_line(int argc, char** argv) { g_command_line.assign(argv + 1, argv + argc); }

int64_t parse_token_count(const std::string& flag, const std::string& text) {
  int64_t scale = 1;
  std::string digits = text;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) scale = int64_t{1} << 10;
  if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) scale = int64_t{1} << 20;
  if (scale > 1) digits.pop_back();
  try {
    size_t used = 0;
    const long long v = std::stoll(digits, &used);
    if (used == digits.size() && v > 0 && v <= (int64_t{1} << 40) / scale) return v * scale;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("{}: '{}' is not a token count (a positive number, optionally with K = 1024 or "
                          "M = 1048576, e.g. 32K or 1M)", flag, text));
}

void add_threads_flag(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads,
                 "intra-op threads. 0: one per CPU this process may use (affinity, cgroup quota), and fewer "
                 "while a busy machine makes that faster; N: exactly N")
      ->check(at_least(0))
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            // More threads than CPUs only wait for each other at every barrier: at 1,000 a command
            // never finished. The CPUs this process may use bound it (affinity, cgroup quota).
            const int cpus = usable_cpus();
            try {
              if (std::stoll(value) <= cpus) return {};
            } catch (const std::exception&) {
            }
            return fmt::format("is {}; this process may use {} CPU(s) (affinity mask and cgroup quota), and more "
                               "threads than CPUs wait for each other. Give at most {}, or 0 for automatic",
                               value, cpus, cpus);
          },
          "AT MOST THE CPUS"));
}

}  // namespace infini::cli
