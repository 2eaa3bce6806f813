"""Checks of the Python reference itself. Exit code 0 = all passed.

/usr/bin/python3 tests/reference/selftest.py
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import infini_ref as ref  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64

TINY = {"vocab_size": 37, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 8, "d_value": 12,
        "d_ff": 40, "segment_len": 8, "memory": "infini-delta", "gate_init": 0.0,
        "tie_embeddings": False}
# even smaller, for gradcheck (every parameter element is perturbed)
MICRO = {"vocab_size": 5, "d_model": 4, "n_layers": 2, "n_heads": 2, "d_key": 2, "d_value": 3,
         "d_ff": 3, "segment_len": 3, "memory": "infini-delta"}

_results = []


def check(name, fn):
    t0 = time.time()
    try:
        fn()
        ok, msg = True, ""
    except Exception as e:  # noqa: BLE001
        ok, msg = False, "%s: %s" % (type(e).__name__, e)
    _results.append(ok)
    print("%-4s %-62s %6.2fs %s" % ("ok" if ok else "FAIL", name, time.time() - t0, msg), flush=True)


def cfg_of(base, **kw):
    u = dict(base)
    u.update(kw)
    u["dtype"] = "float64"
    return ref.make_config(u)


def tokens_for(cfg, B, T, seed):
    return torch.randint(0, cfg["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def assert_close(a, b, tol, what):
    d = (a - b).abs().max().item() if a.numel() else 0.0
    if not d <= tol:
        raise AssertionError("%s: max abs diff %.3g > %.3g" % (what, d, tol))


# ---------------------------------------------------------------------------------------------
# (a) gradcheck through 2 segments (full backprop through M and z)

def gradcheck_mode(mode, tie):
    cfg = cfg_of(MICRO, memory=mode, tie_embeddings=tie)
    params = ref.random_params(cfg, 3, F64)
    names = [n for n, _ in ref.param_shapes(cfg)]
    tok = tokens_for(cfg, 2, 2 * cfg["segment_len"], 4)  # 2 segments
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)

    def f(*flat):
        logits, state = ref.forward(dict(zip(names, flat)), cfg, tok)
        # include the final state so the gradient of the second write is checked too
        return (logits,) + tuple(t for st in state for t in st.values())

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# (b) first segment with zero memory: A_mem == 0 exactly, so A = (1 - sigmoid(beta)) A_dot

def first_segment_attention_exact():
    for mode in ("infini-delta", "infini-linear"):
        cfg = cfg_of(TINY, memory=mode)
        p = ref.random_params(cfg, 5, F64)
        B, N, D, H, dk, dv = 2, cfg["segment_len"], cfg["d_model"], cfg["n_heads"], cfg["d_key"], cfg["d_value"]
        x = torch.randn(B, N, D, generator=torch.Generator().manual_seed(6), dtype=F64)
        st = ref.init_state(cfg, B, F64)[0]
        out, _ = ref.attention(p, cfg, 0, x, st, True)
        # the read itself is exactly zero
        q = (x @ p["blocks.0.attn.qkv_proj.weight"].t())[..., :H * dk].view(B, N, H, dk).transpose(1, 2)
        a_mem = ref.memory_read(ref.sigma(q), st["M"], st["z"], cfg["memory_eps"])
        assert torch.equal(a_mem, torch.zeros_like(a_mem)), "A_mem not exactly zero"
        # local-only attention (mode none) with the head outputs scaled by (1 - sigmoid(beta))
        qkv = x @ p["blocks.0.attn.qkv_proj.weight"].t()
        k = qkv[..., H * dk:2 * H * dk].view(B, N, H, dk).transpose(1, 2)
        v = qkv[..., 2 * H * dk:].view(B, N, H, dv).transpose(1, 2)
        a_dot = ref.local_attention(q, k, v, None, None, cfg["rope_theta"])
        g = torch.sigmoid(p["blocks.0.attn.gate"]).view(1, H, 1, 1)
        a = ((1.0 - g) * a_dot).transpose(1, 2).reshape(B, N, H * dv)
        want = a @ p["blocks.0.attn.out_proj.weight"].t()
        assert torch.equal(out, want), "first-segment attention != (1 - sigmoid(beta)) * local"


def first_segment_model_vs_none():
    # whole model: infini mode on one segment == mode 'none' with out_proj columns of head h
    # scaled by (1 - sigmoid(beta_h)) (equal up to rounding)
    for mode in ("infini-delta", "infini-linear"):
        cfg = cfg_of(TINY, memory=mode)
        cfg_none = cfg_of(TINY, memory="none")
        p = ref.random_params(cfg, 7, F64)
        pn = {}
        dv = cfg["d_value"]
        for n, _ in ref.param_shapes(cfg_none):
            pn[n] = p[n].clone()
        for i in range(cfg["n_layers"]):
            scale = (1.0 - torch.sigmoid(p["blocks.%d.attn.gate" % i])).repeat_interleave(dv)  # (H*dv,)
            pn["blocks.%d.attn.out_proj.weight" % i] = p["blocks.%d.attn.out_proj.weight" % i] * scale
        tok = tokens_for(cfg, 2, cfg["segment_len"], 8)
        l1, _ = ref.forward(p, cfg, tok)
        l2, _ = ref.forward(pn, cfg_none, tok)
        assert_close(l1, l2, 1e-12, mode)


# ---------------------------------------------------------------------------------------------
# (c) safetensors round trip

def safetensors_roundtrip():
    g = torch.Generator().manual_seed(9)
    tensors = {
        "a/f64": torch.randn(3, 4, generator=g, dtype=F64),
        "b.f32": torch.randn(5, generator=g, dtype=torch.float32),
        "c_bf16": torch.randn(2, 3, 2, generator=g).to(torch.bfloat16),
        "i64": torch.randint(-2**62, 2**62, (7,), generator=g, dtype=torch.int64),
        "i32": torch.randint(-2**31, 2**31 - 1, (2, 2), generator=g, dtype=torch.int32),
        "scalar": torch.tensor(3.25, dtype=F64),
        "scalar_i": torch.tensor(-7, dtype=torch.int64),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "noncontig": torch.arange(12, dtype=F64).view(3, 4).t(),
    }
    meta = {"config": json.dumps({"x": 1}), "seed": "3"}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.safetensors")
        save_file(tensors, path, metadata=meta)
        with open(path, "rb") as f:
            raw = f.read()
        hlen = int.from_bytes(raw[:8], "little")
        assert (8 + hlen) % 8 == 0, "header not padded to a multiple of 8"
        header = json.loads(raw[8:8 + hlen])
        assert header["scalar"]["shape"] == [] and header["c_bf16"]["dtype"] == "BF16"
        # byte layout: little-endian row-major, at the stated offsets
        b, e = header["noncontig"]["data_offsets"]
        import struct
        vals = struct.unpack("<12d", raw[8 + hlen + b: 8 + hlen + e])
        assert list(vals) == tensors["noncontig"].contiguous().reshape(-1).tolist()
        back, meta2 = load_file(path)
    assert meta2 == meta, "metadata differs"
    assert set(back) == set(tensors), "names differ"
    for n, t in tensors.items():
        assert back[n].dtype == t.dtype and back[n].shape == t.shape, n
        assert torch.equal(back[n], t), n


# ---------------------------------------------------------------------------------------------
# (d) delta rule, single key row: what is exactly true

def delta_single_key():
    g = torch.Generator().manual_seed(10)
    B, H, dk, dv = 2, 3, 4, 5
    eps = 1e-6
    k = torch.randn(B, H, 1, dk, generator=g, dtype=F64)  # one key row
    v = torch.randn(B, H, 1, dv, generator=g, dtype=F64)
    s = ref.sigma(k)                                        # (B, H, 1, dk)
    M0, z0 = torch.zeros(B, H, dk, dv, dtype=F64), torch.zeros(B, H, dk, dtype=F64)
    M1, z1 = ref.memory_write(s, v, M0, z0, eps, delta=True)
    M1l, z1l = ref.memory_write(s, v, M0, z0, eps, delta=False)
    # from zero memory the delta term is exactly zero: delta write == linear write
    assert torch.equal(M1, M1l) and torch.equal(z1, z1l), "first delta write != linear write"
    # retrieval of that key returns v * |s|^2 / (|s|^2 + eps), i.e. v up to eps
    ss = (s * s).sum(-1, keepdim=True)                      # (B, H, 1, 1)
    r = ref.memory_read(s, M1, z1, eps)
    assert_close(r, v * ss / (ss + eps), 1e-14, "retrieval")
    # writing the same (k, v) again: M changes only by s^T v * eps / (|s|^2 + eps) (-> 0 as eps -> 0);
    # z keeps the linear update (z doubles)
    M2, z2 = ref.memory_write(s, v, M1, z1, eps, delta=True)
    assert_close(M2 - M1, s.transpose(-1, -2) @ v * (eps / (ss + eps)), 1e-14, "second write")
    assert_close(z2, 2 * z1, 0.0, "z")
    rel = ((M2 - M1).abs().max() / M1.abs().max()).item()
    assert rel < 1e-5, "M moved by %.3g relative" % rel
    # the linear rule, by contrast, doubles M
    M2l, _ = ref.memory_write(s, v, M1, z1, eps, delta=False)
    assert_close(M2l, 2 * M1, 1e-14, "linear second write")


# ---------------------------------------------------------------------------------------------
# (e) naive per-head, per-row, per-channel re-implementation of one attention call

def _sig(x):
    return x + 1.0 if x > 0 else math.exp(x)


def _rope_vec(x, p, theta):
    dk = len(x)
    h = dk // 2
    y = list(x)
    for i in range(h):
        a = p * theta ** (-2.0 * i / dk)
        y[i] = x[i] * math.cos(a) - x[i + h] * math.sin(a)
        y[i + h] = x[i + h] * math.cos(a) + x[i] * math.sin(a)
    return y


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def naive_attention(p, cfg, li, x, st):
    B, N, D = x.shape
    H, dk, dv = cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    eps, theta, mode = cfg["memory_eps"], cfg["rope_theta"], cfg["memory"]
    W = p["blocks.%d.attn.qkv_proj.weight" % li].tolist()
    Wo = p["blocks.%d.attn.out_proj.weight" % li].tolist()
    X = x.tolist()
    out = [[[0.0] * D for _ in range(N)] for _ in range(B)]
    newM = [[None] * H for _ in range(B)]
    newz = [[None] * H for _ in range(B)]
    for b in range(B):
        for h in range(H):
            q = [[_dot(W[h * dk + j], X[b][t]) for j in range(dk)] for t in range(N)]
            k = [[_dot(W[H * dk + h * dk + j], X[b][t]) for j in range(dk)] for t in range(N)]
            v = [[_dot(W[2 * H * dk + h * dv + j], X[b][t]) for j in range(dv)] for t in range(N)]
            keys = [(_rope_vec(k[s], s, theta), v[s], s) for s in range(N)]
            if mode == "xl" and st["xl_k"] is not None:
                kc, vc = st["xl_k"][b, h].tolist(), st["xl_v"][b, h].tolist()
                L = len(kc)
                keys = [(_rope_vec(kc[s], s - L, theta), vc[s], -1) for s in range(L)] + keys
            A = []
            for t in range(N):
                qr = _rope_vec(q[t], t, theta)
                vis = [(kk, vv) for kk, vv, s in keys if s <= t]
                sc = [_dot(qr, kk) / math.sqrt(dk) for kk, _ in vis]
                m = max(sc)
                w = [math.exp(c - m) for c in sc]
                tot = sum(w)
                adot = [sum(w[n] * vis[n][1][j] for n in range(len(vis))) / tot for j in range(dv)]
                if mode in ("infini-linear", "infini-delta"):
                    M, z = st["M"][b, h].tolist(), st["z"][b, h].tolist()
                    sq = [_sig(c) for c in q[t]]
                    den = _dot(sq, z) + eps
                    amem = [sum(sq[i] * M[i][j] for i in range(dk)) / den for j in range(dv)]
                    gt = 1.0 / (1.0 + math.exp(-p["blocks.%d.attn.gate" % li][h].item()))
                    A.append([gt * amem[j] + (1 - gt) * adot[j] for j in range(dv)])
                else:
                    A.append(adot)
            for t in range(N):
                for d in range(D):
                    out[b][t][d] += sum(Wo[d][h * dv + j] * A[t][j] for j in range(dv))
            if mode in ("infini-linear", "infini-delta"):
                M, z = st["M"][b, h].tolist(), st["z"][b, h].tolist()
                sk = [[_sig(c) for c in k[t]] for t in range(N)]
                M2 = [row[:] for row in M]
                for t in range(N):
                    if mode == "infini-delta":
                        den = _dot(sk[t], z) + eps
                        old = [sum(sk[t][i] * M[i][j] for i in range(dk)) / den for j in range(dv)]
                    else:
                        old = [0.0] * dv
                    for i in range(dk):
                        for j in range(dv):
                            M2[i][j] += sk[t][i] * (v[t][j] - old[j])
                newM[b][h] = M2
                newz[b][h] = [z[i] + sum(sk[t][i] for t in range(N)) for i in range(dk)]
    return torch.tensor(out, dtype=F64), newM, newz


def naive_matches():
    small = dict(TINY, d_model=8, n_heads=2, d_key=4, d_value=3, segment_len=5)
    for mode in ("infini-delta", "infini-linear", "xl", "none"):
        cfg = cfg_of(small, memory=mode)
        p = ref.random_params(cfg, 11, F64)
        tok = tokens_for(cfg, 2, cfg["segment_len"], 12)
        _, state = ref.forward(p, cfg, tok)  # non-trivial state after one segment
        x = torch.randn(2, cfg["segment_len"], cfg["d_model"], generator=torch.Generator().manual_seed(13),
                        dtype=F64)
        for li in range(cfg["n_layers"]):
            out, new = ref.attention(p, cfg, li, x, state[li], True)
            nout, nM, nz = naive_attention(p, cfg, li, x, state[li])
            assert_close(out, nout, 1e-12, "%s layer %d output" % (mode, li))
            if ref.is_infini(cfg):
                assert_close(new["M"], torch.tensor(nM, dtype=F64), 1e-11, "%s M" % mode)
                assert_close(new["z"], torch.tensor(nz, dtype=F64), 1e-11, "%s z" % mode)


# ---------------------------------------------------------------------------------------------
# (f) causality, read-before-write, partial segments, memory actually matters

def causality_and_partial():
    for mode in ref.MEMORY_MODES:
        cfg = cfg_of(TINY, memory=mode)
        p = ref.random_params(cfg, 14, F64)
        N = cfg["segment_len"]
        tok = tokens_for(cfg, 2, 3 * N, 15)
        full, _ = ref.forward(p, cfg, tok)
        # changing token N + 3 (segment 1) leaves logits at positions < N + 3 bit-identical
        tok2 = tok.clone()
        tok2[:, N + 3] = (tok2[:, N + 3] + 1) % cfg["vocab_size"]
        full2, _ = ref.forward(p, cfg, tok2)
        assert torch.equal(full[:, :N + 3], full2[:, :N + 3]), "%s: not causal" % mode
        assert not torch.equal(full[:, N + 3:], full2[:, N + 3:]), "%s: token has no effect" % mode
        # trailing partial segment gives the same logits as the complete one
        part, _ = ref.forward(p, cfg, tok[:, :2 * N + 3])
        # (not bitwise: a BLAS may block a shorter GEMM differently)
        assert_close(part, full[:, :2 * N + 3], 1e-12, "%s: partial segment" % mode)
        # memory matters: resetting state per segment changes later segments (except 'none')
        reset = torch.cat([ref.forward(p, cfg, tok[:, s * N:(s + 1) * N])[0] for s in range(3)], dim=1)
        assert torch.equal(reset[:, :N], full[:, :N])
        diff = (reset[:, N:] - full[:, N:]).abs().mean().item()
        if mode == "none":
            assert diff == 0.0
        else:
            assert diff > 0.05, "%s: memory barely matters (mean |dlogit| %.3g)" % (mode, diff)


def rope_properties():
    g = torch.Generator().manual_seed(16)
    q = torch.randn(1, 1, 1, 8, generator=g, dtype=F64)
    k = torch.randn(1, 1, 1, 8, generator=g, dtype=F64)
    # relative: <R(p) q, R(s) k> depends only on p - s (also for negative positions)
    base = (ref.rope(q, [3], 100.0) * ref.rope(k, [-2], 100.0)).sum()
    for c in (-7, 1, 11):
        other = (ref.rope(q, [3 + c], 100.0) * ref.rope(k, [-2 + c], 100.0)).sum()
        assert_close(base, other, 1e-12, "relative property")
    # norm preserved; position 0 is the identity; explicit pair formula
    assert torch.equal(ref.rope(q, [0], 10.0), q)
    r = ref.rope(q, [5], 10.0)
    assert_close(r.norm(), q.norm(), 1e-12, "norm")
    a = 5 * 10.0 ** (-2.0 * 1 / 8)
    assert_close(r[..., 1], q[..., 1] * math.cos(a) - q[..., 5] * math.sin(a), 1e-15, "pair 1 first")
    assert_close(r[..., 5], q[..., 5] * math.cos(a) + q[..., 1] * math.sin(a), 1e-15, "pair 1 second")


def xl_cache_detached():
    cfg = cfg_of(TINY, memory="xl")
    p = ref.random_params(cfg, 17, F64)
    for t in p.values():
        t.requires_grad_(True)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 2 * N, 18)
    logits, state = ref.forward(p, cfg, tok)
    assert all(not st["xl_k"].requires_grad and not st["xl_v"].requires_grad for st in state)
    assert state[0]["xl_k"].shape == (2, cfg["n_heads"], N, cfg["d_key"])
    assert state[0]["xl_v"].shape == (2, cfg["n_heads"], N, cfg["d_value"])
    # the second segment's logits get no gradient from the first segment's tokens' embeddings
    # through the cache: only tokens that occur in segment 1 get gradient from segment-1 logits
    logits[:, N:].sum().backward()
    g = p["embed.weight"].grad
    used = set(tok[:, N:].reshape(-1).tolist())
    for vtok in range(cfg["vocab_size"]):
        if vtok not in used:
            assert g[vtok].abs().max().item() == 0.0, "gradient leaked through the xl cache"


def make_golden_cli():
    with tempfile.TemporaryDirectory() as d:
        cfgp = os.path.join(d, "c.json")
        with open(cfgp, "w") as f:
            json.dump(dict(TINY, dtype="bfloat16"), f)
        out = os.path.join(d, "g.safetensors")
        cmd = [sys.executable, os.path.join(HERE, "make_golden.py"), "--config", cfgp, "--dtype", "float32",
               "--seed", "21", "--batch", "2", "--segments", "2", "--out", out]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        t, meta = load_file(out)
        cfg = json.loads(meta["config"])
        assert cfg == ref.make_config(dict(TINY, dtype="float32")), "metadata config"
        assert (meta["seed"], meta["batch"], meta["segments"]) == ("21", "2", "2")
        assert t["logits"].dtype == torch.float32 and t["loss"].shape == () and t["tokens"].dtype == torch.int64
        names = [n for n, _ in ref.param_shapes(cfg)]
        assert set(t) == ({"tokens", "logits", "loss"} | {"param/" + n for n in names}
                          | {"grad/" + n for n in names}
                          | {"state/%d/%s" % (i, k) for i in range(cfg["n_layers"]) for k in ("M", "z")})
        # recompute in float64 from the stored float32 params: same loss up to float32 rounding
        p = {n: t["param/" + n].to(F64) for n in names}
        cfg64 = dict(cfg, dtype="float64")
        logits, _ = ref.forward(p, cfg64, t["tokens"][:, :-1])
        assert_close(logits, t["logits"].to(F64), 1e-3, "logits")
        # bad arguments exit non-zero with a message
        bad = [
            ["--config", cfgp, "--dtype", "float16", "--seed", "1", "--batch", "1", "--segments", "1", "--out", out],
            ["--config", cfgp, "--dtype", "float32", "--seed", "1", "--batch", "0", "--segments", "1", "--out", out],
            ["--config", os.path.join(d, "missing.json"), "--dtype", "float32", "--seed", "1", "--batch", "1",
             "--segments", "1", "--out", out],
        ]
        with open(os.path.join(d, "typo.json"), "w") as f:
            json.dump({"vocab_sise": 3}, f)
        bad.append(["--config", os.path.join(d, "typo.json"), "--dtype", "float32", "--seed", "1", "--batch", "1",
                    "--segments", "1", "--out", out])
        import contextlib
        import io
        import make_golden
        for args in bad:  # in-process (a subprocess per case costs ~2 s of torch import)
            err = io.StringIO()
            code = 0
            with contextlib.redirect_stderr(err):
                try:
                    code = make_golden.main(args)
                except SystemExit as e:
                    code = e.code
            assert code not in (0, None) and "error" in err.getvalue(), "accepted bad args %s" % args


def main():
    t0 = time.time()
    check("(a) gradcheck infini-delta, 2 segments", lambda: gradcheck_mode("infini-delta", False))
    check("(a) gradcheck infini-linear, 2 segments, tied embeddings", lambda: gradcheck_mode("infini-linear", True))
    check("(b) first segment: A_mem == 0, A == (1-sig(beta)) A_dot exactly", first_segment_attention_exact)
    check("(b) first segment: model == 'none' with out_proj scaled", first_segment_model_vs_none)
    check("(c) safetensors round trip", safetensors_roundtrip)
    check("(d) delta rule, single key row written twice", delta_single_key)
    check("(e) attention == naive per-row loop (4 modes, with state)", naive_matches)
    check("(f) causality, partial segment, memory matters", causality_and_partial)
    check("(g) RoPE properties", rope_properties)
    check("(h) xl cache carries no gradient", xl_cache_detached)
    check("(i) make_golden CLI output and bad arguments", make_golden_cli)
    n_fail = _results.count(False)
    print("%d/%d passed in %.1fs" % (len(_results) - n_fail, len(_results), time.time() - t0))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
