#include "util/gnuplot.h"

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
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

void run_gnuplot(const std::string& script, const std::string& out) {
  // A missing gnuplot closes the pipe early; that must be an error message, not death by SIGPIPE.
  const auto previous_sigpipe = std::signal(SIGPIPE, SIG_IGN);
  FILE* gp = ::popen("gnuplot 2>&1", "w");
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
