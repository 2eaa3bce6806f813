#!/usr/bin/env bash
# experiments/passkey-lab-log.md, "Keys with repeated digits in training": the many-keys experiment's weight-decay-0.1
# continuation (600 more seg64 steps from the shipped model, seed 11) with half of its keys made of
# only 2 or 3 distinct digits (--passkey-repeat-keys 0.5). Every other draw of its batches (lengths,
# depths, virtual lengths, the other half's keys) is that run's, so the two differ in the keys alone.
# Then its answers to the 600 keys at 8K of experiments/passkey-many-keys, key by key against the
# shipped model's and that continuation's.
#
#   bash experiments/passkey-repeat-keys/run.sh [RUNS]   (RUNS defaults to runs/repeat-keys)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-repeat-keys
keys=experiments/passkey-many-keys
runs=${1:-runs/repeat-keys}
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/model-at.sh 7e9de53 "$runs/seg64"  # the shipped model when this ran
t0=$(date +%s)
bash scripts/train-stage.sh "$runs/repeat" 600 --init "$runs/seg64" --task passkey \
  --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --batch 8 --lr 5e-4 --warmup 20 \
  --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 11 --weight-decay 0.1 --passkey-repeat-keys 0.5
echo "repeat $(($(date +%s) - t0)) s" >"$here/times.txt"
cp "$runs/repeat/metrics.jsonl" "$here/repeat.metrics.jsonl"
for seed in 1 2; do
  build/infini passkey --model "$runs/repeat" --lengths 8K --depths 0,0.5,1 --trials 100 --seed $seed --json \
    --plot "" >"$here/repeat-seed$seed.json.tmp" 2>/dev/null
  mv "$here/repeat-seed$seed.json.tmp" "$here/repeat-seed$seed.json"
done
for arm in shipped more; do
  /usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$keys/$arm-seed1.json" "$here/repeat-seed1.json" \
    "$keys/$arm-seed2.json" "$here/repeat-seed2.json" | tee "$here/$arm-vs-repeat.txt"
done
