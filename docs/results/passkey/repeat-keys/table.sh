#!/usr/bin/env bash
# The 32K..1M x depth table (20 keys per cell, the keys of the earlier shipped model's table: seed 1)
# of the repeat-keys model, one length at a time, 1M first; each length's JSON in this folder.
#
#   bash docs/results/passkey/repeat-keys/table.sh [MODEL]   (MODEL defaults to runs/repeat-keys/repeat)
set -euo pipefail
cd "$(dirname "$0")/../../../.."
here=docs/results/passkey/repeat-keys
model=${1:-runs/repeat-keys/repeat}
for length in 1M 32K 128K 256K 512K; do
  [ -f "$here/table-$length.json" ] && continue
  t0=$(date +%s)
  build/infini passkey --model "$model" --lengths $length --depths 0,0.5,1 --trials 20 --json --plot "" \
    >"$here/table-$length.json.tmp" 2>"$here/table-$length.log"
  mv "$here/table-$length.json.tmp" "$here/table-$length.json"
  echo "table $length $(($(date +%s) - t0)) s" >>"$here/times.txt"
done
