#!/usr/bin/env bash
# A cheaper read of the miss rate at 1M: depth 1, where every key of a cell shares the million-token
# prefix, so 100 keys cost about one read. The shipped model before the repeat stage (git show
# 7e9de53:models/passkey-infini-delta) and after it, on the same 100 keys (seed 3, new to both).
#
#   bash experiments/passkey-repeat-keys/depth1.sh OLD_MODEL NEW_MODEL
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/passkey-repeat-keys
for arm in seg64:$1 repeat:$2; do
  build/infini passkey --model "${arm#*:}" --lengths 1M --depths 1 --trials 100 --seed 3 --json --plot "" \
    >"$here/depth1-${arm%%:*}.json.tmp" 2>"$here/depth1-${arm%%:*}.log"
  mv "$here/depth1-${arm%%:*}.json.tmp" "$here/depth1-${arm%%:*}.json"
done
/usr/bin/python3 experiments/passkey-many-keys/passkey-paired.py "$here/depth1-seg64.json" "$here/depth1-repeat.json" | tee "$here/depth1-paired.txt"
