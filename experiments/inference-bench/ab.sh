#!/usr/bin/env bash
# Two infini binaries side by side: one untimed warm-up run each, then N alternating runs (A B A B ...)
# of `bench` with the same flags; prints each run's "bench read"/"bench decode" lines tagged A or B.
# The machine drifts, so compare pair by pair. B_FLAGS adds flags to B's runs only.
#
#   bash experiments/inference-bench/ab.sh N BIN_A BIN_B BENCH_FLAGS...
#   e.g. ab.sh 5 /tmp/old/infini build/infini --model runs/quickstart --lengths 131072 --decode-tokens 0
#        B_FLAGS=--general-prefill ab.sh 5 build/infini build/infini --model M --lengths 131072 --decode-tokens 0
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
n=$1 a=$2 b=$3
shift 3
run() {  # tag, binary, bench flags
  local tag=$1 bin=$2
  shift 2
  "$bin" bench "$@" 2>&1 >/dev/null | grep '^bench ' | sed "s/^/$tag /"
}
"$a" bench "$@" >/dev/null 2>&1
# shellcheck disable=SC2086
"$b" bench "$@" ${B_FLAGS:-} >/dev/null 2>&1
for _ in $(seq "$n"); do
  run A "$a" "$@"
  # shellcheck disable=SC2086
  run B "$b" "$@" ${B_FLAGS:-}
done
