# A probe (experiments/passkey-lab-log.md, "The lead from `virtual` on, six stages"): the six-stage recipe (the
# nine-stage recipe's lm, copy and seg1, then from seg1 with 64-token segments `virtual`, `long` and
# `long2`: experiments/passkey-lab-log.md, "Five stages and a second near-1M stage") with --passkey-lead-bytes 64 in
# its last three stages, so that the prompt's lines come at every phase of a 64-token segment
# ("Phases of a segment"). Then the phase scan and the table, 1M first. Each stage's wall time goes
# to OUT/times.txt after the recipe's first three.
#   bash experiments/passkey-six-stages/run.sh [MODE] [OUT]
#   (MODE as scripts/passkey-recipe.sh's, default conv-infini-delta; the linear rule's is
#   shift-infini-linear; OUT defaults to runs/recipe-six-lead-MODE; results go to this folder's MODE/;
#   SEG1_SEED as scripts/passkey-recipe.sh's: the linear rule's table came from SEG1_SEED=6)
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-conv-infini-delta}
out=${2:-runs/recipe-six-lead-$mode}
res=experiments/passkey-six-stages/$mode
UNTIL=seg1 bash scripts/passkey-recipe.sh "$mode" "$out"
if [ ! -f "$out/seg1-seg64/model.safetensors" ]; then
  mkdir -p "$out/seg1-seg64"
  cp "$out/seg1/model.safetensors" "$out/seg1/tokenizer.json" "$out/seg1-seg64/"
  sed 's/"segment_len": *[0-9]*/"segment_len": 64/' "$out/seg1/config.json" >"$out/seg1-seg64/config.json"
  grep -q '"segment_len": 64' "$out/seg1-seg64/config.json"
fi
timed() {  # NAME, then the command
  local name=$1 t0
  shift
  [ -f "$out/$name/trained" ] && return 0
  t0=$(date +%s)
  "$@"
  echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
}
flags=(--task passkey --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-repeat-keys 0.5
  --passkey-lead-bytes 64 --batch 8 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100)
timed virtual bash scripts/train-stage.sh "$out/virtual" 1000 --init "$out/seg1-seg64" "${flags[@]}" --lr 1e-3 --seed 9
timed long bash scripts/train-stage.sh "$out/long" 1000 --init "$out/virtual" "${flags[@]}" \
  --passkey-virtual-min-tokens 262144 --lr 5e-4 --seed 12
timed long2 bash scripts/train-stage.sh "$out/long2" 600 --init "$out/long" "${flags[@]}" \
  --passkey-virtual-min-tokens 262144 --lr 5e-4 --seed 13
mkdir -p "$res"
for stage in lm copy seg1 virtual long long2; do cp "$out/$stage/metrics.jsonl" "$res/$stage.metrics.jsonl"; done
cp "$out/times.txt" "$res/recipe-times.txt"
cp "$out/long2/config.json" "$res/config.json"
[ -f "$res/phases-long2.txt" ] || { bash experiments/passkey-phases/passkey-phases.sh "$out/long2" >"$res/phases-long2.txt.tmp" && mv "$res/phases-long2.txt.tmp" "$res/phases-long2.txt"; }
bash scripts/passkey-table.sh "$out/long2" "$res"
