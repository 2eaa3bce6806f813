# A probe, not the recipe: the virtual stage trained with 64-token segments from the start, in place
# of `virtual` (256-token segments, 1,000 steps) then `seg64` (300 steps). If 800 steps of it match the
# shipped model, the recipe drops to about 89 minutes (lm..mix 55.5 min + about 33 min).
# Starts from the delta recipe's mix stage (runs/passkey-recipe-conv-infini-delta/mix), or FROM's: mix
# is a stage of the nine-stage recipe, `git show d50a109:scripts/passkey-recipe.sh`.
#   [FROM=MIX_DIR] [OUT=DIR] bash experiments/passkey-virtual64/run.sh [STEPS] [EVALS]
# EVALS: LENGTH:TRIALS pairs, each an `infini passkey` run at depths 0, 0.5 and 1 into
# LENGTH.passkey.json (default "32K:40 1M:20"). Misses are one digit of a key with a repeated digit
# at every length, so 32K with many keys measures the miss rate cheaply; 1M is the table's row.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-800}
evals=${2:-32K:40 1M:20}
out=${OUT:-runs/virtual64-$steps}
from=${FROM:-runs/passkey-recipe-conv-infini-delta/mix}
[ -f "$from/model.safetensors" ] || { echo "virtual64: no $from/model.safetensors: run the nine-stage recipe (git show d50a109:scripts/passkey-recipe.sh) through mix first" >&2; exit 2; }
mkdir -p "$out/mix-seg64"
cp "$from/model.safetensors" "$from/tokenizer.json" "$out/mix-seg64/"
sed 's/"segment_len": *[0-9]*/"segment_len": 64/' "$from/config.json" >"$out/mix-seg64/config.json"
grep -q '"segment_len": 64' "$out/mix-seg64/config.json"
t0=$(date +%s)
bash scripts/train-stage.sh "$out/virtual64" "$steps" --init "$out/mix-seg64" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --batch 8 --lr 1e-3 --warmup 20 \
  --val-every 50 --val-windows 64 --checkpoint-every 50 --seed 9
echo "virtual64 $(($(date +%s) - t0)) s" >>"$out/times.txt"
for e in $evals; do
  length=${e%%:*} trials=${e#*:}
  t0=$(date +%s)
  build/infini passkey --model "$out/virtual64" --lengths "$length" --depths 0,0.5,1 --trials "$trials" --json \
    --plot "" >"$out/$length.passkey.json.tmp" 2>"$out/$length.passkey.err"
  mv "$out/$length.passkey.json.tmp" "$out/$length.passkey.json"
  echo "eval $length x $trials $(($(date +%s) - t0)) s" >>"$out/times.txt"
done
