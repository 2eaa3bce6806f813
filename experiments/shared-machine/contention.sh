#!/usr/bin/env bash
# The shared-machine table: training, prefill and decode speed of one or more infini builds and the
# Python anchor's training speed, idle and beside busy neighbours, one JSON line per measurement.
# Within a round the builds run one after the other (A B ...), so they can be compared pair by pair.
# Reading is 16K tokens, decoding 2,048 after them (the anchor: 256).
#
#   bash experiments/shared-machine/contention.sh ROUNDS OUT.jsonl BIN...
#   /usr/bin/python3 experiments/shared-machine/table.py OUT.jsonl       # the table
#   /usr/bin/python3 experiments/shared-machine/pairs.py OUT.jsonl A B    # B/A pair by pair
#
# CONDITIONS picks conditions (default all): idle; loop1-nice19, loop1-nice0 (one busy loop at nice
# 19 or 0); loop2-nice19 (two); loop2-nice19+job-nice19, loop2-nice19+job-nice0 (two loops and a
# second infini job, the same build training; the anchor's beside the last build's). ANCHOR=0 skips
# the anchor (training, and reading 16K tokens then decoding 256 at the reference config), which
# needs its checkout on PYTHONPATH as bench/baseline/README.md says
# (ANCHOR_PYTHONPATH, default /tmp/anchor/shims:/tmp/anchor/checkout).
set -uo pipefail
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
rounds=$1 out=$2
shift 2
bins=("$@")
# Reading and decoding: a reference-config model (as the anchor's), made with one training step
# unless MODEL names a model folder.
model=${MODEL:-}
if [ -z "$model" ]; then
  model=$(mktemp -d)/reference
  "${bins[-1]}" train --config configs/reference.json --data data/sample/kjv-genesis-exodus.txt --steps 1 \
    --out "$model" --quiet 2>/dev/null || { echo "could not make the reference model" >&2; exit 1; }
fi
conditions=${CONDITIONS:-idle loop1-nice19 loop1-nice0 loop2-nice19 loop2-nice19+job-nice19 loop2-nice19+job-nice0}
anchor_path=${ANCHOR_PYTHONPATH:-/tmp/anchor/shims:/tmp/anchor/checkout}
pids=()
round=0
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
trap stop_all EXIT
load() {  # condition [binary]: start what the condition runs beside the measurement
  local loops=0 nice=0 job=
  case $1 in
    idle) ;;
    loop1-nice19) loops=1 nice=19 ;;
    loop1-nice0) loops=1 ;;
    loop2-nice19) loops=2 nice=19 ;;
    loop2-nice19+job-nice19) loops=2 nice=19 job=19 ;;
    loop2-nice19+job-nice0) loops=2 nice=19 job=0 ;;
    *) echo "unknown condition $1" >&2; exit 2 ;;
  esac
  for _ in $(seq $loops); do nice -n $nice sh -c 'while :; do :; done' & pids+=($!); done
  if [ -n "$job" ]; then
    nice -n "$job" "$2" bench --steps 100000 --warmup-steps 0 >/dev/null 2>&1 & pids+=($!)
    sleep 2
  fi
}
record() {  # condition what binary json
  /usr/bin/python3 -c 'import json,sys; print(json.dumps({"round":int(sys.argv[1]),"condition":sys.argv[2],"what":sys.argv[3],"bin":sys.argv[4],"result":json.loads(sys.argv[5])}))' "$round" "$@" >> "$out"
}
for round in $(seq "$rounds"); do
  for c in $conditions; do
    echo "round $round: $c" >&2
    for bin in "${bins[@]}"; do
      load "$c" "$bin"
      r=$("$bin" bench --json --steps 4 --warmup-steps 1 2>/dev/null) && record "$c" train "$bin" "$r"
      r=$("$bin" bench --json --model $model --lengths 16384 --decode-tokens 2048 2>/dev/null) && record "$c" session "$bin" "$r"
      stop_all
    done
    if [ "${ANCHOR:-1}" != 0 ]; then
      load "$c" "${bins[-1]}"
      r=$(PYTHONPATH=$anchor_path /usr/bin/python3 bench/baseline/lucidrains_train_speed.py --threads 1 \
          --blas-threads 2 --warmup 1 --steps 4 2>/dev/null | tail -1) && record "$c" anchor anchor "$r"
      r=$(PYTHONPATH=$anchor_path /usr/bin/python3 bench/baseline/lucidrains_infer_speed.py --threads 1 \
          --blas-threads 2 --prefill-tokens 16384 --decode-tokens 256 2>/dev/null | tail -1) &&
        record "$c" anchor-infer anchor "$r"
      stop_all
    fi
  done
done
