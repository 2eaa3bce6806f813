#!/usr/bin/env bash
# End to end through the CLI: a tiny model trains, its loss falls, it saves, loads and generates.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/tiny.json" <<'JSON'
{"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16,
 "d_ff": 64, "segment_len": 16, "memory": "infini-delta"}
JSON
"$bin" train --config "$tmp/tiny.json" --data "$src/data/sample/kjv-genesis-exodus.txt" \
  --out "$tmp/model" --steps 60 --batch 4 --window 64 --lr 3e-3 --warmup 5 --threads 1 2>"$tmp/train.log"
first=$(grep -m1 '^step' "$tmp/train.log" | sed 's/.*loss \([0-9.]*\).*/\1/')
last=$(grep '^step' "$tmp/train.log" | tail -n 1 | sed 's/.*loss \([0-9.]*\).*/\1/')
echo "loss $first -> $last"
# Byte-level loss starts near ln(256) = 5.55; 60 steps must cut it by at least a quarter.
awk -v a="$first" -v b="$last" 'BEGIN { exit !(a > 5.0 && b < 0.75 * a) }'
test -s "$tmp/model/config.json" && test -s "$tmp/model/model.safetensors"
out=$("$bin" generate --model "$tmp/model" --prompt "And God said" --tokens 40 --seed 1 --threads 1)
echo "generated: $out"
test "${#out}" -ge 30
again=$("$bin" generate --model "$tmp/model" --prompt "And God said" --tokens 40 --seed 1 --threads 1)
test "$out" = "$again"  # a fixed seed reproduces
# The file the trainer wrote, read by the independent Python reader, decodes greedily to the same text.
"$bin" generate --model "$tmp/model" --prompt "And God said" --tokens 24 --temperature 0 --threads 1 >"$tmp/greedy.txt"
/usr/bin/python3 "$src/tests/reference/check_model_file.py" "$tmp/model" "And God said" 24 "$tmp/greedy.txt"
# Read once, ask many: a saved reading state continues exactly as reading the same text as the prompt.
head -c 3000 "$src/data/sample/kjv-genesis-exodus.txt" >"$tmp/chapter.txt"
"$bin" read --model "$tmp/model" --input "$tmp/chapter.txt" --save-state "$tmp/chapter.state" --threads 1 2>"$tmp/read.log"
grep -q "3000 tokens" "$tmp/read.log"
before=$(md5sum <"$tmp/chapter.state")
from_state=$("$bin" generate --model "$tmp/model" --state "$tmp/chapter.state" --tokens 30 --temperature 0 --threads 1)
again=$("$bin" generate --model "$tmp/model" --state "$tmp/chapter.state" --tokens 30 --temperature 0 --threads 1)
from_file=$("$bin" generate --model "$tmp/model" --prompt-file "$tmp/chapter.txt" --tokens 30 --temperature 0 --threads 1)
test "$from_state" = "$from_file" && test "$from_state" = "$again"
test "$before" = "$(md5sum <"$tmp/chapter.state")"  # asking does not change the state file
# A stop string ends the continuation just before its first occurrence.
stop="${from_state:9:3}"
stopped=$("$bin" generate --model "$tmp/model" --state "$tmp/chapter.state" --tokens 30 --temperature 0 --stop "$stop" --threads 1)
test "$stopped" = "${from_state%%"$stop"*}"
echo "read-once-ask-many: '$from_state'"
# The session benchmark reports prefill speed and peak memory per length, then decode speed.
"$bin" bench --model "$tmp/model" --lengths 160 800 --decode-tokens 5 --threads 1 --json 2>/dev/null >"$tmp/bench.json"
/usr/bin/python3 - "$tmp/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert [p["tokens"] for p in r["prefill"]] == [160, 800], r["prefill"]
assert all(p["tokens_per_second"] > 0 and p["peak_rss_bytes"] > 0 and p["memory_finite"] and 0 < p["mfu"] < 1 for p in r["prefill"])
assert r["prefill"][0]["state_bytes"] == r["prefill"][1]["state_bytes"]  # both at a segment boundary: equal
assert r["decode"]["context_tokens"] == 800 and r["decode"]["tokens_per_second"] > 0
print("session bench: prefill %.0f tok/s, decode %.0f tok/s" % (r["prefill"][1]["tokens_per_second"],
                                                              r["decode"]["tokens_per_second"]))
PY
# Evaluation over whole documents: stable JSON fields; the model beats chance (ln 256 = 5.55 nats).
"$bin" eval --model "$tmp/model" --data "$tmp/chapter.txt" --json --threads 1 2>"$tmp/eval.log" >"$tmp/eval.json"
grep -q "bits/byte" "$tmp/eval.log"  # the human-readable table on stderr
/usr/bin/python3 - "$tmp/eval.json" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
for key in ["documents", "tokens", "bytes", "loss", "perplexity", "bits_per_byte", "segment_len",
            "loss_by_segment", "per_document", "state_bytes", "memory", "config"]:
    assert key in r, key
