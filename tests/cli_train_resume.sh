#!/usr/bin/env bash
# Through the CLI, on a PG19-layout corpus: a run stopped twice and resumed gives the same loss at
# every step as an unbroken run (to 1e-6); its files read back in Python; the plot is a PNG; and a
# SentencePiece tokenizer trains, trains a model and travels with it.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/corpus/train" "$tmp/corpus/validation" "$tmp/corpus/test"
head -c 200000 "$src/data/sample/kjv-genesis-exodus.txt" >"$tmp/corpus/train/1.txt"
tail -c 150000 "$src/data/sample/kjv-genesis-exodus.txt" >"$tmp/corpus/train/2.txt"
head -c 4000 "$src/tests/reference/infini_ref.py" >"$tmp/corpus/train/3.tex"
tail -c 20000 "$src/data/sample/kjv-genesis-exodus.txt" >"$tmp/corpus/validation/4.txt"
printf '\xff\xfe never read' >"$tmp/corpus/test/5.txt"  # test/ is not part of training
cat >"$tmp/tiny.json" <<'JSON'
{"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16,
 "d_ff": 64, "segment_len": 16, "memory": "infini-delta"}
JSON
flags=(--config "$tmp/tiny.json" --data "$tmp/corpus" --steps 12 --batch 3 --window 64 --bptt-segments 2
       --lr 3e-3 --warmup 3 --val-every 4 --val-windows 4 --checkpoint-every 5 --threads 1 --quiet)
"$bin" train "${flags[@]}" --out "$tmp/unbroken" 2>"$tmp/unbroken.log"
"$bin" train "${flags[@]}" --out "$tmp/broken" --stop-after 4 2>"$tmp/broken.log"
"$bin" train --resume "$tmp/broken" --stop-after 3 --threads 1 --quiet 2>>"$tmp/broken.log"
"$bin" train --resume "$tmp/broken" --threads 1 --quiet 2>>"$tmp/broken.log"
grep -q "stopped at step 4 of 12" "$tmp/broken.log"
grep -q "stopped at step 7 of 12" "$tmp/broken.log"
/usr/bin/python3 - "$tmp/unbroken/metrics.jsonl" "$tmp/broken/metrics.jsonl" <<'PY'
import json, sys
runs = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
a, b = runs
assert [r["step"] for r in a] == list(range(1, 13)), [r["step"] for r in a]
assert [r["step"] for r in b] == list(range(1, 13)), [r["step"] for r in b]
worst = max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b))
worst_val = max(abs(x["val_loss"] - y["val_loss"]) for x, y in zip(a, b) if "val_loss" in x)
assert worst <= 1e-6 and worst_val <= 1e-6, (worst, worst_val)
assert sum(1 for r in a if "val_loss" in r) == 3
assert a[-1]["loss"] < 0.9 * a[0]["loss"], (a[0]["loss"], a[-1]["loss"])
print("resumed run equals the unbroken one: largest loss difference %.3g over 12 steps "
      "(validation %.3g); loss %.3f -> %.3f" % (worst, worst_val, a[0]["loss"], a[-1]["loss"]))
PY
/usr/bin/python3 "$src/tests/reference/check_checkpoint.py" "$tmp/broken" "$tmp/unbroken"

"$bin" plot "$tmp/unbroken" "$tmp/broken" --out "$tmp/loss.png" 2>/dev/null
test "$(head -c 8 "$tmp/loss.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"

# SentencePiece end to end: train a tokenizer, a model with it, then generate through it.
"$bin" tokenizer train --input "$tmp/corpus/train" --vocab 512 --out "$tmp/sp.model" 2>/dev/null
sed 's/"vocab_size": 256/"vocab_size": 512/' "$tmp/tiny.json" >"$tmp/tiny-sp.json"
"$bin" train --tokenizer "$tmp/sp.model" --config "$tmp/tiny-sp.json" --data "$tmp/corpus" --out "$tmp/sp-run" \
  --steps 3 --batch 2 --window 32 --val-every 0 --threads 1 --quiet 2>/dev/null
cmp "$tmp/sp.model" "$tmp/sp-run/tokenizer.model"
out=$("$bin" generate --model "$tmp/sp-run" --prompt "And God said" --tokens 8 --seed 1 --threads 1)
test -n "$out"
echo "sentencepiece run generated: $out"
