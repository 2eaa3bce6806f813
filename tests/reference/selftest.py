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


def expect_rejected(*bads):
    """Each config override in bads must raise ConfigError."""
    for bad in bads:
        try:
            cfg_of(TINY, **bad)
        except ref.ConfigError:
            continue
        raise AssertionError("accepted %s" % bad)


def assert_same_model(run_a, run_b, what):
    """Two ref.forward results (logits, state): the same logits, M and z."""
    assert_close(run_a[0], run_b[0], 1e-12, "%s logits" % what)
    for a, b in zip(run_a[1], run_b[1]):
        for key in ("M", "z"):
            assert_close(a[key], b[key], 1e-12, "%s %s" % (what, key))


def tokens_for(cfg, B, T, seed):
    return torch.randint(0, cfg["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def assert_close(a, b, tol, what):
    d = (a - b).abs().max().item() if a.numel() else 0.0
    if not d <= tol:
        raise AssertionError("%s: max abs diff %.3g > %.3g" % (what, d, tol))


# ---------------------------------------------------------------------------------------------
# (a) gradcheck through 2 segments (full backprop through M and z)

def gradcheck_mode(mode, tie, **extra):
    cfg = cfg_of(MICRO, memory=mode, tie_embeddings=tie, **extra)
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
    newknn = [[None] * H for _ in range(B)]  # knn block: (memory key rows, value rows) after the write
    is_knn_block = mode == "knn" and li == ref.knn_block(cfg)
    for b in range(B):
        for h in range(H):
            q = [[_dot(W[h * dk + j], X[b][t]) for j in range(dk)] for t in range(N)]
            k = [[_dot(W[H * dk + h * dk + j], X[b][t]) for j in range(dk)] for t in range(N)]
            v = [[_dot(W[2 * H * dk + h * dv + j], X[b][t]) for j in range(dv)] for t in range(N)]
            keys = [(_rope_vec(k[s], s, theta), v[s], s) for s in range(N)]
            if mode in ("xl", "knn") and st["xl_k"] is not None:
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
                elif is_knn_block:
                    km, vm = st["knn_k"][b, h].tolist(), st["knn_v"][b, h].tolist()
                    qlen = max(math.sqrt(_dot(q[t], q[t])), 1e-12)
                    cos = [_dot([c / qlen for c in q[t]], row) for row in km]
                    top = sorted(range(len(km)), key=lambda j: -cos[j])[:cfg["knn_top_k"]]
                    if top:
                        lam = math.exp(p["blocks.%d.attn.knn_log_scale" % li][h].item())
                        m = max(lam * cos[j] for j in top)
                        w = [math.exp(lam * cos[j] - m) for j in top]
                        aknn = [sum(w[n] * vm[j][c] for n, j in enumerate(top)) / sum(w) for c in range(dv)]
                    else:
                        aknn = [0.0] * dv
                    gt = 1.0 / (1.0 + math.exp(-p["blocks.%d.attn.gate" % li][h].item()))
                    A.append([gt * aknn[j] + (1 - gt) * adot[j] for j in range(dv)])
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
            if is_knn_block:
                rows_k = st["knn_k"][b, h].tolist()
                for t in range(N):
                    klen = max(math.sqrt(_dot(k[t], k[t])), 1e-12)
                    rows_k.append([c / klen for c in k[t]])
                rows_v = st["knn_v"][b, h].tolist() + v
                cap = cfg["knn_tokens"]
                newknn[b][h] = (rows_k[-cap:], rows_v[-cap:])
    return torch.tensor(out, dtype=F64), newM, newz, newknn


def naive_matches():
    small = dict(TINY, d_model=8, n_heads=2, d_key=4, d_value=3, segment_len=5)
    # knn: 2 segments of state, so that the memory (7 of 10 tokens) has evicted and top-3 is a choice
    # rmt: its blocks attend like none's (the memory is in the rows); here x stands for any rows
    for mode, extra, n_seg in (("infini-delta", {}, 1), ("infini-linear", {}, 1), ("xl", {}, 1), ("none", {}, 1),
                               ("knn", {"knn_tokens": 7, "knn_top_k": 3}, 2), ("rmt", {"rmt_tokens": 2}, 1)):
        cfg = cfg_of(small, memory=mode, **extra)
        p = ref.random_params(cfg, 11, F64)
        tok = tokens_for(cfg, 2, n_seg * cfg["segment_len"], 12)
        _, state = ref.forward(p, cfg, tok)  # non-trivial state
        x = torch.randn(2, cfg["segment_len"], cfg["d_model"], generator=torch.Generator().manual_seed(13),
                        dtype=F64)
        for li in range(cfg["n_layers"]):
            out, new = ref.attention(p, cfg, li, x, state[li], True)
            nout, nM, nz, nknn = naive_attention(p, cfg, li, x, state[li])
            assert_close(out, nout, 1e-12, "%s layer %d output" % (mode, li))
            if li == ref.knn_block(cfg):
                assert state[li]["knn_k"].shape[2] == 7, "knn memory did not evict"
                nk = torch.tensor([[kv[0] for kv in row] for row in nknn], dtype=F64)  # (B, H, 7, dk)
                nv = torch.tensor([[kv[1] for kv in row] for row in nknn], dtype=F64)  # (B, H, 7, dv)
                assert_close(new["knn_k"], nk, 1e-14, "knn memory keys")
                assert_close(new["knn_v"], nv, 1e-14, "knn memory values")
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


# ---------------------------------------------------------------------------------------------
# Mixture-of-Depths

MOD = {"mod_every": 2, "mod_capacity": 0.375, "mod_predictor_hidden": 5, "mod_aux_weight": 0.1}
# the modes a routed block can have (knn and rmt models are dense)
MOD_MODES = tuple(m for m in ref.MEMORY_MODES if m not in ("knn", "rmt"))

# sha256 over (name, float64 bytes) of random_params(parity config, seed 17), recorded with the
# reference as it was before Mixture-of-Depths: dense draws must never change (golden files).
DENSE_PARAM_SHA = {
    "infini-delta": "fbd1723265ff3eec6b901bd80be9dadd281f7cb26c03df7ab976deca4db74270",
    "infini-linear": "25af9c302493e5aff37cd3114df9db22291efed722314d612bf3160e4e0c5eec",
    "xl": "9f24a49ad5d206ecabbe359fe785c5d7e5dc528e965eb4262beefc603f4ca74d",
    "none": "9f24a49ad5d206ecabbe359fe785c5d7e5dc528e965eb4262beefc603f4ca74d",
}


def mod_config_validation():
    base = dict(TINY)
    cfg = ref.make_config(base)
    assert cfg["mod_every"] == 0 and not any(ref.is_routed(cfg, i) for i in range(4))
    c2 = ref.make_config(dict(base, n_layers=4, mod_every=2))
    assert [ref.is_routed(c2, i) for i in range(4)] == [False, True, False, True]
    c1 = ref.make_config(dict(base, mod_every=1))
    assert all(ref.is_routed(c1, i) for i in range(2))
    good = [("mod_every", 0), ("mod_every", 3), ("mod_capacity", 1), ("mod_capacity", 1e-9),
            ("mod_router", "sigmoid"), ("mod_predictor", "mlp"), ("mod_aux_weight", 0),
            ("mod_predictor_hidden", 1)]
    bad = [("mod_every", -1), ("mod_every", 1.0), ("mod_every", True), ("mod_capacity", 0),
           ("mod_capacity", 1.5), ("mod_capacity", float("nan")), ("mod_capacity", "0.5"),
           ("mod_router", "relu"), ("mod_predictor", "none"), ("mod_aux_weight", -0.1),
           ("mod_aux_weight", float("inf")), ("mod_predictor_hidden", 0), ("mod_predictor_hidden", 2.0),
           ("mod_evry", 1)]
    for k, v in good:
        ref.make_config(dict(base, **{k: v}))
    for k, v in bad:
        try:
            ref.make_config(dict(base, **{k: v}))
        except ref.ConfigError:
            continue
        raise AssertionError("accepted %s = %r" % (k, v))
    # k = min(n, max(1, ceil(C n - 1e-6)))
    for cap, n, k in [(0.125, 8, 1), (0.125, 3, 1), (0.375, 8, 3), (0.375, 4, 2), (0.5, 8, 4), (1.0, 8, 8),
                      (1.0, 1, 1), (1e-9, 8, 1), (1 / 91, 273, 3), (0.7, 90, 63)]:
        got = ref.topk_count(ref.make_config(dict(base, mod_capacity=cap)), n)
        assert got == k, "capacity %r, n %d: k %d, expected %d" % (cap, n, got, k)
    # parameter table: router and predictor right after the routed block's down_proj
    names = [n for n, _ in ref.param_shapes(cfg_of(TINY, **MOD))]
    j = names.index("blocks.1.mlp.down_proj.weight")
    assert names[j + 1:j + 6] == ["blocks.1.router.weight", "blocks.1.predictor.hidden.weight",
                                  "blocks.1.predictor.hidden.bias", "blocks.1.predictor.out.weight",
                                  "blocks.1.predictor.out.bias"], names[j + 1:j + 6]
    assert not any(n.startswith(("blocks.0.router", "blocks.0.predictor")) for n in names)


def dense_params_unchanged():
    import hashlib
    for mode, want in DENSE_PARAM_SHA.items():
        with open(os.path.join(HERE, "..", "data", "parity-%s.json" % mode)) as f:
            user = json.load(f)
        for extra in ({}, {"mod_every": 0, "mod_capacity": 0.5, "mod_router": "sigmoid", "mod_predictor": "mlp",
                           "mod_predictor_hidden": 3}):
            cfg = ref.make_config(dict(user, **extra))
            p = ref.random_params(cfg, 17, F64)
            h = hashlib.sha256()
            for n, _ in ref.param_shapes(cfg):
                h.update(n.encode())
                h.update(p[n].contiguous().numpy().tobytes())
            assert h.hexdigest() == want, "%s %s: dense parameters changed" % (mode, extra)
    # a MoD config draws its biases as 0.1*randn, and its matrices with the 0.5/sqrt(fan_in) scale
    p = ref.random_params(cfg_of(TINY, **MOD), 3, F64)
    assert p["blocks.1.predictor.out.bias"].shape == (1,) and p["blocks.1.router.weight"].shape == (1, 32)
    assert 0 < p["blocks.1.predictor.hidden.bias"].abs().max() < 1.0


def _dense_block(p, cfg, i, x, st):
    """Block i of a dense config: returns (x + Attn + MLP (B, N, D), new state)."""
    eps = cfg["norm_eps"]
    pre = "blocks.%d." % i
    a, st2 = ref.attention(p, cfg, i, ref.rms_norm(x, p[pre + "attn_norm.weight"], eps), st, True)
    h = x + a
    out = h + ref.mlp(ref.rms_norm(h, p[pre + "mlp_norm.weight"], eps), p[pre + "mlp.gate_up_proj.weight"],
                      p[pre + "mlp.down_proj.weight"])
    return out, st2


def mod_full_capacity_is_dense():
    # capacity 1: top-k takes every token, and the block's output is x + w(r) * f_dense with f_dense
    # the dense block's update under the same weights (state after one segment: memory / cache)
    for mode in MOD_MODES:
        for router in ("raw", "sigmoid"):
            cfg = cfg_of(TINY, memory=mode, mod_every=1, mod_capacity=1.0, mod_router=router,
                         mod_predictor_hidden=5)
            cfg_d = cfg_of(TINY, memory=mode)
            p = ref.random_params(cfg, 30, F64)
            pd = {n: p[n] for n, _ in ref.param_shapes(cfg_d)}
            N, D = cfg["segment_len"], cfg["d_model"]
            _, state = ref.forward(p, cfg, tokens_for(cfg, 2, N, 31))
            if mode == "xl":
                assert all(st["xl_pos"] == [list(range(N))] * 2 for st in state)
            dstate = ref.stacked_state(state)
            x = torch.randn(2, N, D, generator=torch.Generator().manual_seed(32), dtype=F64)
            for i in range(cfg["n_layers"]):
                out, st, rt = ref.routed_block(p, cfg, i, x, state[i], True, "topk")
                dense, dst = _dense_block(pd, cfg_d, i, x, dstate[i])
                assert bool(rt["sel"].all()) and bool((rt["y"] == 1).all()), "not every token selected"
                r = x @ p["blocks.%d.router.weight" % i].t()                 # (B, N, 1)
                w = r if router == "raw" else torch.sigmoid(r)
                assert_close(out, x + w * (dense - x), 1e-12, "%s %s block %d" % (mode, router, i))
                st = ref.stacked_state([st])[0]
                for key in dst:
                    assert_close(st[key], dst[key], 1e-12, "%s state %s" % (mode, key))
                # and w really matters (w = 1 would not match)
                assert (out - dense).abs().max().item() > 1e-3


def _masked_attention_row(p, cfg, i, xn, sel, st, prev_k=None, prev_v=None, prev_sel=None):
    """Attn_S for one row written another way: the whole segment at positions 0..N-1 with keys
    outside S masked out, and sigma(K) of tokens outside S zeroed for the write (they add nothing).
    xn (1, N, D) normed. Returns (out at S (1, k, D), new M, new z)."""
    H, dk, dv, N = cfg["n_heads"], cfg["d_key"], cfg["d_value"], xn.shape[1]
    th, pre = cfg["rope_theta"], "blocks.%d.attn." % i
    qkv = xn @ p[pre + "qkv_proj.weight"].t()
    q = qkv[..., :H * dk].view(1, N, H, dk).transpose(1, 2)
    k = qkv[..., H * dk:2 * H * dk].view(1, N, H, dk).transpose(1, 2)
    v = qkv[..., 2 * H * dk:].view(1, N, H, dv).transpose(1, 2)
    m = torch.zeros(N, dtype=torch.bool)
    m[sel] = True
    vis = torch.ones(N, N, dtype=torch.bool).tril() & m[None, :]
    qr, kr = ref.rope(q, range(N), th), ref.rope(k, range(N), th)
    sc = (qr @ kr.transpose(-1, -2)) / math.sqrt(dk)
    sc = sc.masked_fill(~vis, float("-inf"))
    vals = v
    if prev_k is not None:
        pm = torch.zeros(N, dtype=torch.bool)
        pm[prev_sel] = True
        sc_c = (qr @ ref.rope(prev_k, range(-N, 0), th).transpose(-1, -2)) / math.sqrt(dk)
        sc = torch.cat([sc_c.masked_fill(~pm[None, :], float("-inf")), sc], dim=-1)
        vals = torch.cat([prev_v, v], dim=-2)
    a = torch.softmax(sc, dim=-1) @ vals
    M = z = None
    if ref.is_infini(cfg):
        a_mem = ref.memory_read(ref.sigma(q), st["M"], st["z"], cfg["memory_eps"])
        g = torch.sigmoid(p[pre + "gate"]).view(1, H, 1, 1)
        a = g * a_mem + (1 - g) * a
        sk = ref.sigma(k) * m.to(F64)[:, None]
        M, z = ref.memory_write(sk, v, st["M"], st["z"], cfg["memory_eps"], cfg["memory"] == "infini-delta")
    out = a.transpose(1, 2).reshape(1, N, H * dv) @ p[pre + "out_proj.weight"].t()
    return out[:, sel], M, z


def mod_attention_vs_masked():
    # attention over the selected tokens alone == full-segment attention with the other keys masked
    g = torch.Generator().manual_seed(33)
    for mode in MOD_MODES:
        cfg = cfg_of(TINY, memory=mode, **MOD)
        p = ref.random_params(cfg, 34, F64)
        H, dk, dv, N, D = cfg["n_heads"], cfg["d_key"], cfg["d_value"], cfg["segment_len"], cfg["d_model"]
        xn = torch.randn(1, N, D, generator=g, dtype=F64)
        prev_k = torch.randn(1, H, N, dk, generator=g, dtype=F64)
        prev_v = torch.randn(1, H, N, dv, generator=g, dtype=F64)
        M0 = torch.randn(1, H, dk, dv, generator=g, dtype=F64)
        z0 = torch.rand(1, H, dk, generator=g, dtype=F64) + 0.5
        for sel, prev_sel in (([1, 2, 5, 7], [0, 3, 4]), ([6], [7]), (list(range(N)), [])):
            if mode == "xl":
                st = {"xl_k": prev_k[:, :, prev_sel], "xl_v": prev_v[:, :, prev_sel], "xl_pos": list(prev_sel)}
            elif ref.is_infini(cfg):
                st = {"M": M0, "z": z0}
            else:
                st = {}
            out, st2 = ref.attention_selected(p, cfg, 1, xn[:, sel], sel, st, True)
            want, M, z = _masked_attention_row(p, cfg, 1, xn, sel, st, *((prev_k, prev_v, prev_sel)
                                                                       if mode == "xl" else ()))
            what = "%s S=%s" % (mode, sel)
            assert_close(out, want, 1e-12, what)
            if ref.is_infini(cfg):
                assert_close(st2["M"], M, 1e-11, what + " M")
                assert_close(st2["z"], z, 1e-12, what + " z")
            if mode == "xl":
                assert st2["xl_pos"] == sel
                qkv = xn[:, sel] @ p["blocks.1.attn.qkv_proj.weight"].t()
                assert torch.equal(st2["xl_k"], qkv[..., H * dk:2 * H * dk].view(1, len(sel), H, dk).transpose(1, 2))


def mod_causal_routing_is_causal():
    for mode in ("infini-delta", "xl", "none", "infini-linear"):
        for pred in ("router", "mlp"):
            cfg = cfg_of(TINY, memory=mode, mod_predictor=pred, **MOD)
            p = ref.random_params(cfg, 35, F64)
            N = cfg["segment_len"]
            tok = tokens_for(cfg, 2, 3 * N, 36)
            if pred == "mlp":
                # the random predictor's logits all share a sign; move its bias so that about half
                # the tokens are selected (p does not depend on the bias through the selection)
                _, _, rt = ref.forward(p, cfg, tok, routing="causal", with_routes=True)
                p["blocks.1.predictor.out.bias"] = p["blocks.1.predictor.out.bias"] - rt[1]["p"].median()
            base, _, rt = ref.forward(p, cfg, tok, routing="causal", with_routes=True)
            sel = rt[1]["sel"]
            assert 0 < int(sel.sum()) < sel.numel(), "%s %s: causal selection is all or nothing" % (mode, pred)
            later_changed = False
            for t in (2, N - 1, N + 3, 2 * N - 1, 2 * N + 4):
                tok2 = tok.clone()
                tok2[:, t + 1] = (tok2[:, t + 1] + 1) % cfg["vocab_size"]
                other, _, rt2 = ref.forward(p, cfg, tok2, routing="causal", with_routes=True)
                # (not bitwise: a different number of selected tokens changes the GEMM shapes)
                assert_close(other[:, :t + 1], base[:, :t + 1], 1e-12, "%s %s: change at %d" % (mode, pred, t + 1))
                assert torch.equal(rt2[1]["sel"][:, :t + 1], sel[:, :t + 1])
                later_changed |= (other[:, t + 1:] - base[:, t + 1:]).abs().max().item() > 1e-3
            assert later_changed, "%s %s: changed tokens have no effect" % (mode, pred)


def mod_topk_routing_is_not_causal():
    # the check above has teeth: top-k routing looks ahead within a segment (a later token's r can
    # push an earlier token out of S), so there a later change does reach earlier logits
    for mode in ("infini-delta", "xl"):
        cfg = cfg_of(TINY, memory=mode, **MOD)
        p = ref.random_params(cfg, 35, F64)
        N = cfg["segment_len"]
        tok = tokens_for(cfg, 2, 2 * N, 36)
        base, _ = ref.forward(p, cfg, tok, routing="topk")
        worst = 0.0
        for t in (N - 2, 2 * N - 2):
            for v in range(cfg["vocab_size"]):
                tok2 = tok.clone()
                tok2[:, t + 1] = v
                other, _ = ref.forward(p, cfg, tok2, routing="topk")
                worst = max(worst, (other[:, :t + 1] - base[:, :t + 1]).abs().max().item())
        assert worst > 1e-3, "%s: top-k routing looked causal (max earlier change %.3g)" % (mode, worst)


def mod_gradcheck(mode, tie, router, pred, every):
    cfg = cfg_of(MICRO, memory=mode, tie_embeddings=tie, mod_every=every, mod_capacity=0.5, mod_router=router,
                 mod_predictor=pred, mod_predictor_hidden=2, mod_aux_weight=0.3)
    params = ref.random_params(cfg, 37, F64)
    names = [n for n, _ in ref.param_shapes(cfg)]
    # 2 segments of 3 + the last target; no token repeats within a segment: repeats at the start of
    # the first segment make exactly tied r (same vector in, same attention out), which top-k
    # would then break by position - fine for the model, but not what this check is about
    tok = torch.tensor([[0, 1, 2, 3, 4, 0, 1], [4, 2, 0, 1, 3, 2, 4]], dtype=torch.int64)
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)
    pred = [j for j, n in enumerate(names) if ".predictor." in n]
    rest = [j for j in range(len(names)) if j not in pred]

    N = cfg["segment_len"]
    state0, first = None, 0
    if mode == "xl":
        # the xl cache is detached by design, so finite differences would see a path autograd
        # cuts: run the first segment once, as a constant, and check the second from its cache
        with torch.no_grad():
            _, state0 = ref.forward(params, cfg, tok[:, :N])
        assert all(len(pos) == ref.topk_count(cfg, N) for pos in state0[1]["xl_pos"])
        first = N

    def parts(flat):
        logits, _, routes = ref.forward(dict(zip(names, flat)), cfg, tok[:, first:-1], state=state0,
                                        with_routes=True)
        ce = ref.loss_fn(logits, tok[:, first + 1:])
        rb, pb = ref.mod_aux_losses(routes)
        return ref.total_loss(logits, tok[:, first + 1:], routes, cfg), ce + cfg["mod_aux_weight"] * rb, pb

    # The total loss's gradient is not the derivative of the total loss: p reads sg(x), so BCE(p)'s
    # dependence on x (hence on every weight below the block) is cut on purpose, and finite
    # differences would see it. So check the two parts where each is a true derivative:
    #  - CE + w * BCE(r) w.r.t. every parameter (no stop-gradient on these paths);
    #  - the total loss w.r.t. the predictor's parameters, the others held constant;
    # and that the total loss's autograd gradient is exactly made of these two.
    def f_main(*flat):
        return parts(flat)[1]

    def f_pred(*flat_pred):
        flat = [inputs[j].detach() for j in range(len(names))]
        for j, t in zip(pred, flat_pred):
            flat[j] = t
        return parts(flat)[0]

    total = parts(inputs)[0]
    g_total = torch.autograd.grad(total, inputs)
    g_main = torch.autograd.grad(f_main(*inputs), inputs, allow_unused=True)
    g_pred = torch.autograd.grad(f_pred(*[inputs[j] for j in pred]), [inputs[j] for j in pred])
    for j in rest:
        assert_close(g_total[j], g_main[j], 1e-13, names[j])
    for j, g in zip(pred, g_pred):
        assert g_main[j] is None or g_main[j].abs().max().item() == 0, "CE + BCE(r) reached " + names[j]
        assert_close(g_total[j], g, 1e-13, names[j])

    # top-k selection is piecewise constant: make sure no eps-sized step flips it
    _, _, routes = ref.forward(params, cfg, tok[:, :-1], with_routes=True)
    for rt in routes.values():
        r = rt["r"].detach()
        for b in range(r.shape[0]):
            for s in range(0, r.shape[1], cfg["segment_len"]):
                seg = r[b, s:s + cfg["segment_len"]].sort(descending=True).values
                kk = ref.topk_count(cfg, seg.numel())
                if kk < seg.numel():
                    assert (seg[kk - 1] - seg[kk]).item() > 1e-4, "near-tie in top-k, pick another seed"
    assert torch.autograd.gradcheck(f_main, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    assert torch.autograd.gradcheck(f_pred, tuple(inputs[j] for j in pred), eps=1e-6, atol=1e-6, rtol=1e-4)


def mod_selection_and_logits():
    # r, p by their formulas; top-k = the k largest r per row, in order; causal = r > 0 / p > 0;
    # tokens outside S leave the block bit-identical
    g = torch.Generator().manual_seed(41)
    for pred in ("router", "mlp"):
        cfg = cfg_of(TINY, mod_predictor=pred, **MOD)
        p = ref.random_params(cfg, 42, F64)
        B, N, D = 3, cfg["segment_len"], cfg["d_model"]
        x = torch.randn(B, N, D, generator=g, dtype=F64)
        st = ref.init_state(cfg, B, F64)[1]
        pre = "blocks.1."
        r_want = (x @ p[pre + "router.weight"].t())[..., 0]
        hid = torch.nn.functional.silu(x @ p[pre + "predictor.hidden.weight"].t() + p[pre + "predictor.hidden.bias"])
        p_want = (hid @ p[pre + "predictor.out.weight"].t())[..., 0] + p[pre + "predictor.out.bias"]
        k = ref.topk_count(cfg, N)
        for routing in ("topk", "causal"):
            out, _, rt = ref.routed_block(p, cfg, 1, x, st, True, routing)
            assert_close(rt["r"], r_want, 1e-14, "r")
            assert_close(rt["p"], p_want, 1e-14, "p")
            for b in range(B):
                y = rt["y"][b] > 0
                assert int(y.sum()) == k
                assert rt["r"][b][y].min() > rt["r"][b][~y].max(), "top-k did not take the largest r"
            want = rt["y"] > 0 if routing == "topk" else (rt["r"] if pred == "router" else rt["p"]) > 0
            assert torch.equal(rt["sel"], want), routing
            assert torch.equal(out[~rt["sel"]], x[~rt["sel"]]), "unselected tokens changed"
            assert (out[rt["sel"]] - x[rt["sel"]]).abs().min().item() > 0, "selected tokens unchanged"


def mod_loss_terms():
    # the total loss is CE + w * BCE(r) + BCE(p); BCE(p) reaches only the predictor, CE (top-k) never
    # the predictor, BCE(r) the router and the blocks below
    cfg = cfg_of(TINY, **MOD)
    p = ref.random_params(cfg, 39, F64)
    for t in p.values():
        t.requires_grad_(True)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 2 * N + 1, 40)
    logits, _, routes = ref.forward(p, cfg, tok[:, :-1], with_routes=True)
    ce = ref.loss_fn(logits, tok[:, 1:])
    rb, pb = ref.mod_aux_losses(routes)
    y, r, pl = routes[1]["y"], routes[1]["r"], routes[1]["p"]
    assert int(y.sum()) == 2 * 2 * ref.topk_count(cfg, N)
    sig = torch.sigmoid(r)
    assert_close(rb, -(y * sig.log() + (1 - y) * (1 - sig).log()).mean(), 1e-12, "router BCE")
    assert_close(ref.total_loss(logits, tok[:, 1:], routes, cfg), ce + 0.1 * rb + pb, 1e-14, "total")
    pred = [n for n in p if ".predictor." in n]
    gp = torch.autograd.grad(pb, list(p.values()), retain_graph=True, allow_unused=True)
    for n, gr in zip(p, gp):
        nz = gr is not None and gr.abs().max().item() > 0
        assert nz == (n in pred), "BCE(p) gradient on %s: %s" % (n, nz)
    gc = torch.autograd.grad(ce, [p[n] for n in pred], retain_graph=True, allow_unused=True)
    assert all(gr is None or gr.abs().max().item() == 0 for gr in gc), "CE reached the predictor"
    gr_ = torch.autograd.grad(rb, [p["blocks.1.router.weight"], p["embed.weight"]], allow_unused=True)
    assert all(gr is not None and gr.abs().max().item() > 0 for gr in gr_)
    # causal routes carry no aux loss
    _, _, croutes = ref.forward(p, cfg, tok[:, :-1], routing="causal", with_routes=True)
    if not torch.equal(croutes[1]["sel"], croutes[1]["y"] > 0):
        try:
            ref.mod_aux_losses(croutes)
        except ValueError:
            pass
        else:
            raise AssertionError("aux loss computed from causal routes")


def make_golden_mod():
    import make_golden
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "g.safetensors")
        cfgp = os.path.join(HERE, "..", "data", "parity-mod-xl.json")
        assert make_golden.main(["--config", cfgp, "--dtype", "float64", "--seed", "17", "--batch", "2",
                                 "--segments", "3", "--out", out]) == 0
        t, meta = load_file(out)
    cfg = json.loads(meta["config"])
    assert cfg["mod_every"] == 2 and cfg["mod_predictor"] == "mlp"
    names = [n for n, _ in ref.param_shapes(cfg)]
    assert set(t) == ({"tokens", "logits", "loss", "logits_causal", "aux/router_bce", "aux/predictor_bce",
                       "route/1"} | {"param/" + n for n in names} | {"grad/" + n for n in names}
                      | {"state/%d/%s" % (i, k) for i in range(2) for k in ("xl_k", "xl_v")}), sorted(t)
    B, N = 2, cfg["segment_len"]
    k = ref.topk_count(cfg, N)
    route = t["route/1"]
    assert route.dtype == torch.int64 and route.shape == (B, 3 * N)
    assert route.view(B, 3, N).sum(-1).eq(k).all(), "route/1 does not hold k tokens per segment"
    assert t["state/1/xl_k"].shape == (B, cfg["n_heads"], k, cfg["d_key"])
    p = {n: t["param/" + n] for n in names}
    tok = t["tokens"]
    logits, _, routes = ref.forward(p, cfg, tok[:, :-1], with_routes=True)
    assert torch.equal(routes[1]["y"].to(torch.int64), route)
    assert_close(logits, t["logits"], 1e-12, "logits")
    ce = ref.loss_fn(t["logits"], tok[:, 1:])
    assert_close(t["loss"], ce + cfg["mod_aux_weight"] * t["aux/router_bce"] + t["aux/predictor_bce"], 1e-12, "loss")
    causal, _ = ref.forward(p, cfg, tok[:, :-1], routing="causal")
    assert_close(causal, t["logits_causal"], 1e-12, "logits_causal")
    assert (causal - logits).abs().max().item() > 1e-3, "causal and top-k logits coincide"


