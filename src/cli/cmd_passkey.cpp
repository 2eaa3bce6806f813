#include <cmath>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "infini/error.h"
#include "infini/evaluate.h"
#include "infini/runtime.h"
#include "util/gnuplot.h"

namespace infini::cli {

namespace {

// 32768 -> "32K", 1048576 -> "1M", 5000 -> "5000".
std::string length_label(int64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= (1 << 10) && n % (1 << 10) == 0) return fmt::format("{}K", n >> 10);
  return std::to_string(n);
}

// The paper's Table 3 layout: a row per length, a column per depth, token accuracy in percent.
void print_table(const nlohmann::json& r, const PasskeyEvalOptions& o) {
  fmt::print(stderr, "token accuracy, % (exact keys, %), {} trials per cell:\n{:>8}", o.trials, "length");
  for (const auto d : o.depths) fmt::print(stderr, " {:>14}", fmt::format("depth {:g}", d));
  fmt::print(stderr, " {:>12}\n", "peak RSS");
  const auto& cells = r.at("cells");
  for (size_t i = 0; i < o.lengths.size(); ++i) {
    fmt::print(stderr, "{:>8}", length_label(o.lengths[i]));
    for (size_t j = 0; j < o.depths.size(); ++j) {
      const auto& c = cells.at(i * o.depths.size() + j);
      fmt::print(stderr, " {:>14}",
                 fmt::format("{:.1f} ({:.0f})", 100 * c.at("accuracy").get<double>(),
                             100 * c.at("exact_match").get<double>()));
    }
    fmt::print(stderr, " {:>8.1f} MiB\n", r.at("peak_rss").at(i).at("bytes").get<double>() / (1 << 20));
  }
}

void draw_heatmap(const nlohmann::json& r, const PasskeyEvalOptions& o, const std::string& model,
                  const std::string& out) {
  // One filled box per cell rather than gnuplot's `matrix with image`, which refuses a grid with a
  // single length or a single depth.
  std::string cells, xtics, ytics;
  for (size_t i = 0; i < o.lengths.size(); ++i) {
    for (size_t j = 0; j < o.depths.size(); ++j)
      cells += fmt::format("{} {} {:.4f}\n", j, i, r.at("cells").at(i * o.depths.size() + j).at("accuracy").get<double>());
    ytics += fmt::format("{}{} {}", i ? ", " : "", gnuplot_quoted(length_label(o.lengths[i])), i);
  }
  for (size_t j = 0; j < o.depths.size(); ++j)
    xtics += fmt::format("{}{} {}", j ? ", " : "", gnuplot_quoted(fmt::format("{:g}", o.depths[j])), j);
  const auto script = fmt::format(
      "set terminal pngcairo size {},{} noenhanced font 'sans,10'\nset output {}\n"
      "set title {}\nset xlabel 'depth of the key in the input'\nset ylabel 'input length (tokens)'\n"
      "set xtics ({})\nset ytics ({})\nset xrange [-0.5:{}]\nset yrange [-0.5:{}]\n"
      "set cbrange [0:1]\nset cblabel 'token accuracy'\n"
      "set palette defined (0 '#b2182b', 0.5 '#fddbc7', 1 '#2166ac')\nunset key\n"
      "$acc << EOD\n{}EOD\n"
      "plot $acc using 1:2:(0.5):(0.5):3 with boxxyerror fillstyle solid noborder fillcolor palette, "
      "$acc using 1:2:(sprintf('%.0f%%', $3 * 100)) with labels\n",
      240 + 110 * o.depths.size(), 160 + 60 * o.lengths.size(), gnuplot_quoted(out + ".tmp"),
      gnuplot_quoted(fmt::format("passkey retrieval, {} ({} keys per cell)", model, o.trials)), xtics, ytics,
      o.depths.size() - 0.5, o.lengths.size() - 0.5, cells);
  run_gnuplot(script, out);
}

}  // namespace

Runner add_passkey(CLI::App& app) {
  struct Flags {
    std::string model, plot = "passkey.png";
    std::vector<std::string> lengths = {"32K", "128K", "256K", "512K", "1M"};
    PasskeyEvalOptions options;
    bool json = false;
    int threads = 0;
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "passkey", "passkey retrieval (the paper's Table 3): token accuracy of the key by input length and depth");
  sub->add_option("--model", f->model, "model folder")->required();
  sub->add_option("--lengths", f->lengths, "input lengths in tokens, comma-separated; K = 1024, M = 1048576")
      ->delimiter(',')
      ;
  sub->add_option("--depths", f->options.depths, "where the key sits, 0 (start) .. 1 (end), comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1.0))
      ;
  sub->add_option("--trials", f->options.trials, "random keys per length and depth")->check(at_least(1));
  sub->add_option("--seed", f->options.seed, "seed of the keys");
  sub->add_option("--key-min", f->options.key_min, "smallest key")->check(at_least(0));
  sub->add_option("--key-max", f->options.key_max, "largest key")->check(at_least(0));
  sub->add_option("--plot", f->plot, "heatmap PNG to write, with gnuplot (empty: none)");
  sub->add_flag("--json", f->json, "print the results as one JSON object on stdout");
  add_threads_flag(*sub, f->threads);
  return [f]() {
    auto& o = f->options;
    o.lengths.clear();
    for (const auto& text : f->lengths) o.lengths.push_back(parse_token_count("--lengths", text));
    if (o.key_max < o.key_min)
      throw Error(fmt::format("--key-min {} is larger than --key-max {}", o.key_min, o.key_max));
    // A plot that cannot be drawn fails now, not after hours of reading.
    if (!f->plot.empty()) check_gnuplot(f->plot);
    set_threads(f->threads);
    const auto model = Model::load(f->model);
    const auto report = passkey(model, o, [&](const nlohmann::json& c) {
      fmt::print(stderr, "passkey: length {} depth {:g}: {:.1f}% of key tokens, {}/{} keys exact (key {}: answered \"{}\"), {:.0f} s\n",
                 length_label(c.at("length").get<int64_t>()), c.at("depth").get<double>(),
                 100 * c.at("accuracy").get<double>(),
                 std::lround(c.at("exact_match").get<double>() * c.at("trials").get<double>()),
                 c.at("trials").get<int64_t>(), c.at("keys").at(0).get<int64_t>(),
                 c.at("answers").at(0).get<std::string>(), c.at("seconds").get<double>());
    });
    print_table(report, o);
    if (f->json) {
      fmt::print("{}\n", report.dump());
      std::fflush(stdout);
    }
    if (!f->plot.empty()) {
      draw_heatmap(report, o, f->model, f->plot);
      fmt::print(stderr, "infini passkey: heatmap written to {}\n", f->plot);
    }
    return 0;
  };
}

}  // namespace infini::cli
