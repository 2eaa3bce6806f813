#!/usr/bin/env bash
# The kernel micro-benchmarks and a profiled training step on the current build; the trace goes to
# OUT/trace.json (default OUT: runs/training-kernels), for chrome://tracing or Perfetto.
#
#   bash experiments/training-kernels/run.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/training-kernels}
mkdir -p "$out"
build/bench/infini_micro_bench --benchmark_filter='Attention|Memory'
build/infini bench --steps 1 --warmup-steps 1 --profile "$out/trace.json"
