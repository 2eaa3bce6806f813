#!/usr/bin/env bash
# The passkey recipe, from scratch on this machine (docs/PASSKEY.md):
#   1. lm: the reference config (memory MODE, gate_init -3) as a language model on the KJV + LaTeX
#      corpus, the memory-mode comparison's recipe;
#   2. copy: passkey prompts without filler (256 tokens: one segment), so the model learns to find
#      and copy the key with local attention alone;
#   3. short: prompts of 350-1024 tokens, the key up to 3 segments back;
#   4. long: prompts of 1K-5K tokens (the paper fine-tunes on 5K), the key up to 19 segments back,
#      so only the compressive memory can bring it to the question;
#   5. `infini passkey` at 32K..1M tokens, depths 0, 0.5 and 1.
#
#   bash scripts/passkey-recipe.sh [MODE] [OUT] [TRIALS]
#   (defaults: infini-delta, runs/passkey-MODE, 20)
#
# Stages are resumable (scripts/train-stage.sh); OUT/times.txt records each stage's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-infini-delta}
out=${2:-runs/passkey-$mode}
trials=${3:-20}
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
mkdir -p "$out"
timed() {  # NAME, then the command
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
}
sed -e "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$mode\"/" -e "s/\"gate_init\": *[-0-9.e]*/\"gate_init\": -3.0/" \
  configs/reference.json >"$out/config.json"
grep -q "\"memory\": \"$mode\"" "$out/config.json"
timed lm bash scripts/train-stage.sh "$out/lm" 600 --config "$out/config.json" --data data/corpus \
  --batch 4 --window 2048 --lr 2e-3 --warmup 50 --val-every 50 --val-windows 32 --checkpoint-every 50 --seed 1234
timed copy bash scripts/train-stage.sh "$out/copy" 400 --init "$out/lm" --task passkey \
  --window 256 --passkey-min-tokens 256 --batch 32 --lr 1e-3 --warmup 20 --val-every 25 --val-windows 64 \
  --checkpoint-every 50 --seed 1
timed short bash scripts/train-stage.sh "$out/short" 400 --init "$out/copy" --task passkey \
  --window 1024 --passkey-min-tokens 350 --batch 8 --lr 1e-3 --warmup 20 --val-every 25 --val-windows 64 \
  --checkpoint-every 50 --seed 3
timed long bash scripts/train-stage.sh "$out/long" 300 --init "$out/short" --task passkey \
  --window 5120 --passkey-min-tokens 1024 --batch 4 --lr 5e-4 --warmup 20 --val-every 25 --val-windows 32 \
  --checkpoint-every 25 --seed 2
timed eval sh -c "build/infini passkey --model '$out/long' --lengths 32K,128K,256K,512K,1M --depths 0,0.5,1 \
  --trials $trials --json --plot '$out/passkey.png' >'$out/passkey.json.tmp' && mv '$out/passkey.json.tmp' '$out/passkey.json'"
cat "$out/times.txt" >&2
