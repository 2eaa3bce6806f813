#!/bin/bash
# Training beside one busy loop, before the fix: two threads, one thread, passive waiting, and the
# anchor (its checkout on PYTHONPATH, bench/baseline/README.md). Output: training-baseline.txt.
#   B=BIN bash experiments/shared-machine/training-baseline.sh
cd "$(dirname "$0")/../.."
B=${B:-build/infini}
anchor() { PYTHONPATH=${ANCHOR_PYTHONPATH:-/tmp/anchor/shims:/tmp/anchor/checkout} /usr/bin/python3 bench/baseline/lucidrains_train_speed.py --threads 1 --blas-threads 2 --warmup 1 --steps 4 2>/dev/null | grep -o '"tok_per_s": [0-9.]*'; }
inf() { $B bench --json --steps 4 --warmup-steps 1 "$@" 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print("train_tokens_per_second", round(d["train_tokens_per_second"]), "threads", d["threads"])'; }
for cond in idle busy; do
  if [ $cond = busy ]; then sh -c 'while :; do :; done' & L=$!; fi
  echo "== $cond infini 2T: $(inf)"
  echo "== $cond infini 1T: $(inf --threads 1)"
  echo "== $cond anchor: $(anchor)"
  echo "== $cond infini 2T passive: $(OMP_WAIT_POLICY=PASSIVE inf)"
  [ $cond = busy ] && kill $L
done
