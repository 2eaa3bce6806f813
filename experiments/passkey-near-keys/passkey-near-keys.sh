#!/usr/bin/env bash
# Where a passkey model loses keys: those near the question (in its own segment, read by the local
# attention) against those segments back (read from the memory), on short inputs, in seconds.
#   1. greedy, as `infini passkey` scores: 1K-4K tokens, the key at depths 0 .. 1, 10 keys per cell;
#   2. teacher-forced answer accuracy on the recipe's virtual-stage prompts (1024-1280 tokens read as
#      up to 1M long), the key at depth 0-0.6 (segments back) and at 0.9-1 (mostly the question's
#      segment): one `infini train` step at a learning rate of 1e-12, whose validation is the
#      measurement (the weights move by less than float32 can show).
#
#   bash experiments/passkey-near-keys/passkey-near-keys.sh MODEL OUT
#
# Writes OUT/near.passkey.json and OUT/teacher-forced.txt ("MIN-MAX accuracy" lines).
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
model=$1 out=$2
cd "$(dirname "$0")/../.."
[ -f "$model/config.json" ] || { echo "passkey-near-keys.sh: $model is not a model folder (no config.json)" >&2; exit 2; }
mkdir -p "$out"
build/infini passkey --model "$model" --lengths 1K,2K,4K --depths 0,0.5,0.9,0.97,1 --trials 10 --json \
  --plot "" >"$out/near.passkey.json.tmp"
mv "$out/near.passkey.json.tmp" "$out/near.passkey.json"
: >"$out/teacher-forced.txt.tmp"
for range in 0-0.6 0.9-1; do
  run=$(mktemp -d)
  build/infini train --init "$model" --out "$run/r" --task passkey --window 1280 --passkey-min-tokens 1024 \
    --passkey-min-depth "${range%-*}" --passkey-max-depth "${range#*-}" --passkey-virtual-tokens 1048576 \
    --steps 1 --lr 1e-12 --val-every 1 --val-windows 64 --batch 8 --seed 3 --quiet
  echo "$range $(sed -n 's/.*"val_accuracy":\([0-9.]*\).*/\1/p' "$run/r/metrics.jsonl" | tail -n 1)" >>"$out/teacher-forced.txt.tmp"
  rm -rf "$run"
done
mv "$out/teacher-forced.txt.tmp" "$out/teacher-forced.txt"
cat "$out/teacher-forced.txt" >&2
