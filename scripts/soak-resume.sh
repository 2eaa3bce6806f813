#!/usr/bin/env bash
# kill -9 soak of training: one run is killed KILLS times at random moments (checkpoints every step,
# so many kills land inside a checkpoint write), and after each kill it is resumed with
# 'infini train --resume' (or, killed before its first checkpoint, started again with its own
# command). It then runs to the end. Passes when no kill left the run folder unresumable, and the
# final weights and every logged step (loss, gradient norm, learning rate, validation loss) are
# bit-identical to an unbroken run of the same command. Prints one line per kill and a verdict;
# exits non-zero on any difference.
#
#   bash scripts/soak-resume.sh [KILLS] [SEED] [INFINI]     (defaults: 20, 1, build/infini)
source "$(dirname "$0")/soak-common.sh"
# Enough steps that every kill finds the run still going; --threads fixes the last bits.
steps=$((kills * 40 + 100))
flags=(--config "$tmp/tiny.json" --data data/sample/kjv-genesis-exodus.txt --steps "$steps" --batch 3 --window 64
       --bptt-segments 2 --lr 3e-3 --warmup 3 --val-every 25 --val-windows 4 --checkpoint-every 1 --threads 1 --quiet)

t0=$(date +%s.%N)
"$bin" train "${flags[@]}" --out "$tmp/unbroken" 2>"$tmp/unbroken.log" || { cat "$tmp/unbroken.log"; exit 1; }
unbroken_s=$($py -c "import time; print(round(time.time() - $t0, 2))")
t0=$(date +%s.%N)
"$bin" train "${flags[@]}" --steps 1 --out "$tmp/start-up" 2>/dev/null
startup_s=$($py -c "import time; print(round(time.time() - $t0, 2))")
step_s=$($py -c "print(max(0.001, ($unbroken_s - $startup_s) / $steps))")
echo "soak-resume: unbroken run of $steps steps took ${unbroken_s} s (start-up ${startup_s} s, then ${step_s} s a step)"

# The step a checkpoint holds, from its metadata ("none" without one).
checkpoint_step() {
  $py - "$1" <<'PY'
import json, sys
try:
    raw = open(sys.argv[1], "rb").read()
except FileNotFoundError:
    print("none"); sys.exit()
n = int.from_bytes(raw[:8], "little")
print(json.loads(json.loads(raw[8:8 + n])["__metadata__"]["run"])["step"])
PY
}

run="$tmp/broken"
failures=0 in_write=0 done_kills=0 restarts=0
while [ "$done_kills" -lt "$kills" ]; do
  if [ -f "$run/checkpoint.safetensors" ]; then
    "$bin" train --resume "$run" --threads 1 --quiet 2>"$tmp/attempt.log" &
  else
    "$bin" train "${flags[@]}" --out "$run" 2>"$tmp/attempt.log" &
    [ "$done_kills" -gt 0 ] && restarts=$((restarts + 1))
  fi
  pid=$!
  # From late in the start-up to about 20 steps (with their checkpoint writes) past it.
  sleep "$($py -c "import random; random.seed($seed * 1000 + $done_kills)
print(round(random.uniform(0.8 * $startup_s, $startup_s + 20 * $step_s), 3))")"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    echo "soak-resume: the run ended before kill $((done_kills + 1)) (rc $?):"; cat "$tmp/attempt.log"
    failures=$((failures + 1))
    break
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  done_kills=$((done_kills + 1))
  step=$(checkpoint_step "$run/checkpoint.safetensors")
  temporaries=$(find "$run" -name '*.tmp.*' 2>/dev/null | wc -l)
  [ "$temporaries" -gt 0 ] && in_write=$((in_write + 1))
  echo "kill $done_kills: checkpoint at step $step$([ "$temporaries" -gt 0 ] && echo ", inside a write ($temporaries temporary file(s) left)")"
done
# The last resume runs to the end.
if [ -f "$run/checkpoint.safetensors" ]; then
  "$bin" train --resume "$run" --threads 1 --quiet 2>"$tmp/attempt.log" || { echo "final resume failed:"; cat "$tmp/attempt.log"; failures=$((failures + 1)); }
else
  "$bin" train "${flags[@]}" --out "$run" 2>"$tmp/attempt.log" || { cat "$tmp/attempt.log"; failures=$((failures + 1)); }
fi

$py - "$tmp/unbroken" "$run" <<'PY' || failures=$((failures + 1))
import json, sys
a, b = ([json.loads(l) for l in open(d + "/metrics.jsonl")] for d in sys.argv[1:])
keys = ("step", "loss", "grad_norm", "lr", "val_loss", "val_accuracy")
diff = [(x["step"], k) for x, y in zip(a, b) for k in keys if x.get(k) != y.get(k)]
assert len(a) == len(b) == a[-1]["step"], (len(a), len(b))
assert not diff, "logged steps differ: %s" % diff[:5]
print("soak-resume: all %d logged steps bit-identical to the unbroken run" % len(a))
PY
if cmp -s "$tmp/unbroken/model.safetensors" "$run/model.safetensors"; then
  echo "soak-resume: final weights byte-identical (model.safetensors)"
else
  echo "soak-resume: FINAL WEIGHTS DIFFER"; failures=$((failures + 1))
fi
left=$(find "$run" -name '*.tmp.*' | wc -l)
[ "$left" -eq 0 ] || { echo "soak-resume: $left temporary file(s) left after the run ended"; failures=$((failures + 1)); }
echo "soak-resume: $done_kills of $kills kills resumed ($in_write inside a checkpoint write, $restarts before the first" \
     "checkpoint); $failures failure(s)"
[ "$failures" -eq 0 ] && [ "$done_kills" -eq "$kills" ]
