#!/usr/bin/env bash
# A 10M-token read of the shipped model through the fused prefill, then the next 600 tokens and 64
# decoded ones through the fused and the general paths from the same state: the state must stay
# finite and the logits agree within 1e-4 of their scale (tests/long_read_check.cpp; ctest runs it
# at 32K). Prints one JSON line (stdout) and progress (stderr); exits non-zero on a failure.
#
#   bash scripts/long-read-check.sh [TOKENS] [MODEL] [TEXT]
#     defaults: 10485760, models/passkey-infini-delta, data/sample/kjv-genesis-exodus.txt (cycled)
set -euo pipefail
cd "$(dirname "$0")/.."
tokens=${1:-10485760} model=${2:-models/passkey-infini-delta} text=${3:-data/sample/kjv-genesis-exodus.txt}
[ -x build/tests/long_read_check ] || { echo "long-read-check.sh: build first (scripts/build.sh)" >&2; exit 2; }
build/tests/long_read_check "$model" "$text" "$tokens" 600 64
