#!/usr/bin/env bash
# experiments/passkey-lab-log.md, "A second stage at near-1M virtual lengths": 600 more steps from the probe of
# experiments/passkey-long-virtual (runs/long-virtual/long) with its flags and new batches (seed 13).
# Then 100 keys at 1M, depth 1 that neither it nor that probe has met (seed 4), for both, key by key;
# its 32K..1M table (20 keys per cell, seed 1: scripts/passkey-table.sh); and, key by key against the
# shipped repeat model's answers in experiments/passkey-repeat-keys, 100 keys at 1M, depth 1 (seed 3)
# and 600 at 8K (seeds 1 and 2); then 20 more keys at 1M for depths 0.5 and 0 (seed 2).
#
#   bash experiments/passkey-long-twice/run.sh [RUNS]   (RUNS defaults to runs/long-twice; the probe
#   must be in runs/long-virtual/long: bash experiments/passkey-long-virtual/run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-long-twice
runs=${1:-runs/long-twice}
probe=runs/long-virtual/long
[ -f "$probe/trained" ] || { echo "long-twice/run.sh: no $probe; run experiments/passkey-long-virtual/run.sh first" >&2; exit 2; }
bash scripts/install-deps.sh
bash scripts/build.sh
if [ ! -f "$runs/long2/trained" ]; then
  t0=$(date +%s)
  bash scripts/train-stage.sh "$runs/long2" 600 --init "$probe" --task passkey \
    --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
    --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 13 \
    --weight-decay 0.1 --passkey-repeat-keys 0.5
  echo "long2 $(($(date +%s) - t0)) s" >>"$here/times.txt"
  cp "$runs/long2/metrics.jsonl" "$here/long2.metrics.jsonl"
fi
for arm in long:$probe long2:$runs/long2; do
  [ -f "$here/depth1-seed4-${arm%%:*}.json" ] && continue
  build/infini passkey --model "${arm#*:}" --lengths 1M --depths 1 --trials 100 --seed 4 --json --plot "" \
    >"$here/depth1-seed4-${arm%%:*}.json.tmp" 2>"$here/depth1-seed4-${arm%%:*}.log"
  mv "$here/depth1-seed4-${arm%%:*}.json.tmp" "$here/depth1-seed4-${arm%%:*}.json"
done
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$here/depth1-seed4-long.json" "$here/depth1-seed4-long2.json" | tee "$here/depth1-seed4-paired.txt"
bash scripts/passkey-table.sh "$runs/long2" "$here"
before=experiments/passkey-repeat-keys
if [ ! -f "$here/depth1-seed3.json" ]; then
  build/infini passkey --model "$runs/long2" --lengths 1M --depths 1 --trials 100 --seed 3 --json --plot "" \
    >"$here/depth1-seed3.json.tmp" 2>"$here/depth1-seed3.log"
  mv "$here/depth1-seed3.json.tmp" "$here/depth1-seed3.json"
fi
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$before/depth1-repeat.json" "$here/depth1-seed3.json" | tee "$here/depth1-seed3-paired.txt"
for seed in 1 2; do
  [ -f "$here/8k-seed$seed.json" ] && continue
  build/infini passkey --model "$runs/long2" --lengths 8K --depths 0,0.5,1 --trials 100 --seed $seed --json \
    --plot "" >"$here/8k-seed$seed.json.tmp" 2>/dev/null
  mv "$here/8k-seed$seed.json.tmp" "$here/8k-seed$seed.json"
done
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$before/repeat-seed1.json" "$here/8k-seed1.json" \
  "$before/repeat-seed2.json" "$here/8k-seed2.json" | tee "$here/8k-paired.txt"
# 20 more keys at 1M for depths 0.5 and 0 (seed 2), the cells whose keys cost a whole read each.
if [ ! -f "$here/1m-seed2.json" ]; then
  build/infini passkey --model "$runs/long2" --lengths 1M --depths 0.5,0 --trials 20 --seed 2 --json --plot "" \
    >"$here/1m-seed2.json.tmp" 2>"$here/1m-seed2.log"
  mv "$here/1m-seed2.json.tmp" "$here/1m-seed2.json"
fi
