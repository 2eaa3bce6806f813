#!/usr/bin/env bash
# Runs a libFuzzer target over infini's loaders (docs/RELIABILITY.md).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]   TARGET: safetensors config model_dir state
#   scripts/fuzz.sh all SECONDS [libFuzzer flags...]      checkpoint tokenizer serve_request (or fuzz_<name>);
#                                                         all: each in turn
#
# Configures and builds build-fuzz (clang, ASan + UBSan + libFuzzer) when needed, writes the seed
# corpora, fuzzes at nice 19 with -rss_limit_mb=2048 -timeout=10, and copies every crash, timeout,
# out-of-memory or leak input into tests/fuzz/regressions/TARGET/ (fuzz_replay then replays it).
# SECONDS 0 only builds and writes the seeds.
# The executions and exec/s go to stdout; libFuzzer's log to build-fuzz/fuzz-logs/TARGET.log.
# FUZZ_KEEP_GOING=1: fork mode (-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1), which
# goes on after a finding and so collects several in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
all_targets=(safetensors config model_dir state checkpoint tokenizer serve_request)
if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  sed -n '4,6p' "$0" | sed 's/^# *//' >&2
  exit 2
fi
target=${1#fuzz_}
seconds=$2
shift 2
if [ "$target" = all ]; then
  targets=("${all_targets[@]}")
else
  [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "fuzz.sh: unknown target '$target' (${all_targets[*]})" >&2; exit 2; }
  targets=("$target")
fi

build=build-fuzz
scripts/install-deps.sh --fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  cxx=$(command -v clang++ || command -v clang++-14)
  nice -n 19 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DINFINI_FUZZ=ON \
    -DINFINI_BUILD_TESTS=OFF -DINFINI_BUILD_BENCH=OFF >/dev/null
fi
build_start=$(date +%s)
nice -n 19 cmake --build "$build" --target fuzz_all -j"$(nproc)" >&2
echo "fuzz.sh: build-fuzz up to date after $(( $(date +%s) - build_start )) s" >&2
seeds=$build/fuzz-seeds
if [ ! -d "$seeds" ] || [ "$build/tests/fuzz/fuzz_seeds" -nt "$seeds" ]; then
  rm -rf "$seeds"
  nice -n 19 "$build/tests/fuzz/fuzz_seeds" --write-seeds "$seeds" 2>&1 | tail -1 >&2
fi

[ "$seconds" -gt 0 ] || exit 0  # SECONDS 0: build and seed only

# Dictionaries per target: JSON syntax plus the keys its files hold.
dicts() {
  case $1 in
    safetensors|state) echo json safetensors ;;
    config) echo json config ;;
    model_dir) echo json config safetensors tokenizer ;;
    checkpoint) echo json config safetensors checkpoint ;;
    tokenizer) echo json tokenizer ;;
    serve_request) echo json serve ;;
  esac
}

mode=()
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
status=0
for t in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$t
  artifacts=$build/fuzz-artifacts/$t
  logs=$build/fuzz-logs
  # Findings of earlier runs were copied into tests/fuzz/ when they were found (and may have been
  # renamed there since): only this run's count.
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$logs"
  dict=$build/fuzz-dicts/$t.dict
  mkdir -p "$(dirname "$dict")"
  for d in $(dicts "$t"); do cat "tests/fuzz/$d.dict"; done >"$dict"
  log=$logs/$t.log
  start=$(date +%s%N)
  set +e
  # Scratch files of the target and of fork mode's jobs go to a folder of this run, emptied after it
  # (a crashed process leaves its own behind).
  export TMPDIR=$PWD/$build/fuzz-tmp/$t
  rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
  nice -n 19 "$build/tests/fuzz/fuzz_$t" -rss_limit_mb=2048 -timeout=10 -max_total_time="$seconds" \
    -print_final_stats=1 -print_funcs=0 -dict="$dict" -artifact_prefix="$artifacts/" "${mode[@]}" "$@" \
    "$corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  rm -rf "$TMPDIR"
  unset TMPDIR
  elapsed=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  # Executions: the final stats of a plain run, else the last progress line (fork mode, a finding).
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(grep -aoE '#[0-9]+(: |[[:space:]]+)(cov|NEW|REDUCE|pulse|INITED|DONE)' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
  execs=${execs:-0}
  rate=$(awk -v n="$execs" -v s="$elapsed" 'BEGIN { printf "%.1f", n / s }')
  found=()
  for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*; do
    [ -e "$f" ] || continue
    mkdir -p "tests/fuzz/regressions/$t"
    [ -e "tests/fuzz/regressions/$t/$(basename "$f")" ] || [ -e "tests/fuzz/pending/$t/$(basename "$f")" ] || {
      cp "$f" "tests/fuzz/regressions/$t/"
      found+=("tests/fuzz/regressions/$t/$(basename "$f")")
    }
  done
  printf 'fuzz_%s: %s executions in %.0f s (%s exec/s), libFuzzer exit %s, %s new finding(s)%s\n' \
    "$t" "$execs" "$elapsed" "$rate" "$rc" "${#found[@]}" "${found[*]:+: ${found[*]}}"
  grep -E '^stat::' "$log" | sed "s/^/  /" || true
  if [ ${#found[@]} -gt 0 ] || [ "$rc" -ne 0 ]; then
    status=1
    grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY|terminate called|^[^ ]*: runtime error' "$log" | sed 's/^/  first report: /' || true
  fi
done
exit $status
