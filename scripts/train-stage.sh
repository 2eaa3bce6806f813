#!/usr/bin/env bash
# One training run that survives interruption: a new run in RUN with the given `infini train` flags;
# or, when RUN has a checkpoint short of STEPS, the same run continued to STEPS (so calling it again
# with more steps extends a finished run; its cosine schedule is stretched to the new end).
#
#   bash scripts/train-stage.sh RUN STEPS [infini train flags for a new run]
#
# The log goes to RUN.log (appended when continuing). RUN/trained marks a run that reached STEPS.
# INFINI_BIN (default build/infini) is the binary.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
run=$1 steps=$2
shift 2
cd "$(dirname "$0")/.."
done_steps() {  # the last step in the run's metrics (0 if none)
  tail -n 1 "$run/metrics.jsonl" 2>/dev/null | sed -n 's/.*"step":\([0-9]*\).*/\1/p' | grep . || echo 0
}
if [ -f "$run/checkpoint.safetensors" ] && [ "$(done_steps)" -ge "$steps" ]; then
  echo "== $run: trained already ($(done_steps) steps)" >&2
elif [ -f "$run/checkpoint.safetensors" ]; then
  echo "== $run: continuing from step $(done_steps) to $steps" >&2
  "${INFINI_BIN:-build/infini}" train --resume "$run" --steps "$steps" 2>&1 | tee -a "$run.log" >&2
else
  echo "== $run: training ($steps steps: $*)" >&2
  mkdir -p "$(dirname "$run")"
  "${INFINI_BIN:-build/infini}" train --out "$run" --steps "$steps" "$@" 2>&1 | tee "$run.log" >&2
fi
touch "$run/trained"
