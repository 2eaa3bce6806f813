#!/usr/bin/env bash
# Why segment-local attention (`none`) leads the memory-mode comparison at 600 steps (docs/EVALUATION.md,
# experiments/memory-modes-investigation): the comparison's recipe with one factor changed at a time.
#
#   bash experiments/memory-modes-investigation/investigate-memory-modes.sh [OUT] [RESULTS] [BASE]
#   (defaults: runs/memory-modes-investigation, experiments/memory-modes-investigation,
#    runs/memory-modes, where scripts/compare-memory-modes.sh left the 600-step models)
#
# - infini-delta-gate-3, infini-linear-gate-3: gate_init -3 (sigmoid 0.047) instead of 0 (0.5). At 0
#   the memory, empty in each window's first segment, takes half of every head's output from the first
#   step on.
# - infini-delta-bptt1: the memory detached at every segment boundary instead of back-propagating
#   through the whole 8-segment window (with gate_init -3, the better start found above).
# - none-1200, infini-delta-1200: twice the token budget (infini-delta with gate_init -3). Does the
#   gap close with training?
# Interrupted runs continue when the script is started again.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/memory-modes-investigation}
results=${2:-experiments/memory-modes-investigation}
base=${3:-runs/memory-modes}
for mode in none infini-delta; do
  [ -f "$base/$mode.eval.json" ] || { echo "run scripts/compare-memory-modes.sh first ($base/$mode.eval.json)" >&2; exit 1; }
done
bash scripts/memory-mode-run.sh "$out" infini-delta-gate-3 infini-delta 600 -3.0
bash scripts/memory-mode-run.sh "$out" infini-linear-gate-3 infini-linear 600 -3.0
bash scripts/memory-mode-run.sh "$out" infini-delta-bptt1 infini-delta 600 -3.0 --bptt-segments 1
bash scripts/memory-mode-run.sh "$out" none-1200 none 1200 0.0
bash scripts/memory-mode-run.sh "$out" infini-delta-1200 infini-delta 1200 -3.0
mkdir -p "$results"
python3 scripts/memory-modes-report.py "$results" "$base/none" "$base/infini-linear" "$base/infini-delta" \
  "$out/infini-linear-gate-3" "$out/infini-delta-gate-3" "$out/infini-delta-bptt1" "$out/none-1200" \
  "$out/infini-delta-1200"
for name in infini-linear-gate-3 infini-delta-gate-3 infini-delta-bptt1 none-1200 infini-delta-1200; do
  cp "$out/$name".*eval.json "$results/"
  cp "$out/$name/metrics.jsonl" "$results/$name.metrics.jsonl"
done
