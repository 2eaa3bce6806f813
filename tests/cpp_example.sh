#!/usr/bin/env bash
# The installed C++ package from an outside project: `cmake --install` BUILD_DIR into a fresh prefix,
# then examples/cpp configured against that prefix alone (find_package(infini)), built, and run on the
# shipped model, which must find the passkey.
#   tests/cpp_example.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1 build_dir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/infini/infini.h" && test -f "$tmp/prefix/lib/cmake/infini/infiniConfig.cmake"
if find "$tmp/prefix/include" -name '*.h' | xargs grep -l '#include "\(model\|infer\|io\|util\|kernels\|compat\)/' ; then
  echo "cpp_example: an installed header includes the engine's internals" >&2
  exit 1
fi
cmake -S "$source_dir/examples/cpp" -B "$tmp/example" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/example" -j"$(nproc)" >/dev/null
"$tmp/example/read_and_ask" "$source_dir/models/passkey-infini-delta" 300
