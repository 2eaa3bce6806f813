#!/usr/bin/env bash
# experiments/passkey-lab-log.md, "Repeat keys and near-1M virtual lengths in one stage": the repeat stage (600 steps
# from the seg64 model of commit 7e9de53, seed 11, --passkey-repeat-keys 0.5) with its virtual lengths
# drawn from 256K to 1M (--passkey-virtual-min-tokens 262144) instead of from each prompt's own
# length. Every other draw of its batches is the repeat stage's, so the shipped repeat model is its
# control. Then, key by key against that model, 100 keys at 1M, depth 1 (seed 3). (It missed 4 of
# them, so its 1M row and 8K keys were not measured.)
#
#   bash experiments/passkey-repeat-long/run.sh [RUNS]   (RUNS defaults to runs/repeat-long)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-repeat-long
before=experiments/passkey-repeat-keys
runs=${1:-runs/repeat-long}
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/model-at.sh 7e9de53 "$runs/seg64"
if [ ! -f "$runs/repeat-long/trained" ]; then
  t0=$(date +%s)
  bash scripts/train-stage.sh "$runs/repeat-long" 600 --init "$runs/seg64" --task passkey \
    --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --passkey-virtual-min-tokens 262144 \
    --batch 8 --lr 5e-4 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 11 \
    --weight-decay 0.1 --passkey-repeat-keys 0.5
  echo "repeat-long $(($(date +%s) - t0)) s" >>"$here/times.txt"
  cp "$runs/repeat-long/metrics.jsonl" "$here/repeat-long.metrics.jsonl"
fi
model=$runs/repeat-long
if [ ! -f "$here/depth1.json" ]; then
  build/infini passkey --model "$model" --lengths 1M --depths 1 --trials 100 --seed 3 --json --plot "" \
    >"$here/depth1.json.tmp" 2>"$here/depth1.log"
  mv "$here/depth1.json.tmp" "$here/depth1.json"
fi
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$before/depth1-repeat.json" "$here/depth1.json" | tee "$here/depth1-paired.txt"
