#!/usr/bin/env bash
# The nine-stage recipe's seg64 stage at 300 steps (experiments/passkey-lab-log.md, "Depth 1"), from
# the virtual model of that recipe with segment_len 64 (runs/passkey-recipe-conv-infini-delta/virtual-seg64:
# `git show d50a109:scripts/passkey-recipe.sh` through its virtual stage), then its 1M row.
set -e
cd "$(dirname "$0")/../.."
t0=$(date +%s)
bash scripts/train-stage.sh runs/seg64-300/seg64 300 --init runs/passkey-recipe-conv-infini-delta/virtual-seg64 --task passkey --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 --batch 8 --lr 5e-4 --warmup 20 --val-every 50 --val-windows 64 --checkpoint-every 50 --seed 10
echo "seg64-300 $(($(date +%s) - t0)) s" > runs/seg64-300/times.txt
t0=$(date +%s)
build/infini passkey --model runs/seg64-300/seg64 --lengths 1M --depths 0,0.5,1 --trials 20 --json --plot "" > runs/seg64-300/passkey.json.tmp && mv runs/seg64-300/passkey.json.tmp runs/seg64-300/passkey.json
echo "eval $(($(date +%s) - t0)) s" >> runs/seg64-300/times.txt