assert r["documents"] == 1 and r["tokens"] == 2999 and r["bytes"] == 2999, r
assert 0 < r["loss"] < 5.0 and abs(r["bits_per_byte"] - r["loss"] / math.log(2)) < 1e-9
assert sum(s["tokens"] for s in r["loss_by_segment"]) == r["tokens"]
print("eval: %.3f bits/byte over %d tokens" % (r["bits_per_byte"], r["tokens"]))
PY
# The footprint table, and the state measured after reading: exactly the Infini formula's floats.
"$bin" info --model "$tmp/model" --json --threads 1 >"$tmp/info.json"
/usr/bin/python3 - "$tmp/info.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
infini = [f for f in r["footprints"] if f["method"] == "Infini-Transformer"][0]
assert infini["floats"] == 16 * 17 * 2 * 2, infini  # d_key (d_value + 1) H l
assert r["measured"]["state_bytes_at_segment_boundary"] == 4 * infini["floats"], r["measured"]
print("info: %d parameters, state %d bytes" % (r["parameters"], r["measured"]["state_bytes_at_segment_boundary"]))
PY
# A knn model whose memory fills within the segments read, from a config with a vocabulary other than
# the byte tokenizer's: its state is the Memorizing Transformers
# formula's floats (kNN memory of one block plus every block's XL cache), at the config's knn_tokens.
cat >"$tmp/knn.json" <<'JSON'
{"vocab_size": 1000, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16, "d_ff": 64,
 "segment_len": 16, "memory": "knn", "knn_tokens": 40, "knn_top_k": 4}
JSON
"$bin" info --config "$tmp/knn.json" --segments 4 --json --threads 1 >"$tmp/info-knn.json"
/usr/bin/python3 - "$tmp/info-knn.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
mt = [f for f in r["footprints"] if f["method"] == "Memorizing Transformers"][0]
# A config's own vocabulary counts in its parameters (the state is measured with the byte tokenizer's).
assert r["parameters"] == 1000 * 32 * 2 + 32 + 2 * (2 * 32 + 32 * 2 * 48 + 2 * 16 * 32 + 3 * 32 * 64) + 2 * 2, r["parameters"]
assert r["knn_tokens"] == 40 and mt["floats"] == (16 + 16) * 2 * 40 + (16 + 16) * 2 * 16 * 2, (r["knn_tokens"], mt)
assert r["knn"]["tokens_held_when_measured"] == 40 and r["knn"]["memory_bytes_full"] == 4 * 40 * 2 * 32, r["knn"]
assert r["measured"]["state_bytes_at_segment_boundary"] == 4 * mt["floats"], r["measured"]
assert r["knn"]["state_bytes_at_segment_boundary_full"] == 4 * mt["floats"], r["knn"]
print("info, knn: state %d bytes, the formula's %d floats" % (r["measured"]["state_bytes_at_segment_boundary"], mt["floats"]))
PY
# Passkey retrieval: the table by length and depth, the JSON cells and the heatmap.
"$bin" passkey --model "$tmp/model" --lengths 300,1K --depths 0,1 --trials 2 --json --plot "$tmp/passkey.png" \
  --threads 1 2>"$tmp/passkey.log" >"$tmp/passkey.json"
grep -q "token accuracy" "$tmp/passkey.log"
test -s "$tmp/passkey.png"
/usr/bin/python3 - "$tmp/passkey.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cells = [(c["length"], c["depth"], c["trials"]) for c in r["cells"]]
assert cells == [(300, 0, 2), (300, 1, 2), (1024, 0, 2), (1024, 1, 2)], cells
assert all(0 <= c["accuracy"] <= 1 and c["answer_tokens"] >= 2 for c in r["cells"])
assert [p["length"] for p in r["peak_rss"]] == [300, 1024] and all(p["bytes"] > 0 for p in r["peak_rss"])
print("passkey: accuracy %s" % [round(c["accuracy"], 2) for c in r["cells"]])
PY
# Fine-tuning on the passkey task from the trained model: the loss is on the answer only.
"$bin" train --init "$tmp/model" --task passkey --window 420 --passkey-min-tokens 350 --steps 2 --batch 2 \
  --val-every 1 --val-windows 2 --out "$tmp/passkey-run" --threads 1 2>"$tmp/passkey-train.log"
grep -q "starting from the weights of" "$tmp/passkey-train.log"
grep -q "acc " "$tmp/passkey-train.log"
test -s "$tmp/passkey-run/model.safetensors"
