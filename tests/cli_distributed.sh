#!/usr/bin/env bash
# Data-parallel training on loopback (127.0.0.1) with c10d's Gloo group:
#  - 2 processes with batch b take the same steps as 1 process with batch 2b (parameters to 1e-5);
#  - a run of 2 processes stopped and resumed with 2 continues exactly; resuming with 1 is refused;
#  - when a worker dies, its peer fails with a clear error within the timeout, and --nproc's
#    supervisor exits non-zero; nothing hangs.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
cleanup() {
  pkill -P $$ 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# float64, so that the order in which the ranks' gradients are summed stays far below the tolerance
# (in float32 Adam turns those last bits into differences of ~1e-5 within a few steps).
cat >"$tmp/tiny.json" <<'JSON'
{"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16,
 "d_ff": 64, "segment_len": 16, "memory": "infini-delta", "dtype": "float64"}
JSON
head -c 100000 "$src/data/sample/kjv-genesis-exodus.txt" >"$tmp/text.txt"
flags=(--config "$tmp/tiny.json" --data "$tmp/text.txt" --window 48 --lr 3e-3 --warmup 2 --val-every 0
       --checkpoint-every 0 --seed 7 --threads 1 --quiet --dist-timeout 20)

# 1 x batch 4 against 2 x batch 2.
"$bin" train "${flags[@]}" --steps 4 --batch 4 --out "$tmp/one" 2>"$tmp/one.log"
"$bin" train "${flags[@]}" --steps 4 --batch 2 --nproc 2 --out "$tmp/two" 2>"$tmp/two.log"
grep -q "x 2 processes" "$tmp/two.log"
/usr/bin/python3 - "$src/tests/reference" "$tmp/one" "$tmp/two" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from safetensors_io import load_file
a, _ = load_file(sys.argv[2] + "/model.safetensors")
b, _ = load_file(sys.argv[3] + "/model.safetensors")
assert a.keys() == b.keys()
worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
print("1 x batch 4 vs 2 x batch 2 after 4 steps: max |difference| %.2e" % worst)
assert worst < 1e-5, worst
PY
# Both runs report the same losses too.
/usr/bin/python3 - "$tmp/one/metrics.jsonl" "$tmp/two/metrics.jsonl" <<'PY'
import json, sys
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
assert len(a) == len(b) == 4
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) < 1e-5 and x["tokens"] == y["tokens"], (x, y)
PY

# Stopped after 2 steps and resumed with 2 processes: the same losses as the unbroken run.
"$bin" train "${flags[@]}" --steps 4 --batch 2 --nproc 2 --out "$tmp/broken" --stop-after 2 2>"$tmp/broken.log"
grep -q "stopped at step 2 of 4" "$tmp/broken.log"
if "$bin" train --resume "$tmp/broken" --threads 1 2>"$tmp/refused.log"; then
  echo "resuming a 2-process run with 1 process was not refused"; exit 1
fi
grep -q "trained by 2 process(es)" "$tmp/refused.log"
"$bin" train --resume "$tmp/broken" --nproc 2 --threads 1 --quiet --dist-timeout 20 2>>"$tmp/broken.log"
/usr/bin/python3 - "$tmp/two/metrics.jsonl" "$tmp/broken/metrics.jsonl" <<'PY'
import json, sys
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
assert [r["step"] for r in b] == [1, 2, 3, 4], b
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) < 1e-6, (x, y)
print("2-process run stopped at step 2 and resumed: losses equal the unbroken run's")
PY

# A worker dies: its peer, started by hand with the environment rendezvous, fails within the timeout.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
long=(--config "$tmp/tiny.json" --data "$tmp/text.txt" --window 48 --batch 2 --steps 100000 --val-every 0
      --checkpoint-every 0 --threads 1 --quiet --dist-timeout 10)
export MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2
RANK=0 "$bin" train "${long[@]}" --out "$tmp/dies" 2>"$tmp/rank0.log" &
rank0=$!
RANK=1 "$bin" train "${long[@]}" --out "$tmp/dies" 2>"$tmp/rank1.log" &
rank1=$!
for _ in $(seq 100); do [ -s "$tmp/dies/metrics.jsonl" ] && break; sleep 0.2; done
test -s "$tmp/dies/metrics.jsonl"
kill -9 "$rank1"
start=$(date +%s)
if wait "$rank0"; then echo "rank 0 went on after its peer died"; exit 1; fi
took=$(($(date +%s) - start))
echo "rank 0 failed ${took} s after its peer was killed: $(grep -m1 'error' "$tmp/rank0.log")"
test "$took" -le 30
grep -q "rank 0 of 2" "$tmp/rank0.log"
unset MASTER_ADDR MASTER_PORT WORLD_SIZE

# The same under --nproc: the supervisor stops the survivor and exits non-zero.
"$bin" train "${long[@]}" --nproc 2 --out "$tmp/supervised" 2>"$tmp/supervised.log" &
supervisor=$!
for _ in $(seq 100); do [ -s "$tmp/supervised/metrics.jsonl" ] && break; sleep 0.2; done
workers=$(pgrep -P "$supervisor")
test "$(echo "$workers" | wc -w)" -eq 2
kill -9 "$(echo "$workers" | tail -n 1)"
start=$(date +%s)
if wait "$supervisor"; then echo "--nproc exited 0 after a worker died"; exit 1; fi
took=$(($(date +%s) - start))
echo "--nproc exited non-zero ${took} s after a worker was killed"
test "$took" -le 40
grep -q "a worker (pid" "$tmp/supervised.log"
for pid in $workers; do
  if kill -0 "$pid" 2>/dev/null; then echo "worker $pid still running"; exit 1; fi
done
echo "distributed: all checks passed"
