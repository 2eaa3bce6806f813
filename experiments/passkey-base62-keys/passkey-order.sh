#!/usr/bin/env bash
# Does a key whose symbols rarely repeat teach the memory the order of what it recalls? With decimal
# keys the memory returns the key's digits but not their order (experiments/passkey-lab-log.md); a digit's
# predecessor is often ambiguous (11225), and every example holds only four ordered digits. Keys in
# base 62 (--passkey-key-alphabet alnum) have a unique predecessor for nearly every symbol.
# From the recipe's seg1 model (scripts/passkey-recipe.sh), two arms of 600 steps in seg1's format
# (512-token prompts, the key line in segment 0, the question in segment 1):
#   order-decimal  600 steps with the paper's decimal keys: the control;
#   order-alnum    400 steps with 5-6-symbol base-62 keys, then order-alnum-decimal: 200 steps with
#                  decimal keys.
# Each model is then scored by `infini passkey` at 512..8K tokens (OUT/NAME.passkey.json).
#
#   bash experiments/passkey-base62-keys/passkey-order.sh [RECIPE_OUT]   (default runs/passkey-recipe-infini-delta)
# --passkey-key-alphabet was removed after commit dfe01e6, so this runs on a checkout of that commit
# (`git checkout dfe01e6`; its scripts were then in scripts/).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/passkey-recipe-infini-delta}
[ -f "$out/seg1/trained" ] || { echo "run scripts/passkey-recipe.sh through its seg1 stage first ($out/seg1)" >&2; exit 1; }
stage() {  # NAME STEPS, then `infini train` flags
  local name=$1 steps=$2
  shift 2
  bash scripts/train-stage.sh "$out/$name" "$steps" --task passkey --window 512 --passkey-min-tokens 512 \
    --passkey-max-depth 0.1 --batch 8 --lr 1e-3 --warmup 20 --val-every 50 --val-windows 64 --checkpoint-every 50 "$@"
}
score() {  # NAME: the short grid, 10 keys per cell
  [ -s "$out/$1.passkey.json" ] && return 0
  build/infini passkey --model "$out/$1" --lengths 512,1K,2K,8K --depths 0,0.5,1 --trials 10 --json \
    --plot "$out/$1.passkey.png" >"$out/$1.passkey.json.tmp" 2>"$out/$1.passkey.log"
  mv "$out/$1.passkey.json.tmp" "$out/$1.passkey.json"
}
stage order-decimal 600 --init "$out/seg1" --seed 11
score order-decimal
# 62^4 .. 62^6 - 1: keys of 5 or 6 symbols.
stage order-alnum 400 --init "$out/seg1" --seed 11 --passkey-key-alphabet alnum --passkey-key-min 14776336 \
  --passkey-key-max 56800235583
stage order-alnum-decimal 200 --init "$out/order-alnum" --seed 12
score order-alnum-decimal
python3 experiments/passkey-curriculum/passkey-answers.py "$out/order-decimal.passkey.json" "$out/order-alnum-decimal.passkey.json"
