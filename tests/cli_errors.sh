#!/usr/bin/env bash
# Bad input never crashes infini: each case must exit non-zero with a message naming the culprit.
set -u
bin=$1
src=$2
source "$(dirname "$0")/cli_expect.sh"

printf '{"memory": "infinite"}' >"$tmp/bad-mode.json"
printf '{"d_model": ' >"$tmp/broken.json"
printf '{"vocab_size": 64, "d_model": 16, "n_layers": 1, "n_heads": 1, "d_key": 4, "d_value": 4, "d_ff": 8, "segment_len": 4}' >"$tmp/small-vocab.json"
: >"$tmp/empty.txt"
printf 'short' >"$tmp/short.txt"
printf 'x' >"$tmp/one-byte.txt"
mkdir -p "$tmp/model"
printf 'not json' >"$tmp/model/config.json"
mkdir -p "$tmp/no-docs" "$tmp/with-empty-doc" "$tmp/latin1"
printf 'notes, not a document' >"$tmp/no-docs/README.md"
printf 'a fine document' >"$tmp/with-empty-doc/1.txt"
: >"$tmp/with-empty-doc/2.txt"
printf 'caf\xe9 cr\xe8me, written in Latin-1' >"$tmp/latin1/menu.txt"
tiny='{"vocab_size": 400, "d_model": 16, "n_layers": 1, "n_heads": 1, "d_key": 4, "d_value": 4, "d_ff": 8, "segment_len": 4}'
printf '%s' "$tiny" >"$tmp/tiny.json"
# A real run folder and tokenizer to damage.
"$bin" tokenizer train --input "$src/data/sample/kjv-genesis-exodus.txt" --vocab 400 --out "$tmp/sp.model" 2>/dev/null
"$bin" train --config "$tmp/tiny.json" --data "$tmp/short.txt" --out "$tmp/run" --steps 2 --window 4 --quiet 2>/dev/null
printf 'a document that will grow' >"$tmp/growing.txt"
"$bin" train --config "$tmp/tiny.json" --data "$tmp/growing.txt" --out "$tmp/run-growing" --steps 2 --window 4 --quiet 2>/dev/null
printf ', and grew' >>"$tmp/growing.txt"
"$bin" read --model "$tmp/run-growing" --input "$tmp/short.txt" --save-state "$tmp/growing.state" 2>/dev/null
head -c 1000 "$tmp/run/checkpoint.safetensors" >"$tmp/cut" && mv "$tmp/cut" "$tmp/run/checkpoint.safetensors"
cp -r "$tmp/run" "$tmp/model-missing-field"
grep -v '"d_model"' "$tmp/run/config.json" >"$tmp/model-missing-field/config.json"

