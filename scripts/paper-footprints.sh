#!/usr/bin/env bash
# The state each memory mode holds at the Infini paper's own config (configs/paper-table2.json: 12
# layers, 8 heads x 128, segments of 2,048), measured by `infini info` after one segment, against
# Table 1's formula; knn at the paper's 65,536-token memory (its state once full, as info computes
# it), rmt with p = 100 memory vectors. Markdown to stdout, progress to stderr.
#   bash scripts/paper-footprints.sh [INFINI_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/infini}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| memory | state at a segment boundary | floats | Table 1 method | Table 1 floats |"
echo "|---|---|---|---|---|"
for mode in none xl knn rmt infini-linear infini-delta; do
  extra=""
  [ "$mode" = rmt ] && extra=', "rmt_tokens": 100'
  sed -e "s/\"memory\": *\"[a-z-]*\"/\"memory\": \"$mode\"$extra/" configs/paper-table2.json >"$tmp/$mode.json"
  echo "paper-footprints: $mode" >&2
  "$bin" info --config "$tmp/$mode.json" --segments 1 --json >"$tmp/$mode.info.json"
  /usr/bin/python3 - "$tmp/$mode.info.json" "$mode" <<'PY'
import json, sys
r, mode = json.load(open(sys.argv[1])), sys.argv[2]
measured = r.get("knn", {}).get("state_bytes_at_segment_boundary_full", r["measured"]["state_bytes_at_segment_boundary"])
method = {"xl": "Transformer-XL", "knn": "Memorizing Transformers", "rmt": "RMT",
          "infini-linear": "Infini-Transformer", "infini-delta": "Infini-Transformer"}.get(mode)
table = {f["method"]: f["floats"] for f in r["footprints"]}
note = " (full: measured after one segment plus the rows still to fill)" if "knn" in r else ""
print("| %s | %s bytes%s | %s | %s | %s |" % (mode, format(measured, ","), note, format(measured // 4, ","), method or "-",
                                           format(int(table[method]), ",") if method else "-"))
PY
done