# ---------------------------------------------------------------------------------------------
# (s) memory_key_shift: the written keys, the shift shut is the plain model, and it matters

def shut_and_plain(params):
    """The parameters with every key shift shut, and without the key shifts (the plain model's). A
    share of sigmoid(-80) = 2e-35 leaves every key as it is."""
    shut = {n: (torch.full_like(t, -80.0) if n.endswith("key_shift") else t) for n, t in params.items()}
    plain = {n: t for n, t in params.items() if not n.endswith("key_shift")}
    return shut, plain


def key_shift_checks():
    g = torch.Generator().manual_seed(11)
    k = torch.randn(2, 3, 5, 4, generator=g, dtype=F64)      # (B, H, N, dk)
    shift = torch.randn(3, generator=g, dtype=F64)          # (H,)
    w = ref.written_keys(k, shift)
    for h in range(3):
        s = 1.0 / (1.0 + math.exp(-shift[h].item()))
        for t in range(5):
            want = k[:, h, 0] if t == 0 else k[:, h, t] + s * (k[:, h, t - 1] - k[:, h, t])
            assert_close(w[:, h, t], want, 1e-15, "written key h=%d t=%d" % (h, t))
    assert ref.written_keys(k, None) is k
    # the field is a bool and needs a compressive memory
    expect_rejected({"memory_key_shift": 1}, {"memory_key_shift": True, "memory": "xl"})

    for mode, extra in (("infini-delta", {}), ("infini-linear", MOD)):
        plain_cfg = cfg_of(TINY, memory=mode, **extra)
        cfg = cfg_of(TINY, memory=mode, memory_key_shift=True, **extra)
        names = [n for n, _ in ref.param_shapes(cfg)]
        assert sum(n.endswith("attn.key_shift") for n in names) == cfg["n_layers"], names
        params = ref.random_params(cfg, 5, F64)
        tok = tokens_for(cfg, 2, 3 * cfg["segment_len"], 6)
        shut, plain = shut_and_plain(params)
        l_plain, s_plain = ref.forward(plain, plain_cfg, tok)
        # shut, it is the plain model
        assert_same_model(ref.forward(shut, cfg, tok), (l_plain, s_plain), "%s, shift shut" % mode)
        # open, the shift changes what the memory holds
        _, s_open = ref.forward(params, cfg, tok)
        moved = max((a["M"] - b["M"]).abs().max().item() for a, b in zip(s_open, s_plain))
        assert moved > 1e-3, "%s: the key shift did not change M (%.3g)" % (mode, moved)


