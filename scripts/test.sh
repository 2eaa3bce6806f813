#!/usr/bin/env bash
# The README's second command (and CI's): install, build, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
