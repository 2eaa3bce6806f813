#include <fmt/format.h>

#include "cli/commands.h"

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

void add_threads_flag(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, "intra-op threads; 0 = one per core")->check(at_least(0));
}

}  // namespace infini::cli
