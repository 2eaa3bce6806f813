#!/usr/bin/env bash
# Load benchmark of `infini serve` (docs/SERVING.md): 16 clients x 50 completions of 64 tokens, 8
# streams against 1, and RSS with 1,000 resident sessions of a 128K-token read, on a model of the
# reference config (configs/reference.json; trained for a few steps here: speed does not depend on
# what it learned). JSON to stdout. Extra arguments go to bench/serve_load.py (--help lists them);
# --busy N first starts N busy loops at normal priority, and stops them at the end.
#   scripts/bench-serve.sh [--busy N] [bench/serve_load.py arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
busy=0
if [ "${1:-}" = --busy ]; then
  busy=$2
  shift 2
fi
model=build/bench-serve-model
if [ ! -f "$model/model.safetensors" ]; then
  build/infini train --config configs/reference.json --data data/sample/kjv-genesis-exodus.txt --steps 2 \
    --window 256 --batch 1 --val-every 0 --out "$model" >&2
fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for _ in $(seq "$busy"); do
  sh -c 'while :; do :; done' &
  pids+=($!)
done
/usr/bin/python3 bench/serve_load.py --bin build/infini --model "$model" "$@"
