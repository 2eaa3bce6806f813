#!/usr/bin/env bash
# kill -9 soak of 'infini read --save-state': a state file written by a complete read is read over
# again KILLS times and each time killed at a random moment, from start-up to past the end of the
# read (where the state is written; half the kills fall near the end). Passes when after every kill the state file is byte-identical
# to the complete read's (the same model, text and threads give the same bytes) and loads with
# 'infini generate --state', and when the next complete read removes the temporary files that the
# kills left. Exits non-zero otherwise.
#
#   bash scripts/soak-read-state.sh [KILLS] [SEED] [INFINI]     (defaults: 20, 1, build/infini)
source "$(dirname "$0")/soak-common.sh"
"$bin" train --config "$tmp/tiny.json" --data data/sample/kjv-genesis-exodus.txt --steps 5 --batch 2 --window 32 \
  --threads 1 --quiet --out "$tmp/model" 2>/dev/null || { echo "soak-read-state.sh: training the tiny model failed"; exit 1; }
cp data/sample/kjv-genesis-exodus.txt "$tmp/text.txt"
read_state() { "$bin" read --model "$tmp/model" --input "$tmp/text.txt" --save-state "$tmp/state" --threads 1 2>/dev/null; }

t0=$(date +%s.%N)
read_state || { echo "soak-read-state.sh: the complete read failed"; exit 1; }
full_s=$($py -c "import time; print(round(time.time() - $t0, 2))")
cp "$tmp/state" "$tmp/reference.state"
echo "soak-read-state: a complete read of $(wc -c <"$tmp/text.txt") bytes takes ${full_s} s"

failures=0 left_behind=0
for ((k = 1; k <= kills; k++)); do
  read_state &
  pid=$!
  # Odd kills anywhere in the read, even ones near its end, where the state is written.
  sleep "$($py -c "import random; random.seed($seed * 1000 + $k)
print(round(random.uniform(0.1, 1.1 * $full_s) if $k % 2 else random.uniform(0.9 * $full_s, 1.1 * $full_s), 3))")"
  if kill -9 "$pid" 2>/dev/null; then how="killed"; else how="had finished"; fi
  wait "$pid" 2>/dev/null
  temporaries=$(find "$tmp" -maxdepth 1 -name 'state.tmp.*' | wc -l)
  left_behind=$((left_behind + temporaries))
  if ! cmp -s "$tmp/state" "$tmp/reference.state"; then
    echo "kill $k: $how; THE STATE FILE CHANGED"; failures=$((failures + 1)); continue
  fi
  if ! "$bin" generate --model "$tmp/model" --state "$tmp/state" --tokens 4 --seed 1 --threads 1 >/dev/null 2>"$tmp/gen.log"; then
    echo "kill $k: $how; the state file does not load:"; cat "$tmp/gen.log"; failures=$((failures + 1)); continue
  fi
  echo "kill $k: $how; state intact$([ "$temporaries" -gt 0 ] && echo ", $temporaries temporary file(s) of the write left")"
done
read_state || { echo "soak-read-state: the last complete read failed"; failures=$((failures + 1)); }
left=$(find "$tmp" -maxdepth 1 -name 'state.tmp.*' | wc -l)
[ "$left" -eq 0 ] || { echo "soak-read-state: $left temporary file(s) still there after a complete read"; failures=$((failures + 1)); }
cmp -s "$tmp/state" "$tmp/reference.state" || { echo "soak-read-state: the last read wrote other bytes"; failures=$((failures + 1)); }
echo "soak-read-state: $kills kills, state intact after each; $left_behind kill(s) inside the write left a temporary" \
     "file, removed by the next complete read; $failures failure(s)"
[ "$failures" -eq 0 ]
