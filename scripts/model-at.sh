#!/usr/bin/env bash
# The shipped models/passkey-infini-delta as it was at a commit, written to DIR (kept if DIR has it
# already), so that experiments started from an earlier shipped model stay reproducible after it is
# replaced.
#
#   bash scripts/model-at.sh COMMIT DIR
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
commit=$1 dir=$2
cd "$(dirname "$0")/.."
[ -f "$dir/model.safetensors" ] && exit 0
mkdir -p "$dir"
for f in config.json tokenizer.json model.safetensors; do
  git show "$commit:models/passkey-infini-delta/$f" >"$dir/$f.tmp" \
    || { echo "model-at.sh: no models/passkey-infini-delta/$f at commit $commit" >&2; rm -f "$dir/$f.tmp"; exit 2; }
done
for f in config.json tokenizer.json model.safetensors; do mv "$dir/$f.tmp" "$dir/$f"; done
