#!/usr/bin/env bash
# The session benchmarks of this record (README.md), into OUT (default runs/inference-bench). The 10M
# read alone takes about ten minutes (18,269 tokens/s in bench-10m.json).
#
#   bash experiments/inference-bench/run.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/inference-bench}
mkdir -p "$out"
bash scripts/model-at.sh 1709f30 "$out/seg256"
build/infini bench --model models/passkey-infini-delta --decode-tokens 256 --json >"$out/bench-seg64.json"
build/infini bench --model "$out/seg256" --decode-tokens 4096 --json >"$out/bench-default.json"
build/infini bench --model "$out/seg256" --lengths 16384,131072,10485760,1048576 --decode-tokens 4096 \
  --json >"$out/bench-10m.json"
for lengths in 1048576,16384 16384; do
  build/infini bench --model "$out/seg256" --lengths "$lengths" --decode-tokens 8192 2>&1 >/dev/null |
    grep '^bench decode' | sed "s/^/$lengths /"
done >"$out/decode-after-long-read.txt"
