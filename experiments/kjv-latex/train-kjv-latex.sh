#!/usr/bin/env bash
# The long-document reference run: the reference model (docs/MODEL.md) with byte tokens on the
# KJV + LaTeX corpus (scripts/prepare-corpus.sh), 1000 steps of 4 x 2048 tokens: about 35 minutes on
# two idle cores (55 when shared, as for experiments/kjv-latex). Writes the run folder and its loss
# curve (RUN/loss.png).
#
#   bash experiments/kjv-latex/train-kjv-latex.sh [RUN]     (default RUN: runs/kjv-latex; must not exist yet)
set -euo pipefail
cd "$(dirname "$0")/../.."
run=${1:-runs/kjv-latex}
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
mkdir -p "$(dirname "$run")"
build/infini train --data data/corpus --out "$run" \
  --steps 1000 --batch 4 --window 2048 --lr 2e-3 --warmup 50 \
  --val-every 50 --val-windows 32 --checkpoint-every 100 --seed 1234 2>&1 | tee "$run.log" >&2
build/infini plot "$run" --out "$run/loss.png"
