#include "util/gnuplot.h"

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "util/error.h"

namespace infini {

namespace fs = std::filesystem;

std::string gnuplot_quoted(std::string s) {
  for (auto& c : s)
    if (c == '"' || c == '\\') c = '_';
  return "\"" + s + "\"";
}

void check_gnuplot(const std::string& out) {
  const auto folder = fs::path(out).parent_path();
  if (!folder.empty() && !fs::is_directory(folder))
    throw Error(fmt::format("{}: the folder {} does not exist", out, folder.string()));
  if (std::system("gnuplot --version >/dev/null 2>&1") != 0)
    throw Error("gnuplot not found; install it with 'apt-get install gnuplot-nox' (scripts/install-deps.sh does), "
                "or leave the plot out");
}

void run_gnuplot(const std::string& script, const std::string& out) {
  // A missing gnuplot closes the pipe early; that must be an error message, not death by SIGPIPE.
  const auto previous_sigpipe = std::signal(SIGPIPE, SIG_IGN);
  // gnuplot's messages go to stderr: stdout is for data (JSON).
  FILE* gp = ::popen("gnuplot 1>&2", "w");
  if (!gp) {
    std::signal(SIGPIPE, previous_sigpipe);
    throw Error("cannot start gnuplot");
  }
  std::fwrite(script.data(), 1, script.size(), gp);
  const int status = ::pclose(gp);
  std::signal(SIGPIPE, previous_sigpipe);
  const auto tmp = out + ".tmp";
  if (status != 0 || !fs::exists(tmp)) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(WEXITSTATUS(status) == 127
                    ? "gnuplot not found; install it with 'apt-get install gnuplot-nox' (scripts/install-deps.sh does)"
                    : fmt::format("gnuplot failed (exit {}) drawing {}", WEXITSTATUS(status), out));
  }
  fs::rename(tmp, out);
}

}  // namespace infini
