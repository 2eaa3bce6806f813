#!/usr/bin/env bash
# The long-context comparison (experiments/memory-modes): the reference model trained four times, once
# per memory mode (none, xl, infini-linear, infini-delta), with the same recipe, data order and token
# budget, then evaluated on the held-out documents of the KJV + LaTeX corpus.
#
#   bash scripts/compare-memory-modes.sh [OUT] [STEPS] [RESULTS]
#   (defaults: runs/memory-modes, 600, experiments/memory-modes)
#
# Each model goes through scripts/memory-mode-run.sh (training, `infini eval` with the memory and with
# it forgotten at every segment, `infini info`); interrupted runs continue where they stopped when the
# script is started again, and finished ones are kept. RESULTS gets the table and the loss-by-segment
# plot (scripts/memory-modes-report.py), the evaluation JSON and the training metrics of each model.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/memory-modes}
steps=${2:-600}
results=${3:-experiments/memory-modes}
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
modes=(none xl infini-linear infini-delta)
for mode in "${modes[@]}"; do
  # gate_init 0, the default when these results were made (now -3: see the investigation)
  bash scripts/memory-mode-run.sh "$out" "$mode" "$mode" "$steps" 0.0
done
mkdir -p "$results"
python3 scripts/memory-modes-report.py "$results" "${modes[@]/#/$out/}"
for mode in "${modes[@]}"; do
  cp "$out/$mode".*eval.json "$results/"
  cp "$out/$mode/metrics.jsonl" "$results/$mode.metrics.jsonl"
done
