#!/usr/bin/env bash
# The long-context comparison (docs/EVALUATION.md): the reference model trained once per memory mode
# and seed, with the same recipe and token budget, then evaluated on the held-out documents of the
# KJV + LaTeX corpus.
#
#   bash scripts/compare-memory-modes.sh [OUT] [STEPS] [RESULTS]
#   (defaults: runs/memory-modes-6x3, 1200, experiments/memory-modes-6x3)
#
# MODES (default "none xl knn rmt infini-linear infini-delta") and SEEDS (default "1234 1235 1236") choose
# the models; each is OUT/MODE-sSEED, with every mode's defaults (gate_init -3; knn: 65,536 tokens,
# top 32; rmt: p = 16). Each goes through scripts/memory-mode-run.sh (training, `infini eval` with the memory and
# with it forgotten at every segment, `infini info`); interrupted runs continue where they stopped
# when the script is started again, and finished ones are kept. RESULTS gets the table and the
# loss-by-segment plot (scripts/memory-modes-report.py), the evaluation JSON and the training metrics
# of each model. The earlier four-mode, one-seed, 600-step record (experiments/memory-modes) came from
# this script at commit c555ea0.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/memory-modes-6x3}
steps=${2:-1200}
results=${3:-experiments/memory-modes-6x3}
read -r -a modes <<<"${MODES:-none xl knn rmt infini-linear infini-delta}"
read -r -a seeds <<<"${SEEDS:-1234 1235 1236}"
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
runs=()
for seed in "${seeds[@]}"; do
  for mode in "${modes[@]}"; do
    SEED=$seed bash scripts/memory-mode-run.sh "$out" "$mode-s$seed" "$mode" "$steps" -3.0
    runs+=("$out/$mode-s$seed")
  done
done
mkdir -p "$results"
python3 scripts/memory-modes-report.py "$results" "${runs[@]}"
for run in "${runs[@]}"; do
  name=$(basename "$run")
  cp "$run".*eval.json "$results/"
  cp "$run/metrics.jsonl" "$results/$name.metrics.jsonl"
done
