#!/usr/bin/env bash
# One model of the memory-mode comparison: the reference config with the given memory mode and gate
# initialisation, trained with the comparison's recipe (4 x 2048-token windows, lr 2e-3, seed SEED),
# then evaluated on the held-out documents twice: with its memory carried through each document, and
# with the memory forgotten at every segment boundary (`infini eval --forget-memory`), which shows what
# the memory adds with the same weights. `infini info` measures its state.
#
#   bash scripts/memory-mode-run.sh OUT NAME MODE STEPS GATE_INIT [more `infini train` flags]
#
# Writes OUT/NAME/ (the run folder), OUT/NAME.json (config), OUT/NAME.log, OUT/NAME.eval.json,
# OUT/NAME.forget.eval.json (not for mode none) and OUT/NAME.info.json. An interrupted run continues
# where it stopped when started again; finished steps are skipped. Expects build/infini and the corpus
# (scripts/compare-memory-modes.sh provides both). BASE_CONFIG names the config the mode and gate
# are put into (default configs/reference.json; configs/reference-mod.json for Mixture-of-Depths).
# SEED (default 1234) seeds the initial weights and the data order. INFINI_BIN (default build/infini)
# is the binary, so runs can go on while the checkout is rebuilt.
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
out=$1 name=$2 mode=$3 steps=$4 gate_init=$5
shift 5
cd "$(dirname "$0")/.."
bin=${INFINI_BIN:-build/infini}
mkdir -p "$out"
run="$out/$name"

if [ ! -f "$run/trained" ] && [ ! -f "$run/checkpoint.safetensors" ]; then
  sed -e "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$mode\"/" \
      -e "s/\"gate_init\": *[-0-9.e]*/\"gate_init\": $gate_init/" "${BASE_CONFIG:-configs/reference.json}" >"$out/$name.json"
  grep -q "\"memory\": \"$mode\"" "$out/$name.json"
  grep -q "\"gate_init\": $gate_init" "$out/$name.json"
fi
bash scripts/train-stage.sh "$run" "$steps" --config "$out/$name.json" --data data/corpus \
  --batch 4 --window 2048 --lr 2e-3 --warmup 50 --val-every 50 --val-windows 32 --checkpoint-every 50 \
  --seed "${SEED:-1234}" "$@"

# Each result is written to a temporary file first, so an interrupted evaluation leaves nothing behind.
evaluate() {  # target, then `infini eval` flags
  local target=$1
  shift
  [ -s "$target" ] && return 0
  echo "== $name: $(basename "$target")" >&2
  "$bin" eval --model "$run" --data data/corpus --json "$@" >"$target.tmp"
  mv "$target.tmp" "$target"
}
evaluate "$out/$name.eval.json"
[ "$mode" = none ] || evaluate "$out/$name.forget.eval.json" --forget-memory
if [ ! -s "$out/$name.info.json" ]; then
  "$bin" info --model "$run" --json >"$out/$name.info.json.tmp"
  mv "$out/$name.info.json.tmp" "$out/$name.info.json"
fi
