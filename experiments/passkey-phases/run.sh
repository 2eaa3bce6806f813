# A probe, not the recipe: do the five-stage model's misses at some phases of a 64-token segment go
# when training puts the prompt's lines at every phase? (experiments/passkey-lab-log.md, "Phases of a segment")
#   1. the phase scan (experiments/passkey-phases/passkey-phases.sh, depth 1 at 32 lengths from 8K) of the model shipped
#      until 2026-12-03 (the nine-stage recipe's, scripts/model-at.sh d50a109) and of the five-stage +
#      long2 probe's (experiments/passkey-five-long2/run.sh: FIVE, default runs/recipe-five-1000/long2);
#   2. long3: 600 more steps from that model with long2's flags, new batches (seed 14) and
#      --passkey-lead-bytes 64;
#   3. long3's phase scan, then its table (20 keys per cell, seed 1), 512K and 1M first, and 100 more
#      keys at 1M, depth 1 (seed 3).
#   bash experiments/passkey-phases/run.sh [OUT]   (default runs/lead-probe)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/lead-probe}
res=experiments/passkey-phases
five=${FIVE:-runs/recipe-five-1000/long2}  # the five-stage + long2 model, retrained if missing
[ -f "$five/trained" ] || bash experiments/passkey-five-long2/run.sh "${five%/long2}"
scan() {  # MODEL NAME
  [ -f "$res/phases-$2.txt" ] || { bash experiments/passkey-phases/passkey-phases.sh "$1" >"$res/phases-$2.txt.tmp" && mv "$res/phases-$2.txt.tmp" "$res/phases-$2.txt"; }
}
bash scripts/model-at.sh d50a109 "$out/nine-stage"
scan "$out/nine-stage" nine-stage
scan "$five" five-long2
t0=$(date +%s)
bash scripts/train-stage.sh "$out/long3" 600 --init "$five" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
  --passkey-repeat-keys 0.5 --passkey-lead-bytes 64 --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 \
  --checkpoint-every 100 --seed 14
[ -f "$res/long3.metrics.jsonl" ] || echo "long3 $(($(date +%s) - t0)) s" >>"$res/times.txt"
cp "$out/long3/metrics.jsonl" "$res/long3.metrics.jsonl"
scan "$out/long3" long3
for length in 512K 1M 32K 128K 256K; do
  [ -f "$res/long3-$length.json" ] && continue
  t0=$(date +%s)
  build/infini passkey --model "$out/long3" --lengths $length --depths 0,0.5,1 --trials 20 --json --plot "" \
    >"$res/long3-$length.json.tmp" 2>"$res/long3-$length.log"
  mv "$res/long3-$length.json.tmp" "$res/long3-$length.json"
  echo "long3 table $length $(($(date +%s) - t0)) s" >>"$res/times.txt"
done
[ -f "$res/long3-depth1-seed3.json" ] || { build/infini passkey --model "$out/long3" --lengths 1M --depths 1 \
  --trials 100 --seed 3 --json --plot "" >"$res/long3-depth1-seed3.json.tmp" 2>"$res/long3-depth1-seed3.log" &&
  mv "$res/long3-depth1-seed3.json.tmp" "$res/long3-depth1-seed3.json"; }
