"""Independent Python reference of the infini model, written from docs/MODEL.md.

Plain functions over a dict of parameter tensors (name -> tensor, names as in MODEL.md's table).
Written for clarity, not speed: one segment at a time in a Python loop, one layer after another.

Shape letters: B batch, T tokens, N tokens in the current segment, L cache length (xl),
D d_model, H n_heads, dk d_key, dv d_value, F d_ff, V vocab_size.

The computation dtype is the dtype of the parameters (float64 or float32; bfloat16 is accepted
but is not a parity target). M and z are kept in float64 when computing in float64, else float32.
"""

import json
import math

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# configuration

DEFAULTS = {
    "format_version": 1,
    "vocab_size": 256,
    "d_model": 256,
    "n_layers": 4,
    "n_heads": 4,
    "d_key": 64,
    "d_value": 64,
    "d_ff": 682,
    "segment_len": 256,
    "memory": "infini-delta",
    "gate_init": -3.0,
    "tie_embeddings": False,
    "dtype": "float32",
    "rope_theta": 10000.0,
    "norm_eps": 1e-5,
    "memory_eps": 1e-6,
    "init_std": 0.02,
}

MEMORY_MODES = ("infini-linear", "infini-delta", "none", "xl")
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


class ConfigError(ValueError):
    pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def make_config(user):
    """Fill defaults and validate. Unknown fields are an error. Returns a new dict."""
    if not isinstance(user, dict):
        raise ConfigError("config must be a JSON object")
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        raise ConfigError("unknown config field(s): %s" % ", ".join(unknown))
    cfg = dict(DEFAULTS)
    cfg.update(user)

    def need(cond, msg):
        if not cond:
            raise ConfigError(msg)

    need(_is_int(cfg["format_version"]) and cfg["format_version"] == 1, "format_version must be 1")
    need(_is_int(cfg["vocab_size"]) and cfg["vocab_size"] >= 2, "vocab_size must be an int >= 2")
    for k in ("d_model", "n_layers", "n_heads", "d_value", "d_ff", "segment_len"):
        need(_is_int(cfg[k]) and cfg[k] >= 1, "%s must be an int >= 1" % k)
    need(_is_int(cfg["d_key"]) and cfg["d_key"] >= 2 and cfg["d_key"] % 2 == 0,
         "d_key must be an even int >= 2")
    need(cfg["memory"] in MEMORY_MODES, "memory must be one of %s" % ", ".join(MEMORY_MODES))
    need(_is_num(cfg["gate_init"]), "gate_init must be a finite number")
    need(isinstance(cfg["tie_embeddings"], bool), "tie_embeddings must be a bool")
    need(cfg["dtype"] in DTYPES, "dtype must be one of %s" % ", ".join(DTYPES))
    for k in ("rope_theta", "norm_eps", "memory_eps", "init_std"):
        need(_is_num(cfg[k]) and cfg[k] > 0, "%s must be a finite number > 0" % k)
    for k in ("gate_init", "rope_theta", "norm_eps", "memory_eps", "init_std"):
        cfg[k] = float(cfg[k])
    return cfg


def load_config(path):
    with open(path) as f:
        return make_config(json.load(f))


def is_infini(cfg):
    return cfg["memory"] in ("infini-linear", "infini-delta")


# ----------------------------------------------------------------------------------------------
# parameters

def param_shapes(cfg):
    """Ordered list of (name, shape) for every parameter, in MODEL.md table order."""
    D, H, dk, dv = cfg["d_model"], cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    Fh, V = cfg["d_ff"], cfg["vocab_size"]
    out = [("embed.weight", (V, D))]
    for i in range(cfg["n_layers"]):
        p = "blocks.%d." % i
        out.append((p + "attn_norm.weight", (D,)))
        out.append((p + "attn.qkv_proj.weight", (H * dk + H * dk + H * dv, D)))
        out.append((p + "attn.out_proj.weight", (D, H * dv)))
        if is_infini(cfg):
            out.append((p + "attn.gate", (H,)))
        out.append((p + "mlp_norm.weight", (D,)))
        out.append((p + "mlp.gate_up_proj.weight", (2 * Fh, D)))
        out.append((p + "mlp.down_proj.weight", (D, Fh)))
    out.append(("norm.weight", (D,)))
    if not cfg["tie_embeddings"]:
        out.append(("lm_head.weight", (V, D)))
    return out