# ---------------------------------------------------------------------------------------------
# (u) qk_conv: the convolution against a per-row loop, identity taps == the plain model, the tails
# carry the last raw rows across segment boundaries, and open taps matter

def qk_conv_checks():
    expect_rejected({"qk_conv": 1}, {"qk_conv": 9}, {"qk_conv": 2.0}, {"qk_conv": 3, "memory_key_shift": True})

    g = torch.Generator().manual_seed(21)
    B, H, n, d, W = 2, 3, 5, 4, 3
    x = torch.randn(B, H, n, d, generator=g, dtype=F64)
    tail = torch.randn(B, H, W - 1, d, generator=g, dtype=F64)
    taps = torch.randn(H, d, W, generator=g, dtype=F64)
    out, new_tail = ref.short_conv(x, tail, taps)
    rows = [tail[:, :, r] for r in range(W - 1)] + [x[:, :, t] for t in range(n)]  # each (B, H, d)
    for t in range(n):
        want = sum(taps[:, :, j] * rows[W - 1 + t - j] for j in range(W))       # (B, H, d)
        assert_close(out[:, :, t], want, 1e-14, "convolved row %d" % t)
    assert_close(new_tail, torch.stack(rows[-(W - 1):], dim=2), 0.0, "new tail")

    for mode, extra in (("infini-delta", {}), ("infini-linear", MOD)):
        plain_cfg = cfg_of(TINY, memory=mode, **extra)
        cfg = cfg_of(TINY, memory=mode, qk_conv=3, **extra)
        names = [n_ for n_, _ in ref.param_shapes(cfg)]
        assert sum(n_.endswith("attn.q_conv") or n_.endswith("attn.k_conv") for n_ in names) == 2 * cfg["n_layers"]
        params = ref.random_params(cfg, 5, F64)
        plain = {k: v for k, v in params.items() if not k.endswith("_conv")}
        identity = dict(params)
        for k in params:
            if k.endswith("_conv"):
                identity[k] = torch.zeros_like(params[k])
                identity[k][..., 0] = 1.0
        tok = tokens_for(cfg, 2, 3 * cfg["segment_len"], 6)
        l_plain, s_plain = ref.forward(plain, plain_cfg, tok)
        assert_same_model(ref.forward(identity, cfg, tok), (l_plain, s_plain), "%s, identity taps" % mode)
        l_open, _ = ref.forward(params, cfg, tok)
        moved = (l_open - l_plain).abs().max().item()
        assert moved > 1e-3, "%s: open taps did not change the logits (%.3g)" % (mode, moved)
        # the tails run across the boundary: segment 2 read with the tails cut differs
        N = cfg["segment_len"]
        _, s1 = ref.forward(params, cfg, tok[:, :N])
        cut = [dict(st, conv_q=torch.zeros_like(st["conv_q"]), conv_k=torch.zeros_like(st["conv_k"])) for st in s1]
        l_cut, _ = ref.forward_segment(params, cfg, tok[:, N:2 * N], cut)
        across = (l_cut - l_open[:, N:2 * N]).abs().max().item()
        assert across > 1e-3, "%s: the tails did not reach the next segment (%.3g)" % (mode, across)

    # the dense block-0 tail after one segment holds its last W - 1 raw query rows
    cfg = cfg_of(TINY, qk_conv=3)
    params = ref.random_params(cfg, 5, F64)
    tok = tokens_for(cfg, 2, cfg["segment_len"], 7)
    _, st = ref.forward(params, cfg, tok)
    Hh, dk = cfg["n_heads"], cfg["d_key"]
    xn = ref.rms_norm(params["embed.weight"][tok], params["blocks.0.attn_norm.weight"], cfg["norm_eps"])
    q = (xn @ params["blocks.0.attn.qkv_proj.weight"].t())[..., :Hh * dk]         # (B, N, H*dk)
    want = q[:, -2:].view(2, 2, Hh, dk).transpose(1, 2)                             # (B, H, 2, dk)
    assert_close(st[0]["conv_q"], want, 1e-12, "block 0 query tail")


