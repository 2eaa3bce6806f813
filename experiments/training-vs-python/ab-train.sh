#!/usr/bin/env bash
# Training speed side by side: infini's `bench` and lucidrains/infini-transformer-pytorch's, in turn,
# one warm-up pair and then PAIRS counted pairs (default 6), one JSON line each. The Python side needs
# that project on PYTHONPATH (bench/baseline/README.md).
#
#   bash experiments/training-vs-python/ab-train.sh [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs=${1:-6}
for i in $(seq 0 "$pairs"); do
  [ "$i" -eq 0 ] && echo "# warm-up pair" || echo "# pair $i"
  build/infini bench --json --steps 4 --warmup-steps 1
  /usr/bin/python3 bench/baseline/lucidrains_train_speed.py --threads 1 --blas-threads 2 --warmup 1 --steps 4
done
