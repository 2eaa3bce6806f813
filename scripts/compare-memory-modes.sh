#!/usr/bin/env bash
# The long-context comparison (docs/results/memory-modes): the reference model trained four times, once
# per memory mode (none, xl, infini-linear, infini-delta), with the same recipe, data order and token
# budget, then evaluated on the held-out documents of the KJV + LaTeX corpus.
#
#   bash scripts/compare-memory-modes.sh [OUT] [STEPS] [RESULTS]
#   (defaults: runs/memory-modes, 600, docs/results/memory-modes)
#
# Interrupted runs continue where they stopped when the script is started again; finished ones are kept.
# Each model is then evaluated on the held-out documents (data/corpus/validation) with `infini eval`,
# its state measured with `infini info`, and RESULTS gets the table and the loss-by-segment plot.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/memory-modes}
steps=${2:-600}
results=${3:-docs/results/memory-modes}
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
mkdir -p "$out"
for mode in none xl infini-linear infini-delta; do
  run="$out/$mode"
  if [ -f "$run/trained" ]; then
    echo "== $mode: trained already ($run)" >&2
    continue
  fi
  if [ -f "$run/checkpoint.safetensors" ]; then
    echo "== $mode: continuing $run" >&2
    build/infini train --resume "$run" --steps "$steps" 2>&1 | tee -a "$run.log" >&2
  else
    echo "== $mode: training $run" >&2
    sed "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$mode\"/" configs/reference.json >"$out/$mode.json"
    grep -q "\"memory\": \"$mode\"" "$out/$mode.json"
    build/infini train --config "$out/$mode.json" --data data/corpus --out "$run" \
      --steps "$steps" --batch 4 --window 2048 --lr 2e-3 --warmup 50 \
      --val-every 50 --val-windows 32 --checkpoint-every 50 --seed 1234 2>&1 | tee "$run.log" >&2
  fi
  touch "$run/trained"
done
for mode in none xl infini-linear infini-delta; do
  run="$out/$mode"
  echo "== $mode: evaluating $run" >&2
  build/infini eval --model "$run" --data data/corpus --json >"$out/$mode.eval.json"
  build/infini info --model "$run" --json >"$out/$mode.info.json"
done
mkdir -p "$results"
python3 scripts/memory-modes-report.py "$out" "$results"
for mode in none xl infini-linear infini-delta; do
  cp "$out/$mode.eval.json" "$results/$mode.eval.json"
  cp "$out/$mode/metrics.jsonl" "$results/$mode.metrics.jsonl"
done
