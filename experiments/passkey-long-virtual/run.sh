#!/usr/bin/env bash
# experiments/passkey-lab-log.md, "Virtual lengths near 1M": 600 more steps from the shipped model of commit f4d7245
# (the repeat stage's) with its flags, but new batches (seed 12) read as if 256K to 1M tokens long
# (--passkey-virtual-min-tokens 262144) instead of from each prompt's own length. Then its answers to
# the 100 keys at 1M, depth 1 and the 600 keys at 8K of experiments/passkey-repeat-keys, key by key.
#
#   bash experiments/passkey-long-virtual/run.sh [RUNS]   (RUNS defaults to runs/long-virtual)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-long-virtual
before=experiments/passkey-repeat-keys
runs=${1:-runs/long-virtual}
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/model-at.sh f4d7245 "$runs/repeat"  # the shipped model when this ran
t0=$(date +%s)
bash scripts/train-stage.sh "$runs/long" 600 --init "$runs/repeat" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
  --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 12 \
  --weight-decay 0.1 --passkey-repeat-keys 0.5
echo "long $(($(date +%s) - t0)) s" >"$here/times.txt"
cp "$runs/long/metrics.jsonl" "$here/long.metrics.jsonl"
build/infini passkey --model "$runs/long" --lengths 1M --depths 1 --trials 100 --seed 3 --json --plot "" \
  >"$here/depth1-long.json.tmp" 2>"$here/depth1-long.log"
mv "$here/depth1-long.json.tmp" "$here/depth1-long.json"
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$before/depth1-repeat.json" "$here/depth1-long.json" | tee "$here/depth1-paired.txt"
for seed in 1 2; do
  build/infini passkey --model "$runs/long" --lengths 8K --depths 0,0.5,1 --trials 100 --seed $seed --json \
    --plot "" >"$here/long-seed$seed.json.tmp" 2>/dev/null
  mv "$here/long-seed$seed.json.tmp" "$here/long-seed$seed.json"
done
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$before/repeat-seed1.json" "$here/long-seed1.json" \
  "$before/repeat-seed2.json" "$here/long-seed2.json" | tee "$here/8k-paired.txt"
# The 1M row, 20 keys per cell (the keys of the shipped models' tables: seed 1), the cell the repeat
# model missed (depth 0.5) first.
build/infini passkey --model "$runs/long" --lengths 1M --depths 0.5,1,0 --trials 20 --json --plot "" \
  >"$here/1m.json.tmp" 2>"$here/1m.log"
mv "$here/1m.json.tmp" "$here/1m.json"
