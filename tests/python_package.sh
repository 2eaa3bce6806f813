#!/usr/bin/env bash
# The Python package as a user gets it (docs/PYTHON.md): `pip install ./python` into a fresh
# `python3 -m venv --system-site-packages` environment (Debian's torch visible), offline, then its
# pytest suite (python/tests) from that environment, against the C++ engine's own results.
#   tests/python_package.sh SOURCE_DIR BUILD_DIR INFINI_BIN API_PROBE [pytest arguments...]
set -euo pipefail
source_dir=$1 build_dir=$2 infini_bin=$3 probe=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
# Build isolation would download setuptools; Debian's is visible to the venv.
INFINI_BUILD_DIR=$build_dir "$tmp/venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps \
  --disable-pip-version-check "$source_dir/python"
cd "$tmp"  # not the source tree: `import infini` must find the installed package
"$tmp/venv/bin/python" -c 'import infini, sys; print("infini", infini.__version__, "from", infini.__file__, file=sys.stderr)'
INFINI_SOURCE_DIR=$source_dir INFINI_BIN=$infini_bin INFINI_PROBE=$probe \
  "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$source_dir/python/tests" "$@"
