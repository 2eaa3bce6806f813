#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "train/metrics.h"
#include "infini/error.h"
#include "util/gnuplot.h"

namespace infini::cli {

namespace fs = std::filesystem;

Runner add_plot(CLI::App& app) {
  struct Flags {
    std::vector<std::string> runs;
    std::string out = "loss.png", x = "tokens";
  };
  auto f = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("plot", "draw training and validation loss curves of runs to a PNG (gnuplot)");
  sub->add_option("runs", f->runs, "run folders (each with metrics.jsonl)")->required();
  sub->add_option("--out", f->out, "PNG file to write");
  sub->add_option("--x", f->x, "x axis: tokens or step")->check(CLI::IsMember({"tokens", "step"}));
  return [f]() {
    std::string script = fmt::format(
        "set terminal pngcairo size 1100,650 noenhanced font 'sans,10'\n"
        "set format x '%.1s%c'\nset output {}\nset xlabel {}\nset ylabel 'loss (nats per token)'\nset grid\nset key top right\n",
        gnuplot_quoted(f->out + ".tmp"), gnuplot_quoted(f->x == "tokens" ? "tokens trained" : "step"));
    std::vector<std::string> curves;
    for (size_t i = 0; i < f->runs.size(); ++i) {
      const auto& run = f->runs[i];
      const auto path = (fs::path(run) / "metrics.jsonl").string();
      if (!fs::exists(path))
        throw Error(fmt::format("{}: missing; is {} a run folder written by 'infini train'?", path, run));
      std::string train, val;
      for (const auto& r : read_metrics(path)) {
        if (!r.contains("step") || !r.contains("loss") || !r.contains("tokens"))
          throw Error(fmt::format("{}: a record lacks 'step', 'tokens' or 'loss'", path));
        const double x = f->x == "tokens" ? r["tokens"].get<double>() : r["step"].get<double>();
        train += fmt::format("{} {}\n", x, r["loss"].get<double>());
        if (r.contains("val_loss")) val += fmt::format("{} {}\n", x, r["val_loss"].get<double>());
      }
      if (train.empty()) throw Error(fmt::format("{}: no records yet", path));
      const auto name = fs::path(run).filename().empty() ? fs::path(run).parent_path().filename().string()
                                                          : fs::path(run).filename().string();
      script += fmt::format("$train{} << EOD\n{}EOD\n", i, train);
      curves.push_back(fmt::format("$train{} using 1:2 with lines lw 1 lc {} title {}", i, i + 1,
                                   gnuplot_quoted(name + " train")));
      if (!val.empty()) {
        script += fmt::format("$val{} << EOD\n{}EOD\n", i, val);
        curves.push_back(fmt::format("$val{} using 1:2 with linespoints lw 2 pt 7 dt 2 lc {} title {}", i, i + 1,
                                     gnuplot_quoted(name + " validation")));
      }
    }
    script += "plot " + fmt::format("{}", fmt::join(curves, ", \\\n     ")) + "\n";
    run_gnuplot(script, f->out);
    fmt::print(stderr, "infini plot: {} run(s) drawn to {}\n", f->runs.size(), f->out);
    return 0;
  };
}

}  // namespace infini::cli