# ---------------------------------------------------------------------------------------------
# (v) knn: the xl model plus, in one block, a kNN memory of normalised past keys and their values

# three blocks, so that the default knn_layer (-1) is block 1, neither the first nor the last; a
# memory of 12 tokens holds 1.5 segments of 8 (it evicts), and top-5 is a choice among 8 or 12
KNN = dict(TINY, n_layers=3, memory="knn", knn_tokens=12, knn_top_k=5)


def knn_config_checks():
    cfg = cfg_of(KNN)
    assert (cfg["knn_tokens"], cfg["knn_top_k"], cfg["knn_layer"]) == (12, 5, -1)
    d = cfg_of(TINY, memory="knn")
    assert (d["knn_tokens"], d["knn_top_k"], d["knn_layer"]) == (65536, 32, -1), "defaults"
    # the fields exist in knn configs only
    for mode in MOD_MODES:
        assert not any(k in cfg_of(TINY, memory=mode) for k in ref.KNN_FIELDS), mode
    expect_rejected({"memory": "xl", "knn_tokens": 12}, {"memory": "none", "knn_top_k": 32},
                    {"knn_layer": -1},  # TINY is infini-delta
                    {"memory": "knn", "knn_tokens": 0}, {"memory": "knn", "knn_tokens": 2 ** 24 + 1},
                    {"memory": "knn", "knn_tokens": 8.0}, {"memory": "knn", "knn_tokens": True},
                    {"memory": "knn", "knn_top_k": 0}, {"memory": "knn", "knn_top_k": 4097},
                    {"memory": "knn", "knn_layer": -2}, {"memory": "knn", "knn_layer": 2},  # 2 layers
                    {"memory": "knn", "mod_every": 2}, {"memory": "knn", "qk_conv": 3},
                    {"memory": "knn", "memory_key_shift": True})
    for ok in ({"knn_tokens": 1}, {"knn_tokens": 2 ** 24}, {"knn_top_k": 1}, {"knn_top_k": 4096},
               {"knn_layer": 0}, {"knn_layer": 1}, {"mod_every": 0, "qk_conv": 0}):
        cfg_of(TINY, memory="knn", **ok)
    # knn_layer -1: the block before the last, block 0 in a one-block model
    for n_layers, layer, want in ((1, -1, 0), (2, -1, 0), (3, -1, 1), (4, -1, 2), (4, 0, 0), (4, 3, 3)):
        got = ref.knn_block(cfg_of(TINY, memory="knn", n_layers=n_layers, knn_layer=layer))
        assert got == want, "n_layers %d knn_layer %d: block %s" % (n_layers, layer, got)
    assert ref.knn_block(cfg_of(TINY, memory="xl")) is None
    # parameters: the xl model's, in the same order, plus gate and knn_log_scale after the kNN
    # block's out_proj
    names = [n for n, _ in ref.param_shapes(cfg)]
    xl_names = [n for n, _ in ref.param_shapes(cfg_of(TINY, n_layers=3, memory="xl"))]
    j = names.index("blocks.1.attn.out_proj.weight")
    assert names[j + 1:j + 3] == ["blocks.1.attn.gate", "blocks.1.attn.knn_log_scale"], names
    assert [n for n in names if n not in names[j + 1:j + 3]] == xl_names
    shapes = dict(ref.param_shapes(cfg))
    assert shapes["blocks.1.attn.gate"] == (2,) and shapes["blocks.1.attn.knn_log_scale"] == (2,)
    # state: the xl cache everywhere, the empty memory in the kNN block only
    st = ref.init_state(cfg, 3, F64)
    assert [sorted(s) for s in st] == [["xl_k", "xl_v"], ["knn_k", "knn_v", "xl_k", "xl_v"], ["xl_k", "xl_v"]]
    assert st[1]["knn_k"].shape == (3, 2, 0, 8) and st[1]["knn_v"].shape == (3, 2, 0, 12)


