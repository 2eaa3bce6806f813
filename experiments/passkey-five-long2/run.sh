# A probe, not the recipe: the five-stage recipe with `long` at 1,000 steps
# (experiments/passkey-five-long1000, retrained by its run.sh into OUT if OUT lacks it), then
# `long2`: 600 more steps at virtual lengths of 256K..1M on new batches (seed 13), as the nine-stage
# recipe's long2 followed its long. Then the 1M row (20 keys per cell, seed 1) and 100 keys at 1M,
# depth 1 (seed 3), for this model and for `long` before it.
#   bash experiments/passkey-five-long2/run.sh [OUT]   (default runs/recipe-five-1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/recipe-five-1000}
res=experiments/passkey-five-long2
[ -f "$out/long/trained" ] || bash experiments/passkey-five-stages/run.sh "$out" experiments/passkey-five-long1000 1000
seed3() {  # MODEL JSON: 100 keys at 1M, depth 1, seed 3
  [ -f "$2" ] || { build/infini passkey --model "$1" --lengths 1M --depths 1 --trials 100 --seed 3 --json --plot "" \
    >"$2.tmp" 2>"${2%.json}.log" && mv "$2.tmp" "$2"; }
}
seed3 "$out/long" experiments/passkey-five-long1000/depth1-seed3.json
t0=$(date +%s)
bash scripts/train-stage.sh "$out/long2" 600 --init "$out/long" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
  --passkey-repeat-keys 0.5 --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 \
  --checkpoint-every 100 --seed 13
[ -f "$res/long2.metrics.jsonl" ] || echo "long2 $(($(date +%s) - t0)) s" >>"$res/times.txt"
cp "$out/long2/metrics.jsonl" "$res/long2.metrics.jsonl"
[ -f "$res/table-1M.json" ] || { build/infini passkey --model "$out/long2" --lengths 1M --depths 0.5,1,0 --trials 20 \
  --json --plot "" >"$res/table-1M.json.tmp" 2>"$res/table-1M.log" && mv "$res/table-1M.json.tmp" "$res/table-1M.json"; }
seed3 "$out/long2" "$res/depth1-seed3.json"