def check_params(params, cfg):
    want = dict(param_shapes(cfg))
    have = set(params)
    if have != set(want):
        raise ValueError("parameter names differ: missing %s, extra %s"
                         % (sorted(set(want) - have), sorted(have - set(want))))
    for name, shape in want.items():
        if tuple(params[name].shape) != tuple(shape):
            raise ValueError("%s: shape %s, expected %s" % (name, tuple(params[name].shape), shape))


# ----------------------------------------------------------------------------------------------
# building blocks

def rms_norm(x, weight, eps):
    # x (..., D), weight (D,)
    return x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def mlp(x, w_gate_up, w_down):
    # x (B, N, D); w_gate_up (2F, D); w_down (D, F)
    Fh = w_down.shape[1]
    g = x @ w_gate_up[:Fh].t()      # (B, N, F)
    u = x @ w_gate_up[Fh:].t()      # (B, N, F)
    return (F.silu(g) * u) @ w_down.t()  # (B, N, D)


def rope(x, positions, theta):
    """Rotate-half RoPE. x (B, H, n, dk); positions: list/range of n ints (may be negative).

    theta_i = theta^(-2i/dk), a = p * theta_i (angles computed in float64, then cast)
    x'[i] = x[i] cos a - x[i + dk/2] sin a ; x'[i + dk/2] = x[i + dk/2] cos a + x[i] sin a
    """
    dk = x.shape[-1]
    half = dk // 2
    i = torch.arange(half, dtype=torch.float64)                       # (dk/2,)
    inv_freq = theta ** (-2.0 * i / dk)                               # (dk/2,)
    p = torch.tensor(list(positions), dtype=torch.float64)            # (n,)
    ang = p[:, None] * inv_freq[None, :]                              # (n, dk/2)
    cos = torch.cos(ang).to(x.dtype)                                  # (n, dk/2)
    sin = torch.sin(ang).to(x.dtype)                                  # (n, dk/2)
    x1 = x[..., :half]                                                # (B, H, n, dk/2)
    x2 = x[..., half:]                                                # (B, H, n, dk/2)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)  # (B, H, n, dk)


def sigma(x):
    """Feature map ELU(x) + 1 (strictly positive)."""
    return F.elu(x) + 1.0


def memory_read(sq, M, z, eps):
    """A_mem = sigma(Q) M / (sigma(Q) z + eps).

    sq (B, H, N, dk) = sigma(Q) (un-rotated); M (B, H, dk, dv); z (B, H, dk) -> (B, H, N, dv)
    """
    num = sq @ M                      # (B, H, N, dv)
    den = sq @ z.unsqueeze(-1)        # (B, H, N, 1)   z broadcast as a column
    return num / (den + eps)          # (B, H, N, dv)


def memory_write(sk, v, M, z, eps, delta):
    """One segment's write. sk (B, H, N, dk) = sigma(K) (un-rotated); v (B, H, N, dv).

    Returns new (M (B, H, dk, dv), z (B, H, dk)). The delta term uses M and z from before the write.
    """
    if delta:
        v_old = memory_read(sk, M, z, eps)                 # (B, H, N, dv), old M and z
        M_new = M + sk.transpose(-1, -2) @ (v - v_old)     # (B, H, dk, dv)
    else:
        M_new = M + sk.transpose(-1, -2) @ v               # (B, H, dk, dv)
    z_new = z + sk.sum(dim=-2)                             # (B, H, dk)
    return M_new, z_new