def _shut_gate(p, i):
    """The parameters with block i's gate shut: sigmoid(-1000) is exactly 0."""
    return dict(p, **{"blocks.%d.attn.gate" % i: torch.full_like(p["blocks.%d.attn.gate" % i], -1000.0)})


def knn_gate_shut_is_xl():
    cfg = cfg_of(KNN)
    cfg_xl = cfg_of(TINY, n_layers=3, memory="xl")
    p = ref.random_params(cfg, 50, F64)
    p_xl = {n: p[n] for n, _ in ref.param_shapes(cfg_xl)}
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 4 * N, 51)
    l_xl, s_xl = ref.forward(p_xl, cfg_xl, tok)
    l_shut, s_shut = ref.forward(_shut_gate(p, 1), cfg, tok)
    assert_close(l_shut, l_xl, 1e-12, "logits, gate shut")
    for a, b in zip(s_shut, s_xl):
        for key in ("xl_k", "xl_v"):
            assert_close(a[key], b[key], 1e-12, "xl cache")
    assert s_shut[1]["knn_k"].shape[2] == 12
    # open, the read matters (in every segment: the first one is scaled by 1 - sigmoid(beta))
    l_open, _ = ref.forward(p, cfg, tok)
    for s in range(4):
        moved = (l_open[:, s * N:(s + 1) * N] - l_xl[:, s * N:(s + 1) * N]).abs().max().item()
        assert moved > 1e-2, "segment %d: the knn read did not change the logits (%.3g)" % (s, moved)


def knn_read_checks():
    cfg = cfg_of(KNN, knn_top_k=4096)
    p = ref.random_params(cfg, 52, F64)
    g = torch.Generator().manual_seed(53)
    B, N, D, H, dk, dv = 2, cfg["segment_len"], cfg["d_model"], cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    Fm = 10
    x = torch.randn(B, N, D, generator=g, dtype=F64)
    k_mem = torch.randn(B, H, Fm, dk, generator=g, dtype=F64)
    k_mem = k_mem / k_mem.norm(dim=-1, keepdim=True)
    st = {"xl_k": torch.randn(B, H, N, dk, generator=g, dtype=F64), "xl_v": torch.randn(B, H, N, dv, generator=g, dtype=F64),
          "knn_k": k_mem, "knn_v": torch.randn(B, H, Fm, dv, generator=g, dtype=F64)}
    pre = "blocks.1.attn."
    qkv = x @ p[pre + "qkv_proj.weight"].t()
    q = qkv[..., :H * dk].view(B, N, H, dk).transpose(1, 2)
    k = qkv[..., H * dk:2 * H * dk].view(B, N, H, dk).transpose(1, 2)
    v = qkv[..., 2 * H * dk:].view(B, N, H, dv).transpose(1, 2)
    a_dot = ref.local_attention(q, k, v, st["xl_k"], st["xl_v"], cfg["rope_theta"])
    gate = torch.sigmoid(p[pre + "gate"]).view(1, H, 1, 1)

    def head_out(a):
        return a.transpose(1, 2).reshape(B, N, H * dv) @ p[pre + "out_proj.weight"].t()

    # top-k >= the memory's size: plain softmax attention over the whole memory, scale exp(lambda),
    # cosine scores of the un-rotated query
    cos = (q / q.norm(dim=-1, keepdim=True)) @ st["knn_k"].transpose(-1, -2)      # (B, H, N, Fm)
    lam = p[pre + "knn_log_scale"].exp().view(1, H, 1, 1)
    a_all = torch.softmax(lam * cos, dim=-1) @ st["knn_v"]                          # (B, H, N, dv)
    out, _ = ref.attention(p, cfg, 1, x, st, True)
    assert_close(out, head_out(gate * a_all + (1 - gate) * a_dot), 1e-12, "top-k >= memory")
    out_eq, _ = ref.attention(p, dict(cfg, knn_top_k=Fm), 1, x, st, True)
    assert_close(out_eq, out, 1e-12, "top-k == memory size")
    # top-3: the same softmax with every score below a query's third highest masked out
    out3, _ = ref.attention(p, dict(cfg, knn_top_k=3), 1, x, st, True)
    third = cos.sort(dim=-1, descending=True).values[..., 2:3]                       # (B, H, N, 1)
    a_3 = torch.softmax((lam * cos).masked_fill(cos < third, float("-inf")), dim=-1) @ st["knn_v"]
    assert_close(out3, head_out(gate * a_3 + (1 - gate) * a_dot), 1e-12, "top-3")
    assert (out3 - out).abs().max().item() > 1e-3, "top-3 read == full read"
    # the rotated query would be another read: the read must use the un-rotated one
    qr = ref.rope(q, range(N), cfg["rope_theta"])
    a_rot = torch.softmax(lam * (ref.normalize(qr) @ st["knn_k"].transpose(-1, -2)), dim=-1) @ st["knn_v"]
    assert (head_out(gate * a_rot + (1 - gate) * a_dot) - out).abs().max().item() > 1e-3
    # an empty memory reads as exactly 0: A = (1 - sigmoid(beta)) A_dot
    empty = dict(st, knn_k=k_mem[:, :, :0], knn_v=st["knn_v"][:, :, :0])
    a0 = ref.knn_read(q, empty["knn_k"], empty["knn_v"], p[pre + "knn_log_scale"], 5)
    assert torch.equal(a0, torch.zeros(B, H, N, dv, dtype=F64)), "empty memory read != 0"
    out0, _ = ref.attention(p, cfg, 1, x, empty, True)
    assert torch.equal(out0, head_out((1 - gate) * a_dot)), "empty memory: A != (1 - sig(beta)) A_dot"
    # normalize: unit rows, and a zero row stays zero (divided by 1e-12, not by 0)
    nz = ref.normalize(torch.cat([torch.zeros(1, 4, dtype=F64), torch.randn(3, 4, generator=g, dtype=F64)]))
    assert torch.equal(nz[0], torch.zeros(4, dtype=F64))
    assert_close(nz[1:].norm(dim=-1), torch.ones(3, dtype=F64), 1e-15, "unit rows")


