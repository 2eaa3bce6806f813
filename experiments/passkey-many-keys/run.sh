#!/usr/bin/env bash
# experiments/passkey-lab-log.md, "Keys by the hundred": the shipped model's answers to 600 keys at 8K tokens (two
# seeds of 100 keys at depths 0, 0.5 and 1), and the same for two 600-step continuations of its seg64
# stage on the same batches (seed 11): weight decay 0.1, as in the recipe, and 0. Then each
# continuation against the shipped model, key by key.
#
#   bash experiments/passkey-many-keys/run.sh [RUNS]   (RUNS defaults to runs/many-keys)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-many-keys
runs=${1:-runs/many-keys}
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/model-at.sh 7e9de53 "$runs/shipped"  # the shipped model when this ran
for arm in more:0.1 wd0:0; do
  bash scripts/train-stage.sh "$runs/${arm%%:*}" 600 --init "$runs/shipped" --task passkey \
    --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --batch 8 --lr 5e-4 --warmup 20 \
    --val-every 100 --val-windows 64 --checkpoint-every 100 --seed 11 --weight-decay "${arm#*:}"
  cp "$runs/${arm%%:*}/metrics.jsonl" "$here/${arm%%:*}.metrics.jsonl"
done
for model in shipped:$runs/shipped more:$runs/more wd0:$runs/wd0; do
  for seed in 1 2; do
    build/infini passkey --model "${model#*:}" --lengths 8K --depths 0,0.5,1 --trials 100 --seed $seed --json \
      --plot "" >"$here/${model%%:*}-seed$seed.json.tmp" 2>/dev/null
    mv "$here/${model%%:*}-seed$seed.json.tmp" "$here/${model%%:*}-seed$seed.json"
  done
done
for arm in more wd0; do
  /usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$here/shipped-seed1.json" "$here/$arm-seed1.json" \
    "$here/shipped-seed2.json" "$here/$arm-seed2.json" | tee "$here/shipped-vs-$arm.txt"
done