def local_attention(q, k, v, k_cache, v_cache, theta):
    """Causal softmax attention within the segment, plus (xl) the whole previous-segment cache.

    q, k (B, H, N, dk) un-rotated; v (B, H, N, dv);
    k_cache (B, H, L, dk) un-rotated or None; v_cache (B, H, L, dv) or None.
    Current segment at positions 0..N-1, cache at -L..-1.  -> (B, H, N, dv)
    """
    N, dk = q.shape[-2], q.shape[-1]
    qr = rope(q, range(N), theta)                                     # (B, H, N, dk)
    kr = rope(k, range(N), theta)                                     # (B, H, N, dk)
    scale = 1.0 / math.sqrt(dk)
    scores = (qr @ kr.transpose(-1, -2)) * scale                      # (B, H, N, N)
    causal = torch.ones(N, N, dtype=torch.bool).tril()                # (N, N) key s <= query t
    scores = scores.masked_fill(~causal, float("-inf"))
    values = v
    if k_cache is not None:
        L = k_cache.shape[-2]
        kcr = rope(k_cache, range(-L, 0), theta)                      # (B, H, L, dk)
        s_cache = (qr @ kcr.transpose(-1, -2)) * scale                # (B, H, N, L)
        scores = torch.cat([s_cache, scores], dim=-1)                 # (B, H, N, L + N)
        values = torch.cat([v_cache, v], dim=-2)                      # (B, H, L + N, dv)
    probs = torch.softmax(scores, dim=-1)                             # (B, H, N, L + N)
    return probs @ values                                             # (B, H, N, dv)


# ----------------------------------------------------------------------------------------------
# state

def state_dtype(compute_dtype):
    return torch.float64 if compute_dtype == torch.float64 else torch.float32


def init_state(cfg, batch, compute_dtype):
    """Per-layer state: infini -> {"M": zeros (B,H,dk,dv), "z": zeros (B,H,dk)};
    xl -> {"xl_k": None, "xl_v": None} (empty cache); none -> {}."""
    B, H, dk, dv = batch, cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    sd = state_dtype(compute_dtype)
    layers = []
    for _ in range(cfg["n_layers"]):
        if is_infini(cfg):
            layers.append({"M": torch.zeros(B, H, dk, dv, dtype=sd), "z": torch.zeros(B, H, dk, dtype=sd)})
        elif cfg["memory"] == "xl":
            layers.append({"xl_k": None, "xl_v": None})
        else:
            layers.append({})
    return layers


# ----------------------------------------------------------------------------------------------
# model

def attention(params, cfg, i, x, layer_state, complete):
    """Attention of block i over one segment. x (B, N, D) (already normed).

    complete: whether the segment is complete (only then memory is written / cache replaced).
    Returns (out (B, N, D), new layer state dict).
    """
    B, N, _ = x.shape
    H, dk, dv = cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    p = "blocks.%d.attn." % i
    qkv = x @ params[p + "qkv_proj.weight"].t()                              # (B, N, 2*H*dk + H*dv)
    q = qkv[..., : H * dk].view(B, N, H, dk).transpose(1, 2)                 # (B, H, N, dk)
    k = qkv[..., H * dk: 2 * H * dk].view(B, N, H, dk).transpose(1, 2)       # (B, H, N, dk)
    v = qkv[..., 2 * H * dk:].view(B, N, H, dv).transpose(1, 2)              # (B, H, N, dv)

    new_state = dict(layer_state)
    if cfg["memory"] == "xl":
        a_dot = local_attention(q, k, v, layer_state["xl_k"], layer_state["xl_v"], cfg["rope_theta"])
        if complete:
            new_state["xl_k"] = k.detach()                                   # (B, H, N, dk) un-rotated
            new_state["xl_v"] = v.detach()                                   # (B, H, N, dv)
        a = a_dot                                                            # (B, H, N, dv)
    elif cfg["memory"] == "none":
        a = local_attention(q, k, v, None, None, cfg["rope_theta"])          # (B, H, N, dv)
    else:
        M, z = layer_state["M"], layer_state["z"]                            # (B,H,dk,dv), (B,H,dk)
        sd, eps = M.dtype, cfg["memory_eps"]
        # 1. memory read, memory as before this segment, un-rotated Q
        a_mem = memory_read(sigma(q).to(sd), M, z, eps).to(x.dtype)          # (B, H, N, dv)
        # 2. local attention (RoPE inside)
        a_dot = local_attention(q, k, v, None, None, cfg["rope_theta"])      # (B, H, N, dv)
        # 3. gate, one scalar per head
        g = torch.sigmoid(params[p + "gate"]).view(1, H, 1, 1)               # (1, H, 1, 1)
        a = g * a_mem + (1.0 - g) * a_dot                                    # (B, H, N, dv)
        # 4. memory write with un-rotated K, once the segment is complete
        if complete:
            M_new, z_new = memory_write(sigma(k).to(sd), v.to(sd), M, z, eps,
                                        delta=(cfg["memory"] == "infini-delta"))
            new_state["M"], new_state["z"] = M_new, z_new
    a = a.transpose(1, 2).reshape(B, N, H * dv)                              # (B, N, H*dv) head-major
    return a @ params[p + "out_proj.weight"].t(), new_state                  # (B, N, D)


