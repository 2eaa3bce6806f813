#!/usr/bin/env bash
# Builds logit_dump against an already built build/libinfini_core.a, with the flags CMake used for
# build/infini, into OUT (default build/logit_dump).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/logit_dump}
flags=$(sed -n 's/^CXX_\(DEFINES\|INCLUDES\|FLAGS\) = //p' build/CMakeFiles/infini.dir/flags.make | tr '\n' ' ')
libs=$(sed 's/.* -o infini //' build/CMakeFiles/infini.dir/link.txt | sed 's|libinfini_core.a|build/libinfini_core.a|')
# shellcheck disable=SC2086
eval c++ $flags -fopenmp experiments/refactor-parity/logit_dump.cpp -o "$out" -Wl,--disable-new-dtags \
  -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp $libs
