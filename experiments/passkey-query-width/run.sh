# A probe, not the recipe: the delta recipe with queries whose qk_conv taps start over 2 tokens
# (qk_conv_query_width 2, keys over 3), so that a query can hold the digit before the one just read
# and tell "after 3, 6" from "after 6, 3" in a key such as 36368 (experiments/passkey-lab-log.md, "Queries that
# start over two tokens"). lm..mix as the nine-stage recipe (`git show d50a109:scripts/passkey-recipe.sh`)
# in mode conv-q2-infini-delta, then the 87-minute ending: `virtual` with 64-token segments for 800 steps (experiments/passkey-virtual64).
#   bash experiments/passkey-query-width/run.sh [EVALS]   (EVALS as virtual64/run.sh's; default 32K:40)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=runs/passkey-recipe-conv-q2-infini-delta
git show d50a109:scripts/passkey-recipe.sh >scripts/.passkey-recipe-nine.sh
UNTIL=mix bash scripts/.passkey-recipe-nine.sh conv-q2-infini-delta "$out"
FROM=$out/mix OUT=$out/v64 bash experiments/passkey-virtual64/run.sh 800 "${1:-32K:40}"
