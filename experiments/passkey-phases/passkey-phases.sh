#!/usr/bin/env bash
# Where in its 64-token segment a model can answer: `infini passkey` at depth 1 (the key line right
# before the question) at 32 lengths BASE + 90 j, j = 0..31, 10 keys each (seed 1). Each 90-byte
# filler moves the question 26 bytes further on modulo 64, so the 32 lengths put it at the 32 phases
# that the paper's prompt reaches (a 4-digit key's two bytes earlier, a 3-digit one's four); a model
# that fails at some phases misses nearly every key there (experiments/passkey-lab-log.md, "Phases of a segment").
# Prints one line per length: j, length, then per key its digit count and ok or X; the last line
# counts the keys missed.
#   bash experiments/passkey-phases/passkey-phases.sh MODEL [BASE]   (BASE defaults to 8192 tokens)
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
model=$1 base=${2:-8192}
cd "$(dirname "$0")/../.."
[ -f "$model/model.safetensors" ] || { echo "passkey-phases.sh: MODEL: no $model/model.safetensors" >&2; exit 2; }
missed=0 total=0
for j in $(seq 0 31); do
  length=$((base + 90 * j))
  line=$(build/infini passkey --model "$model" --lengths "$length" --depths 1 --trials 10 --json --plot "" 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)["cells"][0]
marks = ["%d:%s" % (len(str(k)), "ok" if " " + str(k) == a else "X") for k, a in zip(c["keys"], c["answers"])]
print(" ".join(marks))')
  x=$(grep -o X <<<"$line" | wc -l || true)
  missed=$((missed + x)) total=$((total + 10))
  echo "$j $length $line"
done
echo "missed $missed of $total keys"
