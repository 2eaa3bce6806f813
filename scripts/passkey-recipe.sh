#!/usr/bin/env bash
# The passkey recipe, from scratch on this machine (docs/PASSKEY.md, "The recipe"). Its stages:
#   1. lm: the reference config (memory MODE, gate_init -3) as a language model on the KJV + LaTeX
#      corpus: the model the passkey stages fine-tune, as in the paper;
#   2. copy: prompts without filler (256 tokens, one segment), so that finding and copying the key
#      with local attention is learned before the memory has to carry it;
#   3. seg1: the copy model with the memory gates of blocks 1-3 opened to 0.5 (set-gates.py), on
#      512-token prompts whose key line is always in segment 0 and the question in segment 1, so that
#      only the compressive memory can answer;
#   4. virtual: the seg1 model with 64-token segments (every key, even one right before the question,
#      is then read from the memory), prompts at any depth read as if 1K-1M tokens long
#      (--passkey-virtual-tokens), half of their keys with every digit from a pool of 2 or 3
#      (--passkey-repeat-keys 0.5: what follows a digit is told only by the digits before it), each
#      after 0-63 bytes of filler (--passkey-lead-bytes 64: the key line and the question at every
#      phase of a 64-token segment);
#   5. long, long2: more of those steps at 5e-4 on new batches, virtual lengths drawn from 256K to 1M
#      (--passkey-virtual-min-tokens 262144), so that the read is trained as faint as the 1M row meets it;
#   6. long3: more steps on new batches with every key from a pool of 2-3 digits
#      (--passkey-repeat-keys 1): the keys the stages before it miss;
#   7. the table, `infini passkey` at 1M..32K tokens, depths 0, 0.5 and 1 (scripts/passkey-table.sh:
#      OUT/table-LENGTH.json; not part of the recipe's time).
# The final model is OUT/long3, shipped as models/passkey-infini-delta. Why each stage is there, with
# the runs that showed it: docs/PASSKEY.md and experiments/passkey-lab-log.md.
#
#   bash scripts/passkey-recipe.sh [MODE] [OUT] [TRIALS] [LENGTHS]
#   MODE: infini-delta or infini-linear, optionally prefixed by mod- for the Mixture-of-Depths config,
#   then by shift- for memory_key_shift or by conv- for qk_conv 3 (extensions in docs/MODEL.md), e.g.
#   conv-infini-delta, shift-infini-linear, mod-infini-delta; defaults: conv-infini-delta (the shipped
#   model), runs/passkey-recipe-MODE, 20, 1M,32K,128K,256K,512K.
#
# Stages are resumable (scripts/train-stage.sh); OUT/times.txt records each stage's wall time, after
# the matmul peak measured when the script started. Validation and checkpoints come every 100 steps.
# UNTIL=STAGE: stop after that stage (lm, copy, seg1, virtual, long, long2, long3).
# LM_FROM=RUN (a probe, not the recipe): take RUN's lm weights instead of training the lm stage, under
# this MODE's config; it must have the same parameters.
# FT_TOKENS=N: the prompts of stages 4-6 are N to 5N/4 tokens long (default 512).
# SEG1_SEED=N: seg1's seed, which draws its batches (default 5; the linear rule's seg1 stalls at 5 and
# learns at 6).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-conv-infini-delta}
out=${2:-runs/passkey-recipe-$mode}
trials=${3:-20}
lengths=${4:-1M,32K,128K,256K,512K}
base=configs/reference.json memory=$mode shift=
case $memory in mod-*) base=configs/reference-mod.json memory=${memory#mod-} ;; esac
case $memory in
  shift-*) shift=', "memory_key_shift": true' memory=${memory#shift-} ;;
  conv-*) shift=', "qk_conv": 3' memory=${memory#conv-} ;;
esac
case $memory in
  infini-delta | infini-linear) ;;
  *) echo "passkey-recipe.sh: MODE '$mode' is not [mod-][shift-|conv-]infini-delta or [mod-][shift-|conv-]infini-linear" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
