# A probe, not the recipe: a five-stage recipe meant to bring the nine-stage one (about 144 minutes)
# near the issue's 90 (experiments/passkey-lab-log.md, "Five stages instead of nine"). lm, copy and seg1 are the
# recipe's; then, from seg1 with 64-token segments, `virtual` with repeated-digit keys (1,000 steps,
# replacing mix, virtual, seg64 and repeat) and `long` at virtual lengths of 256K..1M (800 steps,
# replacing long and long2). Then the table, 1M first, and 100 keys at 1M, depth 1 (seed 3).
#   bash experiments/passkey-five-stages/run.sh [OUT] [RESULTS] [LONG_STEPS]
#   (defaults runs/recipe-short, this folder, 800; experiments/passkey-five-long1000 holds the
#   run with LONG_STEPS 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/recipe-short}
res=${2:-experiments/passkey-five-stages}
long_steps=${3:-800}
UNTIL=seg1 bash scripts/passkey-recipe.sh conv-infini-delta "$out"
if [ ! -f "$out/seg1-seg64/model.safetensors" ]; then
  mkdir -p "$out/seg1-seg64"
  cp "$out/seg1/model.safetensors" "$out/seg1/tokenizer.json" "$out/seg1-seg64/"
  sed 's/"segment_len": *[0-9]*/"segment_len": 64/' "$out/seg1/config.json" >"$out/seg1-seg64/config.json"
  grep -q '"segment_len": 64' "$out/seg1-seg64/config.json"
fi
timed() {  # NAME, then the command; the wall time goes beside the recipe's stages
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
}
timed virtual bash scripts/train-stage.sh "$out/virtual" 1000 --init "$out/seg1-seg64" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-repeat-keys 0.5 \
  --batch 8 --lr 1e-3 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 9
timed long bash scripts/train-stage.sh "$out/long" "$long_steps" --init "$out/virtual" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
  --passkey-repeat-keys 0.5 --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 \
  --checkpoint-every 100 --seed 12
mkdir -p "$res"
for stage in lm copy seg1 virtual long; do cp "$out/$stage/metrics.jsonl" "$res/$stage.metrics.jsonl"; done
cp "$out/times.txt" "$res/recipe-times.txt"
cp "$out/long/config.json" "$res/config.json"
bash scripts/passkey-table.sh "$out/long" "$res"
[ -f "$res/depth1-seed3.json" ] || build/infini passkey --model "$out/long" --lengths 1M --depths 1 \
  --trials 100 --seed 3 --json --plot "" >"$res/depth1-seed3.json.tmp"
[ -f "$res/depth1-seed3.json" ] || mv "$res/depth1-seed3.json.tmp" "$res/depth1-seed3.json"
