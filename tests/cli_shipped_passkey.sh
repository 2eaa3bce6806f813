#!/usr/bin/env bash
# The shipped passkey model still retrieves: a regression guard on the model file, the loader and the
# streaming evaluation together. 8K tokens keeps it under a minute; the full 32K..1M table is in
# docs/PASSKEY.md.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" passkey --model "$src/models/passkey-infini-delta" --lengths 8K --depths 0,0.5,1 --trials 10 --json --plot "$tmp/passkey.png" \
  2>"$tmp/passkey.log" >"$tmp/passkey.json"
/usr/bin/python3 - "$tmp/passkey.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cells = r["cells"]
assert [(c["length"], c["depth"], c["trials"]) for c in cells] == [(8192, d, 10) for d in (0, 0.5, 1)], cells
for c in cells:
    print("shipped passkey model, 8K, depth %g: %.1f%% of key tokens" % (c["depth"], 100 * c["accuracy"]))
# When shipped (scripts/passkey-recipe.sh from scratch, 2026-12-06): 100, 100 and 100% (30 of 30 keys
# right, as for the models shipped before it; the seg64 model got 29, 8816 as " 8881"). The lm stage's
# weights get 0 of 30. The guard is on the key's tokens (key_exact): the model was trained on the
# answer's tokens only, so it goes on with a digit after the key, and under the strict rule
# (exact_match: the answer must stop) it scores 0 of 30 (docs/PASSKEY.md).
keys = sum(c["key_exact"] for c in cells)
strict = sum(round(c["exact_match"] * c["trials"]) for c in cells)
over_long = sum(c["over_long"] for c in cells)
mean = sum(c["accuracy"] for c in cells) / len(cells)
print("shipped passkey model, 8K: %d of 30 keys right, %d exact with the answer stopping (%d went on with a "
      "digit), %.1f%% of key tokens" % (keys, strict, over_long, 100 * mean))
assert keys >= 29 and mean >= 0.98, "the shipped passkey model no longer retrieves at 8K"
assert strict <= keys and strict + over_long <= 30, "a strict exact answer must be a right key that stops"
PY
# One length is a one-row heatmap, which gnuplot's `matrix with image` refused with a warning.
test -s "$tmp/passkey.png"
if grep -i "warning" "$tmp/passkey.log"; then echo "gnuplot warned while drawing the heatmap" >&2; exit 1; fi