mkdir -p "$out"
# Stage times from different hours compare only beside the machine's speed in each (the same stages
# have run 1.36-1.65 times slower in one hour than in another: experiments/passkey-seven-stages), so
# each invocation first records the matmul peak it measures.
echo "$(date -u +%FT%TZ) $(build/infini bench --steps 1 --warmup-steps 0 2>/dev/null | grep 'matmul peak')" >>"$out/times.txt"
timed() {  # NAME, then the command
  local name=$1 t0
  shift
  if [ ! -f "$out/$name/trained" ]; then  # a resumed recipe records only the stages it trains
    t0=$(date +%s)
    "$@"
    echo "$name $(($(date +%s) - t0)) s" >>"$out/times.txt"
  fi
  if [ "$name" = "${UNTIL:-}" ]; then exit 0; fi
}
sed -e "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$memory\"$shift/" -e "s/\"gate_init\": *[-0-9.e]*/\"gate_init\": -3.0/" \
  "$base" >"$out/config.json"
grep -q "\"memory\": \"$memory\"$shift" "$out/config.json"
if [ -n "${LM_FROM:-}" ]; then
  [ -f "$LM_FROM/lm/model.safetensors" ] || { echo "passkey-recipe.sh: LM_FROM: no $LM_FROM/lm/model.safetensors" >&2; exit 2; }
  if [ ! -f "$out/lm/trained" ]; then
    mkdir -p "$out/lm"
    cp "$LM_FROM/lm/model.safetensors" "$LM_FROM/lm/tokenizer.json" "$out/lm/"
    cp "$out/config.json" "$out/lm/config.json"
    echo "lm from $LM_FROM/lm" >"$out/lm/trained"
  fi
  if [ "${UNTIL:-}" = lm ]; then exit 0; fi
else
  timed lm bash scripts/train-stage.sh "$out/lm" 600 --config "$out/config.json" --data data/corpus \
    --batch 4 --window 2048 --lr 2e-3 --warmup 50 --val-every 100 --val-windows 32 --checkpoint-every 100 --seed 1234
fi
timed copy bash scripts/train-stage.sh "$out/copy" 200 --init "$out/lm" --task passkey \
  --window 256 --passkey-min-tokens 256 --batch 32 --lr 1e-3 --warmup 20 --val-every 100 --val-windows 64 \
  --checkpoint-every 100 --seed 1
[ -d "$out/copy-gates0" ] || /usr/bin/python3 scripts/set-gates.py "$out/copy" "$out/copy-gates0" 0 1
timed seg1 bash scripts/train-stage.sh "$out/seg1" 1000 --init "$out/copy-gates0" --task passkey \
  --window 512 --passkey-min-tokens 512 --passkey-max-depth 0.1 --batch 8 --lr 1e-3 --warmup 20 --val-every 100 \
  --val-windows 64 --checkpoint-every 100 --seed "${SEG1_SEED:-5}"
if [ ! -f "$out/seg1-seg64/model.safetensors" ]; then
  mkdir -p "$out/seg1-seg64"
  cp "$out/seg1/model.safetensors" "$out/seg1/tokenizer.json" "$out/seg1-seg64/"
  sed 's/"segment_len": *[0-9]*/"segment_len": 64/' "$out/seg1/config.json" >"$out/seg1-seg64/config.json"
  grep -q '"segment_len": 64' "$out/seg1-seg64/config.json"
fi
# The stages after seg1 share their prompts' format; they differ in virtual lengths, rates and seeds.
ft=${FT_TOKENS:-512}
flags=(--task passkey --window $((ft * 5 / 4)) --passkey-min-tokens "$ft" --passkey-virtual-tokens 1048576
  --passkey-lead-bytes 64
  --batch 8 --warmup 20 --val-every 100 --val-windows 64 --checkpoint-every 100)
timed virtual bash scripts/train-stage.sh "$out/virtual" 1000 --init "$out/seg1-seg64" "${flags[@]}" \
  --passkey-repeat-keys 0.5 --lr 1e-3 --seed 9
timed long bash scripts/train-stage.sh "$out/long" 1000 --init "$out/virtual" "${flags[@]}" \
  --passkey-virtual-min-tokens 262144 --passkey-repeat-keys 0.5 --lr 5e-4 --seed 12
timed long2 bash scripts/train-stage.sh "$out/long2" 600 --init "$out/long" "${flags[@]}" \
  --passkey-virtual-min-tokens 262144 --passkey-repeat-keys 0.5 --lr 5e-4 --seed 13
timed long3 bash scripts/train-stage.sh "$out/long3" 600 --init "$out/long2" "${flags[@]}" \
  --passkey-virtual-min-tokens 262144 --passkey-repeat-keys 1 --lr 5e-4 --seed 14
bash scripts/passkey-table.sh "$out/long3" "$out" "$lengths" "$trials"
cat "$out/times.txt" >&2
