#!/usr/bin/env bash
# The README's first command: install, build, then
#   1. passkey retrieval from 1M tokens with the shipped model (models/passkey-infini-delta, trained from
#      scratch by scripts/passkey-recipe.sh in about 87 minutes): one key at each of three depths, about 3 minutes of reading;
#   2. train the reference model on the shipped sample for about a minute, then generate from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
echo "--- passkey retrieval from 1M tokens (models/passkey-infini-delta)" >&2
build/infini passkey --model models/passkey-infini-delta --lengths 1M --depths 0,0.5,1 --trials 1 --plot ""
model=runs/quickstart
rm -rf "$model"  # the quickstart's own scratch run: each invocation starts afresh
build/infini train --config configs/reference.json --data data/sample/kjv-genesis-exodus.txt \
  --out "$model" --steps 50 --max-seconds 90 --batch 8 --window 512 --lr 3e-3 --warmup 10
prompt="And God said"
echo "--- ${prompt}..." >&2
build/infini generate --model "$model" --prompt "$prompt" --tokens 300 --temperature 0.7 --top-k 40