def knn_memory_contents():
    cfg = cfg_of(KNN)
    p = ref.random_params(cfg, 54, F64)
    for t in p.values():
        t.requires_grad_(True)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 4 * N, 55)
    state = ref.init_state(cfg, 2, F64)
    ks, vs = [], []
    for s in range(4):
        _, state = ref.forward_segment(p, cfg, tok[:, s * N:(s + 1) * N], state)
        assert not any(k.startswith("knn") for i in (0, 2) for k in state[i]), "memory outside the kNN block"
        ks.append(state[1]["xl_k"])      # the segment's un-rotated keys (B, H, N, dk)
        vs.append(state[1]["xl_v"])      # (B, H, N, dv)
        k_mem, v_mem = state[1]["knn_k"], state[1]["knn_v"]
        assert k_mem.shape[2] == min(12, (s + 1) * N), "segment %d: %d rows" % (s, k_mem.shape[2])
        assert not k_mem.requires_grad and not v_mem.requires_grad, "the memory carries gradient"
        k_all = torch.cat(ks, dim=2)
        want_k = k_all / k_all.norm(dim=-1, keepdim=True)
        assert_close(k_mem, want_k[:, :, -12:], 1e-15, "segment %d memory keys" % s)
        assert torch.equal(v_mem, torch.cat(vs, dim=2)[:, :, -12:]), "segment %d memory values" % s
    # a partial segment reads but does not write
    _, st2 = ref.forward_segment(p, cfg, tok[:, :3], state)
    assert st2[1]["knn_k"] is state[1]["knn_k"] and st2[1]["knn_v"] is state[1]["knn_v"]


def knn_causality():
    cfg = cfg_of(KNN)
    p = ref.random_params(cfg, 56, F64)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 4 * N, 57)
    base, _ = ref.forward(p, cfg, tok)
    for t in (1, N - 1, N, 2 * N + 3, 3 * N + 6):
        tok2 = tok.clone()
        tok2[:, t] = (tok2[:, t] + 1) % cfg["vocab_size"]
        other, _ = ref.forward(p, cfg, tok2)
        assert torch.equal(other[:, :t], base[:, :t]), "change at %d reached an earlier logit" % t
        assert (other[:, t:] - base[:, t:]).abs().max().item() > 1e-3, "change at %d had no effect" % t


def knn_reads_of(fn):
    """Run fn() with ref.knn_read watched: returns (fn's result, [(q, k_mem, v_mem, top-k margin)]),
    one entry per read, the margin being the least gap between the k-th and (k+1)-th highest score
    of a query (None where the memory has at most top_k rows: no choice)."""
    read = ref.knn_read
    reads = []

    def spy(q, k_mem, v_mem, log_scale, top_k):
        margin = None
        if k_mem.shape[-2] > top_k:
            sc = (ref.normalize(q) @ k_mem.transpose(-1, -2)).sort(dim=-1, descending=True).values
            margin = (sc[..., top_k - 1] - sc[..., top_k]).min().item()
        reads.append((q, k_mem, v_mem, margin))
        return read(q, k_mem, v_mem, log_scale, top_k)
    ref.knn_read = spy
    try:
        return fn(), reads
    finally:
        ref.knn_read = read


def knn_gradients():
    # gradcheck the last of 3 segments (the memory and the cache are detached by design, so finite
    # differences through earlier segments would see a path autograd cuts: the first 2 segments
    # run once, as constants); the kNN block is block 1 of MICRO (block 0 would see the bare
    # embeddings, whose repeats in a vocabulary of 5 tie exactly), the memory holds 5 of 6 tokens,
    # and each query retrieves 3
    cfg = cfg_of(MICRO, memory="knn", knn_tokens=5, knn_top_k=3, knn_layer=1)
    params = ref.random_params(cfg, 58, F64)
    names = [n for n, _ in ref.param_shapes(cfg)]
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 3 * N, 59)
    with torch.no_grad():
        _, state0 = ref.forward(params, cfg, tok[:, :2 * N])
    assert state0[1]["knn_k"].shape[2] == 5
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)

    def f(*flat):
        return ref.forward(dict(zip(names, flat)), cfg, tok[:, 2 * N:], state=state0)[0]

    # top-k selection is piecewise constant: no eps-sized step may flip it
    _, reads = knn_reads_of(lambda: f(*inputs))
    assert reads[0][3] > 1e-4, "near-tie in the kNN top-k (%.3g), pick another seed" % reads[0][3]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    # the gradient reaches the query, lambda and the gate; the read alone, too (memory held fixed)
    grads = dict(zip(names, torch.autograd.grad(f(*inputs).sum(), inputs)))
    for n in ("blocks.1.attn.gate", "blocks.1.attn.knn_log_scale"):
        assert grads[n].abs().min().item() > 0, "no gradient on " + n
    q, k_mem, v_mem, _ = reads[0]
    qq = q.detach().clone().requires_grad_(True)
    lam = params["blocks.1.attn.knn_log_scale"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ref.knn_read(a, k_mem, v_mem, b, 3), (qq, lam),
                                    eps=1e-6, atol=1e-7, rtol=1e-5)
    # not the memory: the state never requires grad, and the last segment's logits give no gradient
    # to tokens met only in earlier segments (their keys and values reach it through the memory)
    cfg = cfg_of(KNN)
    p = ref.random_params(cfg, 60, F64)
    for t in p.values():
        t.requires_grad_(True)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 3 * N, 61)
    logits, state = ref.forward(p, cfg, tok)
    assert not any(t.requires_grad for st in state for t in st.values()), "the state carries gradient"
    logits[:, 2 * N:].sum().backward()
    used = set(tok[:, 2 * N:].reshape(-1).tolist())
    early = set(tok[:, :2 * N].reshape(-1).tolist()) - used
    assert early, "every early token recurs, pick another seed"
    for vtok in early:
        assert p["embed.weight"].grad[vtok].abs().max().item() == 0.0, "gradient leaked through the memory"
    # ... although the memory matters to that segment
    _, st2 = ref.forward(p, cfg, tok[:, :2 * N])
    cut = [dict(st, knn_k=st["knn_k"][:, :, :0], knn_v=st["knn_v"][:, :, :0]) if "knn_k" in st else st for st in st2]
    l_cut, _ = ref.forward_segment(p, cfg, tok[:, 2 * N:], cut)
    assert (l_cut - logits[:, 2 * N:]).abs().max().item() > 1e-3, "the memory does not reach the last segment"


def make_golden_knn():
    import make_golden
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "g.safetensors")
        cfgp = os.path.join(HERE, "..", "data", "parity-knn.json")
        assert make_golden.main(["--config", cfgp, "--dtype", "float64", "--seed", "17", "--batch", "2",
                                 "--segments", "3", "--out", out]) == 0
        t, meta = load_file(out)
    cfg = json.loads(meta["config"])
    S, B, N, H = 3, 2, cfg["segment_len"], cfg["n_heads"]
    kb = ref.knn_block(cfg)
    # the config tests what it should: the kNN block is not the last one, the memory evicts, and
    # top-k is a choice among the rows of the memory in segments 1 and 2
    assert kb < cfg["n_layers"] - 1 and N < cfg["knn_tokens"] < 2 * N and cfg["knn_top_k"] < N
    names = [n for n, _ in ref.param_shapes(cfg)]
    assert set(t) == ({"tokens", "logits", "loss"} | {"param/" + n for n in names} | {"grad/" + n for n in names}
                      | {"state/%d/%s" % (i, k) for i in range(cfg["n_layers"]) for k in ("xl_k", "xl_v")}
                      | {"state/%d/knn_k" % kb, "state/%d/knn_v" % kb}), sorted(t)
    assert t["state/%d/knn_k" % kb].shape == (B, H, cfg["knn_tokens"], cfg["d_key"])
    assert t["state/%d/knn_v" % kb].shape == (B, H, cfg["knn_tokens"], cfg["d_value"])
    p = {n: t["param/" + n] for n in names}
    tok = t["tokens"][:, :-1]
    # the exact top-k has a clear margin everywhere (a float32 run must choose the same rows)
    (logits, state), reads = knn_reads_of(lambda: ref.forward(p, cfg, tok))
    margins = [r[3] for r in reads]
    assert margins[0] is None and min(margins[1:]) > 1e-3, "top-k margins %s" % margins
    assert_close(logits, t["logits"], 1e-12, "logits")
    assert torch.equal(state[kb]["knn_k"], t["state/%d/knn_k" % kb])
    # the read visibly matters in this config, and so do the choice of rows and the eviction
    for other_p, other_cfg, what in ((_shut_gate(p, kb), cfg, "gate shut"),
                                     (p, dict(cfg, knn_top_k=4096), "top-k over everything"),
                                     (p, dict(cfg, knn_tokens=S * N), "no eviction")):
        l2, _ = ref.forward(other_p, other_cfg, tok)
        assert (l2[:, 2 * N:] - logits[:, 2 * N:]).abs().max().item() > 0.1, what


