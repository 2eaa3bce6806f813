# Sourced by the CLI error tests: a scratch folder and expect_fail. Needs `tmp` unset and sets it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect_fail NEEDLE CMD...: CMD must exit non-zero (not by a signal, nor by running past 120 s) and
# print NEEDLE on stderr.
expect_fail() {
  local needle=$1
  shift
  timeout 120 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 124 ]; then
    echo "FAIL (exit $rc): $*"; sed 's/^/    /' "$tmp/err" | head -5; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$needle" "$tmp/err"; then
    echo "FAIL (no '$needle' in stderr): $*"; sed 's/^/    /' "$tmp/err" | head -5; failures=$((failures + 1)); return
  fi
  echo "ok: $* -> $(head -c 300 "$tmp/err" | head -n 1)"
}
