# A probe: the six-stage recipe's model (run.sh) missed one key at 1M, depth 0 (46661 as " 46610"),
# and its stages took 78.8 minutes, so 300 steps of a seventh stage, long3 (long2's flags, new
# batches: seed 14), fit the issue's aim of about 90. Then its table, 1M first.
#   bash experiments/passkey-six-stages/long3-300.sh [OUT]
#   (OUT as run.sh's, default runs/recipe-six-lead-conv-infini-delta; the long3 flags are those of
#   scripts/passkey-recipe.sh's long3 stage, spelled out so that this record runs on its own;
#   REPEAT=1 draws every key from a pool of 2-3 digits (--passkey-repeat-keys 1, not 0.5), into
#   OUT/long3-300-repeat1 and results ...-long3-300-repeat1: the misses are keys with a repeated digit)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/recipe-six-lead-conv-infini-delta}
repeat=${REPEAT:-0.5} name=long3-300
[ "$repeat" = 0.5 ] || name=long3-300-repeat$repeat
res=experiments/passkey-six-stages/conv-infini-delta-$name
[ -f "$out/long2/trained" ] || { echo "long3-300.sh: no $out/long2/trained: run run.sh first" >&2; exit 2; }
mkdir -p "$res"
t0=$(date +%s)
bash scripts/train-stage.sh "$out/$name" 300 --init "$out/long2" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
  --passkey-repeat-keys "$repeat" --passkey-lead-bytes 64 --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 \
  --checkpoint-every 100 --seed 14
[ -f "$res/$name.metrics.jsonl" ] || echo "$name $(($(date +%s) - t0)) s" >>"$res/recipe-times.txt"
cp "$out/$name/metrics.jsonl" "$res/$name.metrics.jsonl"
bash scripts/passkey-table.sh "$out/$name" "$res"
