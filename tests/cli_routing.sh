#!/usr/bin/env bash
# Mixture-of-Depths end to end through the CLI: a tiny routed model trains (loss falls, the router's
# and predictor's agreement with top-k is logged), evaluates under both routings, generates what the
# independent Python reference generates, and `bench --vs` compares it with its dense twin.
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data="$src/data/sample/kjv-genesis-exodus.txt"
for routed in 0 2; do
  cat >"$tmp/tiny-$routed.json" <<JSON
{"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 16, "d_value": 16,
 "d_ff": 64, "segment_len": 16, "memory": "infini-delta", "mod_every": $routed, "mod_capacity": 0.25}
JSON
  "$bin" train --config "$tmp/tiny-$routed.json" --data "$data" --out "$tmp/model-$routed" --steps 40 --batch 4 \
    --window 64 --lr 3e-3 --warmup 5 --val-every 0 --threads 1 2>"$tmp/train-$routed.log"
done
/usr/bin/python3 - "$tmp/model-2/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[-1]["loss"] < 0.75 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
for key in ("router_accuracy", "predictor_accuracy"):
    assert all(0 <= r[key] <= 1 for r in rows), key
print("routed training: loss %.3f -> %.3f, router agrees with top-k on %.0f%% at the end"
      % (rows[0]["loss"], rows[-1]["loss"], 100 * rows[-1]["router_accuracy"]))
PY
grep -Eq '"mod_every": ?2' "$tmp/model-2/config.json"
# Evaluation under both routings: top-k takes exactly the capacity and reports the predictors' accuracy.
head -c 2000 "$data" >"$tmp/chapter.txt"
for routing in topk causal; do
  "$bin" eval --model "$tmp/model-2" --data "$tmp/chapter.txt" --routing $routing --json --threads 1 \
    2>"$tmp/eval-$routing.log" >"$tmp/eval-$routing.json"
done
grep -q "routing topk" "$tmp/eval-topk.log"
/usr/bin/python3 - "$tmp/eval-topk.json" "$tmp/eval-causal.json" <<'PY'
import json, sys
topk, causal = (json.load(open(p)) for p in sys.argv[1:3])
assert topk["routing"] == "topk" and causal["routing"] == "causal"
assert abs(topk["routed_share"] - 0.25) < 0.01, topk["routed_share"]  # 2000 tokens: 125 segments of 16, k = 4
assert 0 <= topk["router_accuracy"] <= 1 and 0 <= topk["predictor_accuracy"] <= 1
assert "router_accuracy" not in causal and 0 <= causal["routed_share"] <= 1
print("eval: top-k %.3f, causal %.3f bits/byte; causal routing took %.0f%% of tokens"
      % (topk["bits_per_byte"], causal["bits_per_byte"], 100 * causal["routed_share"]))
PY
# Greedy generation equals the independent Python reference's, which routes causally.
"$bin" generate --model "$tmp/model-2" --prompt "And God said" --tokens 40 --temperature 0 --threads 1 >"$tmp/greedy.txt"
/usr/bin/python3 "$src/tests/reference/check_model_file.py" "$tmp/model-2" "And God said" 40 "$tmp/greedy.txt"
# Side by side: dense (A) against routed (B).
"$bin" bench --model "$tmp/model-0" --vs "$tmp/model-2" --context 100 --context-file "$tmp/chapter.txt" --decode-tokens 20 --rounds 2 \
  --batch 2 --window 64 --steps 1 --warmup-steps 1 --threads 1 --json 2>/dev/null >"$tmp/vs.json"
/usr/bin/python3 - "$tmp/vs.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["a"]["config"].get("mod_every", 0) == 0 and r["b"]["config"]["mod_every"] == 2
assert r["context"] == "given" and r["context_tokens"] == 100, (r["context"], r["context_tokens"])
for m in ("a", "b"):
    assert r[m]["decode_seconds_per_token"] > 0 and r[m]["train_step_seconds"] > 0 and r[m]["decode_path"] == "fused"
assert r["b"]["forward_flops_per_token"] < r["a"]["forward_flops_per_token"]
s = r["b_speedup"]
assert abs(s["forward_flops"] - r["a"]["forward_flops_per_token"] / r["b"]["forward_flops_per_token"]) < 1e-12
print("bench --vs: routed decode %.2fx, train step %.2fx, forward FLOPs %.2fx of dense"
      % (s["decode"], s["train_step"], s["forward_flops"]))
PY
# The passkey recipe works on a routed model: fine-tuning from it keeps the routing, and retrieval is
# evaluated through causal routing.
"$bin" train --init "$tmp/model-2" --task passkey --window 420 --passkey-min-tokens 350 --steps 2 --batch 2 \
  --val-every 1 --val-windows 2 --out "$tmp/passkey-mod" --threads 1 2>"$tmp/passkey-mod.log"
grep -Eq '"mod_every": ?2' "$tmp/passkey-mod/config.json"
"$bin" passkey --model "$tmp/passkey-mod" --lengths 300,1K --depths 0,1 --trials 2 --json --plot "" --threads 1 \
  2>/dev/null >"$tmp/passkey-mod.json"
/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert len(r["cells"]) == 4, r; print("routed passkey model: %d cells" % len(r["cells"]))' "$tmp/passkey-mod.json"
