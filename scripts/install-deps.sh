#!/usr/bin/env bash
# Installs what infini needs from Debian 12's packages, and nothing that is already there.
#   --tests also what the server's client tests need (scripts/test.sh passes it)
#   --fuzz  also what the fuzz build needs (scripts/fuzz.sh, docs/RELIABILITY.md); the normal build
#           and the sanitizer build with g++ (scripts/sanitize-tests.sh) need none of it.
set -euo pipefail
packages=(
  g++ make cmake                      # toolchain
  libtorch-dev                        # LibTorch 1.13 (CPU): tensors and autograd
  libopenblas0-openmp                 # its BLAS: without it Debian falls back to the reference BLAS
  libblas-dev                         # BLAS to link against: the fused prefill calls sgemm directly
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libsentencepiece-dev                # subword tokenizers
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch                       # the Python reference for parity tests, and the Python package's torch
  pybind11-dev python3-pybind11 python3-dev  # the Python package's bindings (python/)
  libcpp-httplib-dev pkg-config       # `infini serve`'s HTTP
  python3-pytest python3-venv python3-pip python3-setuptools python3-wheel  # its tests and `pip install`
  gnuplot-nox                         # `infini plot`, `infini passkey` heatmaps
  libgloo-dev                         # headers for LibTorch's c10d Gloo process group (infini train --nproc)
)
if [ "${1:-}" = --tests ]; then
  # The server's client tests (tests/serve): Chromium for the web page, Node.js and npm for the
  # `openai` package and playwright-core (from the npm registry, pinned in a lockfile). A Node.js
  # that is already installed (with its npm) is used as it is.
  packages+=(chromium)
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi
if [ "${1:-}" = --fuzz ]; then
  # clang++ -fsanitize=fuzzer links libclang_rt.fuzzer*.a from libclang-rt-14-dev (libfuzzer-14-dev,
  # libFuzzer as a separate library, is not needed), and clang's OpenMP runtime builds the OpenMP sources.
  packages+=(clang-14 libclang-rt-14-dev libomp-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