expect_fail "--bogus" "$bin" train --data "$tmp/short.txt" --out "$tmp/o" --bogus
expect_fail "--data" "$bin" train --out "$tmp/o"
expect_fail "--steps: must be a number >= 1" "$bin" train --data "$src/data/sample/kjv-genesis-exodus.txt" --out "$tmp/o" --steps -3
expect_fail "missing.txt" "$bin" train --data "$tmp/missing.txt" --out "$tmp/o"
expect_fail "empty.txt" "$bin" train --data "$tmp/empty.txt" --out "$tmp/o"
expect_fail "shorter than two tokens" "$bin" train --data "$tmp/one-byte.txt" --out "$tmp/o"
expect_fail "'memory'" "$bin" train --config "$tmp/bad-mode.json" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "broken.json" "$bin" train --config "$tmp/broken.json" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "vocab_size" "$bin" train --config "$tmp/small-vocab.json" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "not a model folder" "$bin" generate --model "$tmp/nope" --prompt hi
expect_fail "config.json" "$bin" generate --model "$tmp/model" --prompt hi
expect_fail "empty corpus" "$bin" train --data "$tmp/no-docs" --out "$tmp/o"
expect_fail "2.txt: zero-length document" "$bin" train --data "$tmp/with-empty-doc" --out "$tmp/o"
expect_fail "menu.txt: not valid UTF-8 at byte 3" "$bin" train --tokenizer "$tmp/sp.model" --config "$tmp/tiny.json" --data "$tmp/latin1" --out "$tmp/o"
expect_fail "menu.txt: not valid UTF-8" "$bin" tokenizer train --input "$tmp/latin1" --vocab 300 --out "$tmp/o.model"
expect_fail "checkpoint.safetensors: truncated" "$bin" train --resume "$tmp/run"
expect_fail "the corpus changed" "$bin" train --resume "$tmp/run-growing" --steps 4
expect_fail "made with another model" "$bin" generate --model "$tmp/run" --state "$tmp/growing.state"
expect_fail "give --prompt, --prompt-file or --state" "$bin" generate --model "$tmp/run"
expect_fail "--prompt excludes --prompt-file" "$bin" generate --model "$tmp/run" --prompt hi --prompt-file "$tmp/short.txt"
expect_fail "missing.txt" "$bin" read --model "$tmp/run" --input "$tmp/missing.txt" --save-state "$tmp/x.state"
expect_fail "not an infini state file" "$bin" generate --model "$tmp/run" --state "$tmp/run/model.safetensors"
expect_fail "missing field 'd_model'" "$bin" generate --model "$tmp/model-missing-field" --prompt hi
expect_fail "not empty" "$bin" train --data "$tmp/short.txt" --out "$tmp/run"
expect_fail "--lr excludes --resume" "$bin" train --resume "$tmp/run" --lr 1
expect_fail "no checkpoint to resume" "$bin" train --resume "$tmp/nope"
expect_fail "--vocab" "$bin" tokenizer train --input "$tmp/short.txt" --vocab 100 --out "$tmp/o.model"
expect_fail "not a SentencePiece model" "$bin" train --tokenizer "$tmp/short.txt" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "metrics.jsonl" "$bin" plot "$tmp/model"
expect_fail "nope.json" "$bin" bench --config "$tmp/nope.json"
expect_fail "nope.txt" "$bin" eval --model "$tmp/run" --data "$tmp/nope.txt"
expect_fail "not a PG19-style folder" "$bin" eval --model "$tmp/run" --data "$tmp/short.txt" --split test
expect_fail "--model or --config" "$bin" info
expect_fail "nope.json" "$bin" info --config "$tmp/nope.json"
expect_fail "--lengths: '12Q' is not a token count" "$bin" passkey --model "$tmp/run" --lengths 12Q
expect_fail "--depths" "$bin" passkey --model "$tmp/run" --depths 0,1.5
expect_fail "--model" "$bin" passkey
expect_fail "--key-min 9 is larger than --key-max 3" "$bin" passkey --model "$tmp/run" --key-min 9 --key-max 3
expect_fail "the folder $tmp/no-such-folder does not exist" "$bin" passkey --model "$tmp/run" --plot "$tmp/no-such-folder/p.png"
expect_fail "--passkey-min-tokens" "$bin" train --task passkey --window 400 --passkey-min-tokens 500 --out "$tmp/o"
expect_fail "--passkey-min-tokens is for --task passkey" "$bin" train --data "$tmp/short.txt" --passkey-min-tokens 500 --out "$tmp/o"
expect_fail "--passkey-key-alphabet" "$bin" train --task passkey --window 512 --passkey-key-alphabet alnum --out "$tmp/o"
expect_fail "--passkey-virtual-min-tokens and --passkey-lead-bytes are for --task passkey" "$bin" train --data "$tmp/short.txt" --passkey-repeat-keys 0.5 --out "$tmp/o"
expect_fail "--passkey-repeat-keys" "$bin" train --task passkey --window 512 --passkey-repeat-keys 1.5 --out "$tmp/o"
expect_fail "--passkey-lead-bytes are for --task passkey" "$bin" train --data "$tmp/short.txt" --passkey-lead-bytes 64 --out "$tmp/o"
expect_fail "--passkey-lead-bytes" "$bin" train --task passkey --window 512 --passkey-lead-bytes 5000 --out "$tmp/o"
expect_fail "and the longest lead (--passkey-lead-bytes) has" "$bin" train --task passkey --window 256 --passkey-lead-bytes 64 --out "$tmp/o"
expect_fail "--passkey-virtual-min-tokens): expected at most --passkey-virtual-tokens (0)" "$bin" train --task passkey --window 512 --passkey-virtual-min-tokens 4096 --out "$tmp/o"
expect_fail "not a model folder" "$bin" passkey --model "$tmp/nope"
expect_fail "leave out --data" "$bin" train --task passkey --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "--task" "$bin" train --task copy --out "$tmp/o"
expect_fail "not a model folder" "$bin" train --init "$tmp/nope" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "--config excludes --init" "$bin" train --init "$tmp/run" --config "$tmp/tiny.json" --data "$tmp/short.txt" --out "$tmp/o"
expect_fail "A subcommand is required" "$bin"

if [ "$failures" -ne 0 ]; then echo "$failures case(s) failed"; exit 1; fi
echo "all bad-input cases handled"
