#!/usr/bin/env bash
# The whole test suite under sanitizers (docs/RELIABILITY.md): builds into build-asan with
# INFINI_SANITIZE (default address,undefined; any -fsanitize= list) and runs ctest there, at nice 19.
# Extra arguments go to ctest (e.g. -R io_tests). Slow: docs/RELIABILITY.md has the times.
#
#   scripts/sanitize-tests.sh [SANITIZERS] [ctest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=address,undefined
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
  sanitizers=$1
  shift
fi
scripts/install-deps.sh --tests
nice -n 19 cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DINFINI_SANITIZE="$sanitizers" \
  -DINFINI_BUILD_BENCH=OFF >/dev/null
nice -n 19 cmake --build build-asan -j"$(nproc)" >&2
# LibTorch is not instrumented. Its lazily built singletons (operator registry, thread pools) are
# still reachable at exit, so leak checking stays on; abort_on_error gives a core-style exit code.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
nice -n 19 ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 3600 "$@"
