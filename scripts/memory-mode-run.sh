#!/usr/bin/env bash
# One model of the memory-mode comparison: the reference config with the given memory mode and gate
# initialisation, trained with the comparison's recipe (4 x 2048-token windows, lr 2e-3, seed 1234),
# then evaluated on the held-out documents twice: with its memory carried through each document, and
# with the memory forgotten at every segment boundary (`infini eval --forget-memory`), which shows what
# the memory adds with the same weights. `infini info` measures its state.
#
#   bash scripts/memory-mode-run.sh OUT NAME MODE STEPS GATE_INIT [more `infini train` flags]
#
# Writes OUT/NAME/ (the run folder), OUT/NAME.json (config), OUT/NAME.log, OUT/NAME.eval.json,
# OUT/NAME.forget.eval.json (not for mode none) and OUT/NAME.info.json. An interrupted run continues
# where it stopped when started again; finished steps are skipped. Expects build/infini and the corpus
# (scripts/compare-memory-modes.sh provides both).
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
out=$1 name=$2 mode=$3 steps=$4 gate_init=$5
shift 5
cd "$(dirname "$0")/.."
mkdir -p "$out"
run="$out/$name"

done_steps() {  # the last step in the run's metrics (0 if none)
  tail -n 1 "$run/metrics.jsonl" 2>/dev/null | sed -n 's/.*"step":\([0-9]*\).*/\1/p' | grep . || echo 0
}
if [ -f "$run/checkpoint.safetensors" ] && [ "$(done_steps)" -ge "$steps" ]; then
  touch "$run/trained"  # finished, but stopped before it was marked
fi
if [ -f "$run/trained" ]; then
  echo "== $name: trained already ($run)" >&2
elif [ -f "$run/checkpoint.safetensors" ]; then
  echo "== $name: continuing $run" >&2
  build/infini train --resume "$run" --steps "$steps" 2>&1 | tee -a "$run.log" >&2
  touch "$run/trained"
else
  echo "== $name: training $run ($mode, gate_init $gate_init, $steps steps${*:+, $*})" >&2
  sed -e "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$mode\"/" \
      -e "s/\"gate_init\": *[-0-9.e]*/\"gate_init\": $gate_init/" configs/reference.json >"$out/$name.json"
  grep -q "\"memory\": \"$mode\"" "$out/$name.json"
  grep -q "\"gate_init\": $gate_init" "$out/$name.json"
  build/infini train --config "$out/$name.json" --data data/corpus --out "$run" \
    --steps "$steps" --batch 4 --window 2048 --lr 2e-3 --warmup 50 \
    --val-every 50 --val-windows 32 --checkpoint-every 50 --seed 1234 "$@" 2>&1 | tee "$run.log" >&2
  touch "$run/trained"
fi

# Each result is written to a temporary file first, so an interrupted evaluation leaves nothing behind.
evaluate() {  # target, then `infini eval` flags
  local target=$1
  shift
  [ -s "$target" ] && return 0
  echo "== $name: $(basename "$target")" >&2
  build/infini eval --model "$run" --data data/corpus --json "$@" >"$target.tmp"
  mv "$target.tmp" "$target"
}
evaluate "$out/$name.eval.json"
[ "$mode" = none ] || evaluate "$out/$name.forget.eval.json" --forget-memory
if [ ! -s "$out/$name.info.json" ]; then
  build/infini info --model "$run" --json >"$out/$name.info.json.tmp"
  mv "$out/$name.info.json.tmp" "$out/$name.info.json"
fi
