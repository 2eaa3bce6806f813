// Drawing with gnuplot (an optional tool, installed by scripts/install-deps.sh): the script is piped
// to it and the PNG appears at `out` only when gnuplot succeeded (written to a temporary file first).
#pragma once

#include <string>

namespace infini {

// gnuplot names strings in double quotes; this keeps a label printable inside them.
std::string gnuplot_quoted(std::string s);

// Throws infini::Error when gnuplot is missing or `out`'s folder does not exist: checked before long
// work whose result is to be drawn.
void check_gnuplot(const std::string& out);

// Runs `script`, which must `set output` to gnuplot_quoted(out + ".tmp"); then renames that to `out`.
// Throws infini::Error, with how to install gnuplot when it is missing.
void run_gnuplot(const std::string& script, const std::string& out);

}  // namespace infini
