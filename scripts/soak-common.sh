# Sourced by the kill -9 soaks (soak-resume.sh, soak-read-state.sh): their arguments, a scratch
# folder and the tiny model config both use. Sets kills, seed, bin, py, tmp.
set -uo pipefail
kills=${1:-20} seed=${2:-1} bin=${3:-build/infini}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$bin" ] || { echo "$(basename "$0"): no $bin; build first (scripts/build.sh)" >&2; exit 2; }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' '{"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16,' \
  ' "d_ff": 64, "segment_len": 16, "memory": "infini-delta"}' >"$tmp/tiny.json"
