#!/usr/bin/env bash
# The thread splits of this record on the current build: every (LibTorch threads, OpenBLAS threads)
# pair on two cores, one JSON line each (its "blas" field names the library loaded).
#
#   bash experiments/threads-blas/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
for t in 1 2; do
  for b in 1 2; do
    echo "# threads $t, OPENBLAS_NUM_THREADS $b"
    OPENBLAS_NUM_THREADS=$b build/infini bench --json --threads "$t" --steps 3 --warmup-steps 1
  done
done