def forward_segment(params, cfg, tokens, state):
    """One segment (N <= segment_len tokens, starting at a segment boundary). tokens (B, N) int64.

    Returns (logits (B, N, V), new state). State is only advanced if the segment is complete.
    """
    N = tokens.shape[1]
    assert 1 <= N <= cfg["segment_len"]
    complete = N == cfg["segment_len"]
    eps = cfg["norm_eps"]
    x = params["embed.weight"][tokens]                                       # (B, N, D)
    new_state = []
    for i in range(cfg["n_layers"]):
        p = "blocks.%d." % i
        a, st = attention(params, cfg, i, rms_norm(x, params[p + "attn_norm.weight"], eps),
                          state[i], complete)
        x = x + a                                                            # (B, N, D)
        h = rms_norm(x, params[p + "mlp_norm.weight"], eps)                  # (B, N, D)
        x = x + mlp(h, params[p + "mlp.gate_up_proj.weight"], params[p + "mlp.down_proj.weight"])
        new_state.append(st)
    head = params["embed.weight"] if cfg["tie_embeddings"] else params["lm_head.weight"]  # (V, D)
    logits = rms_norm(x, params["norm.weight"], eps) @ head.t()              # (B, N, V)
    return logits, new_state


def forward(params, cfg, tokens, state=None):
    """Whole sequence, cut into segments of segment_len aligned to its start. tokens (B, T) int64.

    state: from init_state / a previous call that ended on a segment boundary (None = fresh).
    Returns (logits (B, T, V), state). If T is not a multiple of segment_len, the trailing partial
    segment gets its logits but is not written to the state (the returned state is the one after
    the last complete segment).
    """
    B, T = tokens.shape
    if state is None:
        state = init_state(cfg, B, params["embed.weight"].dtype)
    Nseg = cfg["segment_len"]
    outs = []
    for s in range(0, T, Nseg):
        logits, state = forward_segment(params, cfg, tokens[:, s: s + Nseg], state)
        outs.append(logits)
    return torch.cat(outs, dim=1), state                                     # (B, T, V)


def loss_fn(logits, targets):
    """Mean cross-entropy. logits (B, T, V), targets (B, T) int64 -> scalar."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))


# ----------------------------------------------------------------------------------------------
# random parameters for golden files

def random_params(cfg, seed, dtype):
    """Seeded random parameters: drawn in float64 (in param_shapes order), then cast to dtype.

    matrices ~ randn * 0.5/sqrt(fan_in); embed and lm_head ~ randn * 0.5;
    norm weights 1 + 0.1*randn; gate ~ randn.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params = {}
    for name, shape in param_shapes(cfg):
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name in ("embed.weight", "lm_head.weight"):
            t = r * 0.5
        elif name.endswith("norm.weight"):
            t = 1.0 + 0.1 * r
        elif name.endswith("attn.gate"):
            t = r
        else:
            t = r * (0.5 / math.sqrt(shape[1]))
        params[name] = t.to(dtype)
    return params
