#!/usr/bin/env bash
# The curriculum experiments of experiments/passkey-lab-log.md ("Key one segment back" onwards), from the recipe's
# copy-stage model (scripts/passkey-recipe.sh stages 1-2):
#   copy-gates0  the copy model with the gates of blocks 1-3 opened to 0.5 (scripts/set-gates.py);
#   seg1         512-token prompts, the key line always in segment 0, the question in segment 1:
#                600 steps, then the same run continued to 2,000;
#   mix          512-1024-token prompts at any depth (the key 0-3 segments back): a 1,200-step run
#                stopped at step 750, continued under a 2,400-step schedule and stopped at 801 (mix-801);
#   keys5/keys10 the same 600 steps from mix-801 with the paper's keys (1..50000) and with keys of
#                up to 10 digits: does a longer key teach the memory the digits' order?
#   hot          keys5 at lr 3e-3 without weight decay (do larger memory features come faster?), stopped
#                at step 150 of 600;
#   keys5-shutB  keys5 with block B's memory read shut (gate -30), scored only: which block carries what;
#   shut0/keys5b 400 more steps from keys5, with block 0's memory shut (its bag of digits no longer earns
#                partial credit) and, as the control, as it is; keys5b is also scored at 32K and 1M.
#   virtual      600 steps from keys5b on 1024-1280-token prompts read as if 1K-1M tokens long
#                (--passkey-virtual-tokens), also scored at 32K, 128K and 1M; virtual2 continues it to 1,200.
# Each model is then scored by `infini passkey` at 512..8K tokens (OUT/NAME.passkey.json).
#
#   bash experiments/passkey-curriculum/passkey-curriculum.sh [OUT]   (default runs/passkey-infini-delta)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/passkey-infini-delta}
[ -f "$out/copy/model.safetensors" ] || { echo "run stages 1-2 of scripts/passkey-recipe.sh first ($out/copy)" >&2; exit 1; }
[ -d "$out/copy-gates0" ] || /usr/bin/python3 scripts/set-gates.py "$out/copy" "$out/copy-gates0" 0 1
stage() {  # NAME STEPS, then `infini train` flags
  local name=$1 steps=$2
  shift 2
  bash scripts/train-stage.sh "$out/$name" "$steps" --task passkey --val-windows 64 --checkpoint-every 50 \
    --lr 1e-3 --warmup 20 --batch 8 "$@"
}
score_table() {  # NAME MODEL LENGTHS DEPTHS TRIALS: one `infini passkey` table, OUT/NAME.passkey.json
  [ -s "$out/$1.passkey.json" ] && return 0
  build/infini passkey --model "$out/$2" --lengths "$3" --depths "$4" --trials "$5" --json \
    --plot "$out/$1.passkey.png" >"$out/$1.passkey.json.tmp" 2>"$out/$1.passkey.log"
  mv "$out/$1.passkey.json.tmp" "$out/$1.passkey.json"
}
score() { score_table "$1" "$1" 512,1K,2K,8K 0,0.5,1 10; }  # NAME: the short grid
stage seg1 600 --init "$out/copy-gates0" --window 512 --passkey-min-tokens 512 --passkey-max-depth 0.1 \
  --val-every 25 --seed 5
stage seg1 2000
score seg1
if [ ! -d "$out/mix-801" ]; then
  rm -rf "$out/mix"
  build/infini train --out "$out/mix" --steps 1200 --stop-after 750 --init "$out/seg1" --task passkey \
    --window 1024 --passkey-min-tokens 512 --batch 8 --lr 1e-3 --warmup 20 --val-every 50 --val-windows 64 \
    --checkpoint-every 50 --seed 6 2>&1 | tee "$out/mix.log" >&2
  build/infini train --resume "$out/mix" --steps 2400 --stop-after 51 2>&1 | tee -a "$out/mix.log" >&2
  cp -r "$out/mix" "$out/mix-801"
fi
score mix-801
for keys in 5 10; do
  max=50000
  [ "$keys" = 10 ] && max=9999999999
  stage "keys$keys" 600 --init "$out/mix-801" --window 1024 --passkey-min-tokens 512 --val-every 50 --seed 7 \
    --passkey-key-max "$max"
  score "keys$keys"
done
[ -f "$out/hot/model.safetensors" ] || build/infini train --out "$out/hot" --steps 600 --stop-after 150 \
  --init "$out/mix-801" --task passkey --window 1024 --passkey-min-tokens 512 --batch 8 --lr 3e-3 --weight-decay 0 \
  --warmup 20 --val-every 50 --val-windows 64 --checkpoint-every 50 --seed 7 2>&1 | tee "$out/hot.log" >&2
# Which block's memory carries the key: keys5 with one block's memory read shut (gate -30).
for block in 0 1 2 3; do
  [ -d "$out/keys5-shut$block" ] || /usr/bin/python3 scripts/set-gates.py "$out/keys5" "$out/keys5-shut$block" -30 "$block" "$block"
  score "keys5-shut$block"
done
for arm in shut0 keys5b; do
  init="$out/keys5"
  [ "$arm" = shut0 ] && init="$out/keys5-shut0"
  stage "$arm" 400 --init "$init" --window 1024 --passkey-min-tokens 512 --val-every 50 --seed 8
  score "$arm"
done
# The control at 32K and 1M tokens (two keys per cell: a 1M read takes about a minute and a half).
score_table keys5b-1M keys5b 32K,1M 0,0.5 2
# Virtual length: 1024-1280-token prompts read as if 1K-1M tokens long (--passkey-virtual-tokens), so
# that the read is trained against a normaliser as large as at 1M tokens. Scored at 32K, 128K and 1M.
stage virtual 600 --init "$out/keys5b" --window 1280 --passkey-min-tokens 1024 --passkey-virtual-tokens 1048576 \
  --val-every 50 --seed 9
score virtual
score_table virtual-long virtual 32K,128K,1M 0,0.5,1 3
# virtual2: the same run continued for 600 more steps (its schedule stretched to 1,200).
[ -d "$out/virtual2" ] || cp -r "$out/virtual" "$out/virtual2"
stage virtual2 1200
score virtual2
score_table virtual2-long virtual2 32K,128K,1M 0,0.5,1 3
