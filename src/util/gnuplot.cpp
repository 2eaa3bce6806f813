#include "util/gnuplot.h"

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "infini/error.h"

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
  // The script writes `out`.tmp. Created here first, so an unwritable place is our error message;
  // gnuplot itself would fall back to writing the PNG to its standard output.
  const auto tmp = out + ".tmp";
  if (FILE* probe = std::fopen(tmp.c_str(), "wb")) {
    std::fclose(probe);
  } else {
    throw Error(fmt::format("{}: cannot write the plot here ({})", out, std::strerror(errno)));
  }
  // A missing gnuplot closes the pipe early; that must be an error message, not death by SIGPIPE.
  const auto previous_sigpipe = std::signal(SIGPIPE, SIG_IGN);
  // gnuplot's messages go to stderr by themselves; its stdout carries nothing we want, and never
  // our stdout, which is for data (JSON).
  FILE* gp = ::popen("gnuplot >/dev/null", "w");
  if (!gp) {
    std::signal(SIGPIPE, previous_sigpipe);
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error("cannot start gnuplot");
  }
  std::fwrite(script.data(), 1, script.size(), gp);
  const int status = ::pclose(gp);
  std::signal(SIGPIPE, previous_sigpipe);
  std::error_code ec;
  if (status != 0 || fs::file_size(tmp, ec) == 0 || ec) {
    fs::remove(tmp, ec);
    throw Error(WEXITSTATUS(status) == 127
                    ? "gnuplot not found; install it with 'apt-get install gnuplot-nox' (scripts/install-deps.sh does)"
                    : fmt::format("gnuplot failed (exit {}) drawing {}", WEXITSTATUS(status), out));
  }
  fs::rename(tmp, out, ec);
  if (ec) throw Error(fmt::format("{}: cannot move the plot into place ({})", out, ec.message()));
}

}  // namespace infini
