"""Write a golden safetensors file from the Python reference.

/usr/bin/python3 tests/reference/make_golden.py --config FILE.json --dtype float64|float32 \
    --seed S --batch B --segments S --out OUT.safetensors

Contents: tokens (I64, (B, S*N + 1)), param/<name>, logits (B, S*N, V), loss (shape []),
state/<i>/M and state/<i>/z (infini modes, after the last segment's write),
state/<i>/xl_k and state/<i>/xl_v (xl mode, un-rotated cache of the last segment),
state/<i>/knn_k and state/<i>/knn_v (knn mode, block i = the kNN block only: the kNN memory after
the last segment's write, (B, H, min(knn_tokens, S*N), dk|dv), normalised un-rotated keys and
values, oldest first; every block of a knn model also has state/<i>/xl_k and xl_v, as in xl mode),
state/rmt_memory (rmt mode: the model-level memory R (B, rmt_tokens, D) the last segment wrote, the
last block's residual stream at its write rows; rmt has no per-layer state/<i>/... entries),
grad/<name>. __metadata__: config (full JSON), seed, batch, segments.

With Mixture-of-Depths (mod_every > 0) the forward uses top-k routing, `loss` is the total loss
CE + mod_aux_weight * aux/router_bce + aux/predictor_bce and grad/<name> is its gradient; also:
aux/router_bce and aux/predictor_bce (shape [], means over all routed decisions of the forward),
route/<i> (I64 0/1, (B, S*N)) top-k membership for each routed block i, and logits_causal
(B, S*N, V): the same tokens with causal routing, state carried across segments, no gradient.
A routed xl block's state/<i>/xl_k, xl_v hold the last segment's selected tokens' (k per row).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import infini_ref as ref  # noqa: E402
from safetensors_io import save_file  # noqa: E402


def fail(msg):
    print("make_golden: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        fail(message)


def main(argv=None):
    ap = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config JSON (fields per docs/MODEL.md)")
    ap.add_argument("--dtype", required=True, choices=["float64", "float32"])
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--batch", required=True, type=int)
    ap.add_argument("--segments", required=True, type=int)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    if args.batch < 1:
        fail("--batch must be >= 1")
    if args.segments < 1:
        fail("--segments must be >= 1")
    if args.seed < 0:
        fail("--seed must be >= 0")
    try:
        with open(args.config) as f:
            user = json.load(f)
    except OSError as e:
        fail("cannot read config %s: %s" % (args.config, e))
    except json.JSONDecodeError as e:
        fail("config %s is not valid JSON: %s" % (args.config, e))
    if isinstance(user, dict):
        user = dict(user)
        user["dtype"] = args.dtype  # the flag overrides the config's dtype
    try:
        cfg = ref.make_config(user)
    except ref.ConfigError as e:
        fail("bad config %s: %s" % (args.config, e))
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        fail("output directory %s does not exist" % out_dir)

    t0 = time.time()
    dtype = ref.DTYPES[args.dtype]
    B, S, N, V = args.batch, args.segments, cfg["segment_len"], cfg["vocab_size"]

    params = ref.random_params(cfg, args.seed, dtype)
    for t in params.values():
        t.requires_grad_(True)
    gen = torch.Generator().manual_seed(args.seed + 1)
    tokens = torch.randint(0, V, (B, S * N + 1), generator=gen, dtype=torch.int64)  # (B, S*N + 1)

    # one segment at a time, state carried (with autograd history) across segments;
    # routed blocks (if any) use top-k routing, as in training
    state = ref.init_state(cfg, B, dtype)
    seg_logits, seg_routes = [], []
    for s in range(S):
        logits_s, state, routes_s = ref.forward_segment(params, cfg, tokens[:, s * N:(s + 1) * N], state,
                                                        routing="topk", with_routes=True)
        seg_logits.append(logits_s)                                  # (B, N, V)
        seg_routes.append(routes_s)
    logits = torch.cat(seg_logits, dim=1)                            # (B, S*N, V)
    routes = ref.concat_routes(seg_routes)                           # {i: {key: (B, S*N)}}
    loss = ref.total_loss(logits, tokens[:, 1:], routes, cfg)        # plain CE when dense
    loss.backward()

    out = {"tokens": tokens, "logits": logits.detach(), "loss": loss.detach().reshape(())}
    for name, _ in ref.param_shapes(cfg):
        out["param/" + name] = params[name].detach()
        g = params[name].grad
        out["grad/" + name] = (torch.zeros_like(params[name]) if g is None else g).detach()
    # a routed xl block keeps its cache per row; top-k gives every row k tokens, so it stacks
    for i, st in enumerate(ref.stacked_state(state)):
        for key, t in st.items():
            out["state/%d/%s" % (i, key)] = t.detach().to(dtype)
    if cfg["memory"] == "rmt":
        out["state/rmt_memory"] = state.rmt_memory.detach().to(dtype)   # (B, p, D)
    if routes:
        router_bce, predictor_bce = ref.mod_aux_losses(routes)
        out["aux/router_bce"] = router_bce.detach().reshape(())
        out["aux/predictor_bce"] = predictor_bce.detach().reshape(())
        for i, rt in routes.items():
            out["route/%d" % i] = rt["y"].detach().to(torch.int64)   # (B, S*N) 0/1
        # the same tokens with causal routing (as in sessions and generation), fresh state
        with torch.no_grad():
            cstate = ref.init_state(cfg, B, dtype)
            causal = []
            for s in range(S):
                logits_s, cstate = ref.forward_segment(params, cfg, tokens[:, s * N:(s + 1) * N], cstate,
                                                       routing="causal")
                causal.append(logits_s)                              # (B, N, V)
        out["logits_causal"] = torch.cat(causal, dim=1)              # (B, S*N, V)
    meta = {
        "config": json.dumps(cfg, sort_keys=True),
        "seed": str(args.seed),
        "batch": str(args.batch),
        "segments": str(args.segments),
    }
    save_file(out, args.out, metadata=meta)
    print("make_golden: wrote %s (%d tensors, loss %.10g, %.2fs)"
          % (args.out, len(out), loss.item(), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
