#!/usr/bin/env bash
# The 32K..1M x depth 0, 0.5, 1 table of one model, 20 keys per cell (seed 1: the keys of every shipped
# model's table), one length at a time, 1M first and its depth 0.5 first (the cell most often missed),
# so that a miss there shows within minutes. Each length's JSON and log go to DIR/table-LENGTH.*, its
# wall time to DIR/times.txt; lengths already in DIR are skipped, so an interrupted table resumes.
# LENGTHS (comma-separated, in the order run) and TRIALS default to 1M,32K,128K,256K,512K and 20.
#
# INFINI names the binary (default build/infini).
#
#   bash scripts/passkey-table.sh MODEL DIR [LENGTHS] [TRIALS]
set -euo pipefail
[ $# -ge 2 ] && [ $# -le 4 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
model=$1 dir=$2 lengths=${3:-1M,32K,128K,256K,512K} trials=${4:-20}
cd "$(dirname "$0")/.."
[ -f "$model/model.safetensors" ] || { echo "passkey-table.sh: MODEL: no $model/model.safetensors" >&2; exit 2; }
mkdir -p "$dir"
for length in ${lengths//,/ }; do
  [ -f "$dir/table-$length.json" ] && continue
  depths=0,0.5,1
  [ $length = 1M ] && depths=0.5,1,0
  t0=$(date +%s)
  "${INFINI:-build/infini}" passkey --model "$model" --lengths $length --depths $depths --trials "$trials" --json --plot "" \
    >"$dir/table-$length.json.tmp" 2>"$dir/table-$length.log"
  mv "$dir/table-$length.json.tmp" "$dir/table-$length.json"
  echo "table $length $(($(date +%s) - t0)) s" >>"$dir/times.txt"
done
