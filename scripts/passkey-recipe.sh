#!/usr/bin/env bash
# The passkey recipe, from scratch on this machine (docs/PASSKEY.md):
#   1. lm: the reference config (memory MODE, gate_init -3) as a language model on the KJV + LaTeX
#      corpus, the memory-mode comparison's recipe;
#   2. short: passkey fine-tuning on prompts of 350-600 tokens (the key at most a segment or two
#      back), so the model learns to copy the key before it must remember it;
#   3. long: passkey fine-tuning on prompts of 1K-5K tokens (the paper fine-tunes on 5K), the key up
#      to 19 segments back, so only the compressive memory can bring it to the question;
#   4. `infini passkey` at 32K..1M tokens, depths 0, 0.5 and 1.
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
timed short bash scripts/train-stage.sh "$out/short" 400 --init "$out/lm" --task passkey \
  --window 600 --passkey-min-tokens 350 --batch 16 --lr 1e-3 --warmup 20 --val-every 25 --val-windows 64 \
  --checkpoint-every 50 --seed 1
timed long bash scripts/train-stage.sh "$out/long" 300 --init "$out/short" --task passkey \
  --window 5120 --passkey-min-tokens 1024 --batch 4 --lr 5e-4 --warmup 20 --val-every 25 --val-windows 32 \
  --checkpoint-every 25 --seed 2
timed eval sh -c "build/infini passkey --model '$out/long' --lengths 32K,128K,256K,512K,1M --depths 0,0.5,1 \
  --trials $trials --json --plot '$out/passkey.png' >'$out/passkey.json.tmp' && mv '$out/passkey.json.tmp' '$out/passkey.json'"
cat "$out/times.txt" >&2
