#!/usr/bin/env bash
# Mixture-of-Depths against its dense twin (issue: MoD), at equal training FLOPs.
#   dense: the reference config (infini-delta, gate_init -3) with the memory-mode comparison's recipe,
#          600 steps of 4 x 2048 tokens (scripts/memory-mode-run.sh);
#   mod:   the same with every other block routed at capacity 12.5% (configs/reference-mod.json),
#          trained for as many steps as the dense run's FLOPs buy at its lower FLOPs per token, and
#          once more for the dense run's 600 steps (equal tokens).
# Both are evaluated on the held-out documents (the routed model under causal routing, as it samples,
# and under top-k, which also gives the router's and predictor's accuracy); then `infini bench --vs`
# times decoding (after reading 16K tokens of a held-out book) and training side by side.
#
#   bash scripts/compare-mod.sh [OUT] [RESULTS] [DENSE_RUN]
#   (defaults: runs/mod, experiments/mod-vs-dense, a new dense run in OUT; DENSE_RUN may name a finished
#    run of the same recipe, e.g. runs/memory-modes-investigation/infini-delta-gate-3)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/mod}
results=${2:-experiments/mod-vs-dense}
dense_run=${3:-}
bash scripts/install-deps.sh
bash scripts/build.sh
[ -d data/corpus/train ] || bash scripts/prepare-corpus.sh data/corpus
mkdir -p "$out" "$results"

flops() {  # config -> training FLOPs per token, from the same formula `infini bench` reports
  build/infini bench --config "$1" --batch 1 --window 256 --steps 1 --warmup-steps 0 --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["train_flops_per_token"])'
}
dense_steps=600
mod_steps=$(python3 -c "import math; print(math.floor($dense_steps * $(flops configs/reference.json) / $(flops configs/reference-mod.json)))")
echo "== equal training FLOPs: dense $dense_steps steps, routed $mod_steps steps" >&2

if [ -z "$dense_run" ]; then
  bash scripts/memory-mode-run.sh "$out" infini-delta-dense infini-delta "$dense_steps" -3.0
  dense_run="$out/infini-delta-dense"
  dense_eval="$out/infini-delta-dense.eval.json"
else
  dense_eval="$dense_run.eval.json"
  [ -s "$dense_eval" ] || { echo "$dense_eval is missing: evaluate $dense_run first" >&2; exit 1; }
fi
BASE_CONFIG=configs/reference-mod.json bash scripts/memory-mode-run.sh "$out" infini-delta-mod infini-delta "$mod_steps" -3.0
BASE_CONFIG=configs/reference-mod.json bash scripts/memory-mode-run.sh "$out" infini-delta-mod-600 infini-delta "$dense_steps" -3.0
if [ ! -s "$out/infini-delta-mod.topk.eval.json" ]; then
  build/infini eval --model "$out/infini-delta-mod" --data data/corpus --routing topk --json \
    >"$out/infini-delta-mod.topk.eval.json.tmp"
  mv "$out/infini-delta-mod.topk.eval.json.tmp" "$out/infini-delta-mod.topk.eval.json"
fi
if [ ! -s "$out/vs.json" ]; then
  build/infini bench --model "$dense_run" --vs "$out/infini-delta-mod" --context 16384 --decode-tokens 256 --rounds 4 \
    --context-file data/corpus/validation/kjv-06-Josh.txt \
    --batch 4 --window 2048 --steps 3 --warmup-steps 1 --json >"$out/vs.json.tmp"
  mv "$out/vs.json.tmp" "$out/vs.json"
fi
cp "$dense_eval" "$results/dense.eval.json"
cp "$dense_run/metrics.jsonl" "$results/dense.metrics.jsonl"
cp "$out/infini-delta-mod.eval.json" "$results/mod.eval.json"
cp "$out/infini-delta-mod.topk.eval.json" "$results/mod.topk.eval.json"
cp "$out/infini-delta-mod/metrics.jsonl" "$results/mod.metrics.jsonl"
cp "$out/infini-delta-mod-600.eval.json" "$results/mod-600.eval.json"
cp "$out/infini-delta-mod-600/metrics.jsonl" "$results/mod-600.metrics.jsonl"
cp "$out/vs.json" "$results/vs.json"
python3 - "$results" <<'PY'
import json, os, sys
d = sys.argv[1]
load = lambda n: json.load(open(os.path.join(d, n)))
dense, mod, topk, vs = load("dense.eval.json"), load("mod.eval.json"), load("mod.topk.eval.json"), load("vs.json")
last_val = lambda n: [json.loads(l) for l in open(os.path.join(d, n)) if '"val_loss"' in l][-1]
dv, mv = last_val("dense.metrics.jsonl"), last_val("mod.metrics.jsonl")
m6, m6v = load("mod-600.eval.json"), last_val("mod-600.metrics.jsonl")
rows = [
    ("dense", dv["step"], dv["tokens"], dv["val_loss"], dense["bits_per_byte"], vs["a"]),
    ("MoD, causal routing", mv["step"], mv["tokens"], mv["val_loss"], mod["bits_per_byte"], vs["b"]),
    ("MoD, top-k routing", mv["step"], mv["tokens"], mv["val_loss"], topk["bits_per_byte"], vs["b"]),
    ("MoD, equal tokens, causal routing", m6v["step"], m6v["tokens"], m6v["val_loss"], m6["bits_per_byte"], vs["b"]),
]
with open(os.path.join(d, "table.md"), "w") as f:
    f.write("| model | steps | training tokens | validation loss (top-k) | held-out bits/byte | train FLOPs/token | decode tok/s | train tok/s |\n")
    f.write("|---|---|---|---|---|---|---|---|\n")
    for name, step, tokens, val, bpb, b in rows:
        f.write("| %s | %d | %.0f | %.4f | %.4f | %.3g | %.0f | %.0f |\n" % (name, step, tokens, val, bpb,
                b["train_flops_per_token"], b["decode_tokens_per_second"], b["train_tokens_per_second"]))
    s = vs["b_speedup"]
    f.write("\nMoD over dense: decode %.2fx faster, training step %.2fx faster, %.2fx fewer forward FLOPs per token; "
            "causal routing took %.1f%% of tokens (capacity 12.5%%); under top-k the router's sign matched "
            "membership for %.1f%% of decisions, the predictor's for %.1f%%.\n"
            % (s["decode"], s["train_step"], s["forward_flops"], 100 * mod["routed_share"],
               100 * topk["router_accuracy"], 100 * topk["predictor_accuracy"]))
print(open(os.path.join(d, "table.md")).read())
PY
