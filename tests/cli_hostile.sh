#!/usr/bin/env bash
# Hostile files and flags through the command line (issue 44's probe, one case per finding): each
# must exit non-zero, not by a signal, within its time limit, with a message naming the culprit.
set -u
bin=$1
src=$2
py=${3:-/usr/bin/python3}
source "$(dirname "$0")/cli_expect.sh"
check() {  # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

tiny='{"vocab_size": 256, "d_model": 16, "n_layers": 1, "n_heads": 1, "d_key": 4, "d_value": 4, "d_ff": 8, "segment_len": 4}'
printf '%s' "$tiny" >"$tmp/tiny.json"
printf 'a short document for a tiny model to train on' >"$tmp/short.txt"
"$bin" train --config "$tmp/tiny.json" --data "$tmp/short.txt" --out "$tmp/run" --steps 3 --window 8 --quiet 2>/dev/null
"$bin" read --model "$tmp/run" --input "$tmp/short.txt" --save-state "$tmp/good.state" 2>/dev/null
[ -f "$tmp/good.state" ] || { echo "FAIL: setup (no run or state)"; exit 1; }

# A config field holding 100,000 levels of nested arrays once crashed the error message's printer.
"$py" -c 'import sys; sys.stdout.write("{\"d_model\": " + "[" * 100000 + "]" * 100000 + "}")' >"$tmp/nested.json"
expect_fail "nested deeper than" "$bin" info --config "$tmp/nested.json"
cp -r "$tmp/run" "$tmp/run-nested" && cp "$tmp/nested.json" "$tmp/run-nested/config.json"
expect_fail "nested deeper than" "$bin" generate --model "$tmp/run-nested" --prompt hi

# Sizes that once allocated gigabytes before any check.
for field in n_layers=1000000000 segment_len=1000000 d_model=1099511627776 vocab_size=1099511627776; do
  name=${field%=*}
  "$py" -c 'import json, sys; c = json.load(open(sys.argv[1])); c[sys.argv[2]] = int(sys.argv[3]); print(json.dumps(c))' \
    "$tmp/run/config.json" "$name" "${field#*=}" >"$tmp/huge.json"
  expect_fail "'$name'" "$bin" info --config "$tmp/huge.json"
  cp -r "$tmp/run" "$tmp/run-huge" && cp "$tmp/huge.json" "$tmp/run-huge/config.json"
  expect_fail "'$name'" "$bin" generate --model "$tmp/run-huge" --prompt hi
  rm -rf "$tmp/run-huge"
done
expect_fail "GiB" "$bin" train --config "$tmp/tiny.json" --data "$tmp/short.txt" --out "$tmp/o-window" --window 100000000
check "a refused --window leaves no run folder" test ! -e "$tmp/o-window"

# Thousands of threads never finished.
expect_fail "--threads" "$bin" generate --model "$tmp/run" --prompt hi --threads 1000
expect_fail "--threads" "$bin" generate --model "$tmp/run" --prompt hi --threads 100000

# State files whose last logits or memory are wrong once crashed or ran on.
damage_state() {  # damage_state OUT PYTHON-EXPRESSION-ON-(header, data): rewrites good.state without its checksum
  "$py" - "$tmp/good.state" "$1" "$2" <<'EOF'
import json, struct, sys
src, out, how = sys.argv[1], sys.argv[2], sys.argv[3]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
header["__metadata__"].pop("infini_checksum", None)
def replace(name, dtype, shape, payload):
    global data
    # Rebuild the data with `name` replaced, keeping the others' bytes in order.
    parts = []
    for key, entry in sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = entry["data_offsets"]
        parts.append((key, entry, payload if key == name else bytes(data[b:e])))
    if name not in header:
        parts.append((name, {}, payload))
    data = bytearray()
    for key, entry, blob in parts:
        if key == name:
            entry = {"dtype": dtype, "shape": shape}
        entry["data_offsets"] = [len(data), len(data) + len(blob)]
        header[key] = entry
        data += blob
exec(how)
text = json.dumps(header).encode()
text += b" " * ((8 - len(text) % 8) % 8)
open(out, "wb").write(struct.pack("<Q", len(text)) + text + bytes(data))
EOF
}
# refused_state NAME NEEDLE EXPRESSION: a state damaged by EXPRESSION must be refused by generate --state.
refused_state() {
  damage_state "$tmp/$1.state" "$3"
  expect_fail "$2" "$bin" generate --model "$tmp/run" --state "$tmp/$1.state" --tokens 4
}
refused_state logits0 "'last_logits'" 'replace("last_logits", "F32", [0], b"")'
refused_state logits50000x0 "'last_logits'" 'replace("last_logits", "F32", [50000, 0], b"")'
refused_state logits-short "'last_logits'" 'replace("last_logits", "F32", [255], b"\0" * 1020)'
refused_state logits-nan "NaN" 'replace("last_logits", "F32", [256], struct.pack("<f", float("nan")) * 256)'
refused_state seg-batch "batch of 1" \
  'replace("layers.0.seg_k", "F32", [50000, 1, 0, 4], b""); replace("layers.0.seg_v", "F32", [50000, 1, 0, 4], b"")'
refused_state m-inf "'layers.0.M'" 'replace("layers.0.M", "F32", [1, 1, 4, 4], struct.pack("<f", float("inf")) * 16)'
# A one-byte-short header length once shifted every tensor by a byte.
"$py" -c '
import struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
open(sys.argv[2], "wb").write(struct.pack("<Q", n - 1) + raw[8:])' "$tmp/run/model.safetensors" "$tmp/short-header"
cp -r "$tmp/run" "$tmp/run-shifted" && cp "$tmp/short-header" "$tmp/run-shifted/model.safetensors"
expect_fail "model.safetensors" "$bin" generate --model "$tmp/run-shifted" --prompt hi
# A flipped bit in a checkpoint is found before training on it.
cp -r "$tmp/run" "$tmp/run-flipped"
"$py" -c '
import sys
p = sys.argv[1]; raw = bytearray(open(p, "rb").read()); raw[-9] ^= 0x40; open(p, "wb").write(raw)' "$tmp/run-flipped/checkpoint.safetensors"
expect_fail "checksum" "$bin" train --resume "$tmp/run-flipped" --steps 5
# A tokenizer file outside the model folder is never opened.
cp -r "$tmp/run" "$tmp/run-tok" && printf '{"type": "sentencepiece", "model": "/etc/passwd"}' >"$tmp/run-tok/tokenizer.json"
expect_fail "in the model folder" "$bin" generate --model "$tmp/run-tok" --prompt hi

# Scores that read as perfect on nothing.
printf 'x' >"$tmp/one-byte.txt"
expect_fail "nothing to score" "$bin" eval --model "$tmp/run" --data "$tmp/one-byte.txt"
expect_fail "shortest prompt" "$bin" passkey --model "$tmp/run" --lengths 1 --depths 0.5 --trials 1 --plot ''

# Runs and their folders.
expect_fail "already done 3 steps" "$bin" train --resume "$tmp/run" --steps 2
mkdir -p "$tmp/killed-early" && printf '{"step": 1, "loss": 5.0}\n' >"$tmp/killed-early/metrics.jsonl"
touch "$tmp/killed-early/checkpoint.safetensors.tmp.999999"
expect_fail "before its first checkpoint" "$bin" train --resume "$tmp/killed-early"
timeout 120 "$bin" train --config "$tmp/tiny.json" --data "$tmp/short.txt" --out "$tmp/killed-early" --steps 2 --window 8 --quiet \
  2>"$tmp/err"
check "a run killed before its first checkpoint starts again with its own command" test -f "$tmp/killed-early/checkpoint.safetensors"

# Output and input paths.
# /proc takes no new files, even from root.
expect_fail "cannot write" "$bin" plot "$tmp/run" --out /proc/infini-loss.png
check "an unwritable plot puts no PNG on stderr ($(wc -c <"$tmp/err") bytes)" test "$(wc -c <"$tmp/err")" -lt 2000
expect_fail "no-such-folder" "$bin" plot "$tmp/run" --out "$tmp/no-such-folder/loss.png"
expect_fail "is a folder" "$bin" read --model "$tmp/run" --input "$tmp" --save-state "$tmp/never.state"
expect_fail "is a folder" "$bin" generate --model "$tmp/run" --prompt-file "$tmp"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