# ---------------------------------------------------------------------------------------------
# (w) rmt: the Recurrent Memory Transformer's memory, p rows R that run through the blocks as
# [R; tokens; R] (read rows, the segment, write rows); the write rows' output is the next R

RMT = dict(TINY, memory="rmt", rmt_tokens=3)


def rmt_config_checks():
    cfg = cfg_of(RMT)
    assert cfg["rmt_tokens"] == 3
    assert cfg_of(TINY, memory="rmt")["rmt_tokens"] == 16, "default"
    # the field exists in rmt configs only, and an rmt config holds no knn field
    for mode in ref.MEMORY_MODES:
        if mode != "rmt":
            assert "rmt_tokens" not in cfg_of(TINY, memory=mode), mode
    assert not any(k in cfg for k in ref.KNN_FIELDS)
    expect_rejected({"rmt_tokens": 3},  # TINY is infini-delta
                    {"memory": "none", "rmt_tokens": 16}, {"memory": "xl", "rmt_tokens": 1},
                    {"memory": "knn", "rmt_tokens": 4}, {"memory": "rmt", "knn_tokens": 12},
                    {"memory": "rmt", "rmt_tokens": 0}, {"memory": "rmt", "rmt_tokens": 4097},
                    {"memory": "rmt", "rmt_tokens": 3.0}, {"memory": "rmt", "rmt_tokens": True},
                    {"memory": "rmt", "rmt_tokens": "3"},
                    # segment_len + 2 rmt_tokens <= 16384
                    {"memory": "rmt", "segment_len": 16383, "rmt_tokens": 1},
                    {"memory": "rmt", "segment_len": 8193, "rmt_tokens": 4096},
                    {"memory": "rmt", "mod_every": 2}, {"memory": "rmt", "mod_every": 1},
                    {"memory": "rmt", "qk_conv": 3}, {"memory": "rmt", "memory_key_shift": True})
    for ok in ({"rmt_tokens": 1}, {"rmt_tokens": 4096, "segment_len": 8192},
               {"rmt_tokens": 1, "segment_len": 16382}, {"mod_every": 0, "qk_conv": 0}):
        cfg_of(TINY, memory="rmt", **ok)
    # parameters: the none model's, in the same order, plus rmt_memory (p, D) after embed.weight
    names = [n for n, _ in ref.param_shapes(cfg)]
    none_names = [n for n, _ in ref.param_shapes(cfg_of(TINY, memory="none"))]
    assert names == none_names[:1] + ["rmt_memory"] + none_names[1:], names
    assert dict(ref.param_shapes(cfg))["rmt_memory"] == (3, 32)
    # state: nothing per layer (as none), and no model-level memory before a segment has ended
    st = ref.init_state(cfg, 2, F64)
    assert list(st) == [{}, {}] and st.rmt_memory is None
    p = ref.random_params(cfg, 68, F64)
    tok = tokens_for(cfg, 2, 8, 69)
    _, st1 = ref.forward(p, cfg, tok[:, :5])           # partial: writes nothing
    assert list(st1) == [{}, {}] and st1.rmt_memory is None
    _, st2 = ref.forward(p, cfg, tok)                  # complete: R (B, p, D) in the compute dtype
    assert list(st2) == [{}, {}] and st2.rmt_memory.shape == (2, 3, 32) and st2.rmt_memory.dtype == F64
    # other modes' states have no model-level memory
    assert ref.forward(p, cfg_of(TINY, memory="none"), tok)[1].rmt_memory is None


def _plain_blocks(p, cfg, x):
    """The blocks of a dense config (mode none) over rows x (B, n, D), as one segment: the last
    block's output (B, n, D), before the final RMSNorm."""
    for i in range(cfg["n_layers"]):
        x, _ = _dense_block(p, cfg, i, x, {})
    return x


def rmt_vs_extended_rows():
    # an rmt segment is the none model run on the explicitly built rows [R; x; R] (positions
    # 0..N+2p-1, causal over all rows): the same logits at the token rows, and the written memory
    # is the last block's output at the write rows; a partial segment is [R; x] and writes nothing
    cfg = cfg_of(RMT)
    P, N, V, D, B = cfg["rmt_tokens"], cfg["segment_len"], cfg["vocab_size"], cfg["d_model"], 2
    cfg_none = cfg_of(TINY, memory="none", segment_len=N + 2 * P)
    p = ref.random_params(cfg, 70, F64)
    pn = {n: p[n] for n, _ in ref.param_shapes(cfg_none)}
    eps = cfg["norm_eps"]
    tok = tokens_for(cfg, B, 2 * N + 5, 71)
    state = ref.init_state(cfg, B, F64)
    R = p["rmt_memory"].unsqueeze(0).expand(B, P, D)                          # (B, p, D)
    for s, n in ((0, N), (1, N), (2, 5)):
        seg = tok[:, s * N:s * N + n]                                         # (B, n)
        logits, new = ref.forward_segment(p, cfg, seg, state)
        x = p["embed.weight"][seg]                                            # (B, n, D)
        rows = torch.cat([R, x, R] if n == N else [R, x], dim=1)             # (B, p + n [+ p], D)
        out = _plain_blocks(pn, cfg_none, rows)
        want = ref.rms_norm(out[:, P:P + n], p["norm.weight"], eps) @ p["lm_head.weight"].t()  # (B, n, V)
        assert_close(logits, want, 1e-12, "segment %d logits" % s)
        # the same through the whole none model: R's rows as extra vocabulary entries of each batch
        # row (their logits are not compared)
        ext_cfg = cfg_of(TINY, memory="none", segment_len=N + 2 * P, vocab_size=V + B * P)
        ext = dict(pn)
        ext["embed.weight"] = torch.cat([p["embed.weight"], R.reshape(B * P, D)])          # (V + B p, D)
        ext["lm_head.weight"] = torch.cat([p["lm_head.weight"], torch.zeros(B * P, D, dtype=F64)])
        mem_ids = V + torch.arange(B * P).view(B, P)                                       # (B, p)
        ext_tok = torch.cat([mem_ids, seg, mem_ids] if n == N else [mem_ids, seg], dim=1)
        ext_logits, _ = ref.forward(ext, ext_cfg, ext_tok)
        assert_close(logits, ext_logits[:, P:P + n, :V], 1e-12, "segment %d, none model" % s)
        if n == N:
            assert_close(new.rmt_memory, out[:, P + N:], 1e-12, "segment %d written memory" % s)
            assert (new.rmt_memory - R).abs().max().item() > 0.1, "the write rows did not move"
            R = out[:, P + N:]
        else:
            assert new.rmt_memory is state.rmt_memory, "a partial segment wrote the memory"
        state = new


def rmt_causality():
    cfg = cfg_of(RMT)
    p = ref.random_params(cfg, 72, F64)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 3 * N + 4, 73)  # 3 segments and a partial one
    base, base_state = ref.forward(p, cfg, tok)
    for t in (0, 1, N - 1, N, N + 4, 2 * N - 1, 2 * N + 3, 3 * N + 1):
        tok2 = tok.clone()
        tok2[:, t] = (tok2[:, t] + 1) % cfg["vocab_size"]
        other, other_state = ref.forward(p, cfg, tok2)
        assert torch.equal(other[:, :t], base[:, :t]), "change at %d reached an earlier logit" % t
        assert (other[:, t:] - base[:, t:]).abs().max().item() > 1e-3, "change at %d had no effect" % t
        # a segment's last token reaches the next segment, and there only through the memory
        if t % N == N - 1:
            nxt = slice(t + 1, t + 1 + N)
            assert (other[:, nxt] - base[:, nxt]).abs().max().item() > 1e-3, "change at %d: not across" % t
        if t >= 3 * N:  # in the partial segment: the memory after the last complete one is unchanged
            assert torch.equal(other_state.rmt_memory, base_state.rmt_memory)
    # what crosses the boundary is the memory alone: segment 1 from the memory segment 0 wrote is the
    # full run's segment 1; from the learned memory, it is not
    _, s0 = ref.forward(p, cfg, tok[:, :N])
    l1, _ = ref.forward_segment(p, cfg, tok[:, N:2 * N], s0)
    assert_close(l1, base[:, N:2 * N], 1e-12, "segment 1 from the written memory")
    fresh, _ = ref.forward(p, cfg, tok[:, N:2 * N])
    assert (fresh - base[:, N:2 * N]).abs().max().item() > 1e-2, "the written memory does not matter"


def rmt_gradients():
    # gradcheck over 3 segments: the logits of every segment and the memory the last one wrote; R
    # keeps its history, so finite differences and autograd agree only if the gradient runs back
    # through every written memory into the earlier segments and rmt_memory
    cfg = cfg_of(MICRO, memory="rmt", rmt_tokens=2)
    params = ref.random_params(cfg, 74, F64)
    names = [n for n, _ in ref.param_shapes(cfg)]
    assert "rmt_memory" in names
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 3 * N, 75)
    inputs = tuple(params[n].clone().requires_grad_(True) for n in names)

    def f(*flat):
        logits, state = ref.forward(dict(zip(names, flat)), cfg, tok)
        return logits, state.rmt_memory

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    # the last segment's logits give gradient to rmt_memory (read by segment 0 only) and to tokens
    # met only in segment 0: through the written memory, the one path across segments
    cfg = cfg_of(RMT)
    p = ref.random_params(cfg, 76, F64)
    for t in p.values():
        t.requires_grad_(True)
    N = cfg["segment_len"]
    tok = tokens_for(cfg, 2, 3 * N, 77)
    logits, state = ref.forward(p, cfg, tok)
    assert state.rmt_memory.requires_grad, "the written memory was detached"
    logits[:, 2 * N:].sum().backward()
    assert p["rmt_memory"].grad.abs().min().item() > 0, "no gradient on rmt_memory from the last segment"
    early = set(tok[:, :N].reshape(-1).tolist()) - set(tok[:, N:].reshape(-1).tolist())
    assert early, "every token of segment 0 recurs, pick another seed"
    for vtok in early:
        assert p["embed.weight"].grad[vtok].abs().max().item() > 0, "no gradient into segment 0"
    # ... and only through it: with the memory detached by the caller after segment 1 (truncated
    # back-propagation), the last segment gives rmt_memory no gradient
    for t in p.values():
        t.grad = None
    _, s1 = ref.forward(p, cfg, tok[:, :2 * N])
    cut = ref.State(list(s1), s1.rmt_memory.detach())
    l2, _ = ref.forward_segment(p, cfg, tok[:, 2 * N:], cut)
    l2.sum().backward()
    assert p["rmt_memory"].grad is None or p["rmt_memory"].grad.abs().max().item() == 0.0


def make_golden_rmt():
    import make_golden
    cfgp = os.path.join(HERE, "..", "data", "parity-rmt.json")
    golden = {}
    with tempfile.TemporaryDirectory() as d:
        for dt in ("float64", "float32"):
            out = os.path.join(d, "g-%s.safetensors" % dt)
            assert make_golden.main(["--config", cfgp, "--dtype", dt, "--seed", "17", "--batch", "2",
                                     "--segments", "3", "--out", out]) == 0
            golden[dt] = load_file(out)
    t, meta = golden["float64"]
    cfg = json.loads(meta["config"])
    B, N, P, D = 2, cfg["segment_len"], cfg["rmt_tokens"], cfg["d_model"]
    assert cfg["memory"] == "rmt" and P == 3, cfg
    names = [n for n, _ in ref.param_shapes(cfg)]
    assert "rmt_memory" in names
    # no per-layer state, one model-level memory
    want = ({"tokens", "logits", "loss", "state/rmt_memory"} | {"param/" + n for n in names}
            | {"grad/" + n for n in names})
    for dt, dtype in (("float64", F64), ("float32", torch.float32)):
        tt = golden[dt][0]
        assert set(tt) == want, sorted(set(tt) ^ want)
        assert tt["state/rmt_memory"].shape == (B, P, D) and tt["state/rmt_memory"].dtype == dtype, dt
        assert tt["param/rmt_memory"].shape == (P, D)
        assert tt["grad/rmt_memory"].abs().min().item() > 0, "%s: rmt_memory got no gradient" % dt
    p = {n: t["param/" + n] for n in names}
    tok = t["tokens"][:, :-1]
    logits, state = ref.forward(p, cfg, tok)
    assert_close(logits, t["logits"], 1e-12, "logits")
    assert_close(state.rmt_memory, t["state/rmt_memory"], 1e-12, "state/rmt_memory")
    assert_close(golden["float32"][0]["state/rmt_memory"].to(F64), t["state/rmt_memory"], 1e-4, "float32 memory")
    # the memory written twice matters to segments 1 and 2 (each read with the learned memory differs)
    for s in (1, 2):
        fresh, _ = ref.forward(p, cfg, tok[:, s * N:(s + 1) * N])
        moved = (fresh - logits[:, s * N:(s + 1) * N]).abs().max().item()
        assert moved > 0.1, "segment %d: the written memory barely matters (%.3g)" % (s, moved)


def main():
    t0 = time.time()
    check("(a) gradcheck infini-delta, 2 segments", lambda: gradcheck_mode("infini-delta", False))
    check("(a) gradcheck infini-linear, 2 segments, tied embeddings", lambda: gradcheck_mode("infini-linear", True))
    check("(b) first segment: A_mem == 0, A == (1-sig(beta)) A_dot exactly", first_segment_attention_exact)
    check("(b) first segment: model == 'none' with out_proj scaled", first_segment_model_vs_none)
    check("(c) safetensors round trip", safetensors_roundtrip)
    check("(d) delta rule, single key row written twice", delta_single_key)
    check("(e) attention == naive per-row loop (6 modes, with state)", naive_matches)
    check("(f) causality, partial segment, memory matters", causality_and_partial)
    check("(g) RoPE properties", rope_properties)
    check("(h) xl cache carries no gradient", xl_cache_detached)
    check("(i) make_golden CLI output and bad arguments", make_golden_cli)
    check("(j) MoD config fields, k formula, parameter table", mod_config_validation)
    check("(k) dense configs draw bit-identical parameters to before MoD", dense_params_unchanged)
    check("(l) MoD capacity 1: x + w(r) * f_dense, state == dense (4 modes)", mod_full_capacity_is_dense)
    check("(m) MoD Attn_S == segment attention with other keys masked", mod_attention_vs_masked)
    check("(n) MoD causal routing is causal (4 modes, router/mlp)", mod_causal_routing_is_causal)
    check("(o) MoD top-k routing is not causal (the test has teeth)", mod_topk_routing_is_not_causal)
    check("(p) MoD gradcheck total loss infini-delta raw/router",
          lambda: mod_gradcheck("infini-delta", False, "raw", "router", 2))
    check("(p) MoD gradcheck total loss xl sigmoid/mlp", lambda: mod_gradcheck("xl", False, "sigmoid", "mlp", 2))
    check("(p) MoD gradcheck total loss infini-linear tied, every block",
          lambda: mod_gradcheck("infini-linear", True, "raw", "router", 1))
    check("(q) MoD r and p formulas, top-k and causal selection", mod_selection_and_logits)
    check("(q) MoD loss terms and where their gradients go", mod_loss_terms)
    check("(r) make_golden MoD output (parity-mod-xl)", make_golden_mod)
    check("(s) memory_key_shift: written keys, shut == plain, open moves M", key_shift_checks)
    check("(s) gradcheck infini-delta with memory_key_shift, 2 segments",
          lambda: gradcheck_mode("infini-delta", False, memory_key_shift=True))
    check("(u) qk_conv: per-row loop, identity == plain, tails cross segments, open taps matter",
          qk_conv_checks)
    check("(u) gradcheck infini-delta with qk_conv 3, 2 segments",
          lambda: gradcheck_mode("infini-delta", False, qk_conv=3))
    check("(v) knn config fields, knn_layer -1, parameter table, state", knn_config_checks)
    check("(v) knn with the kNN gate shut (-1000) == xl", knn_gate_shut_is_xl)
    check("(v) knn read: top-k >= memory == softmax over all, top-3, empty 0", knn_read_checks)
    check("(v) knn memory == last knn_tokens normalised keys, oldest first", knn_memory_contents)
    check("(v) knn causality: a later token never changes an earlier logit", knn_causality)
    check("(v) gradcheck knn (3rd segment), gradient not through the memory", knn_gradients)
    check("(v) make_golden knn output (parity-knn)", make_golden_knn)
    check("(w) rmt config fields, parameter table, state", rmt_config_checks)
    check("(w) rmt segment == plain blocks over the rows [R; x; R] (logits, written R)", rmt_vs_extended_rows)
    check("(w) rmt causality: a later token never changes an earlier logit", rmt_causality)
    check("(w) gradcheck rmt, 3 segments, gradient through the written memory", rmt_gradients)
    check("(w) make_golden rmt output (parity-rmt)", make_golden_rmt)
    n_fail = _results.count(False)
    print("%d/%d passed in %.1fs" % (len(_results) - n_fail, len(_results), time.time() - t0))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
