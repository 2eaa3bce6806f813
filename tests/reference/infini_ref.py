"""Independent Python reference of the infini model, written from docs/MODEL.md.

Plain functions over a dict of parameter tensors (name -> tensor, names as in MODEL.md's table).
Written for clarity, not speed: one segment at a time in a Python loop, one layer after another.

Shape letters: B batch, T tokens, N tokens in the current segment, L cache length (xl, knn),
Fm rows of the kNN memory (knn), kq keys one kNN query retrieves, p rows of the recurrent memory
(rmt_tokens), D d_model, H n_heads, dk d_key, dv d_value, F d_ff, V vocab_size; Mixture-of-Depths:
n tokens of the segment in this call, k tokens a routed block selects (per batch row), P
mod_predictor_hidden.

The computation dtype is the dtype of the parameters (float64 or float32; bfloat16 is accepted
but is not a parity target). M and z are kept in float64 when computing in float64, else float32.
The recurrent memory R of rmt (rows of the residual stream) is kept in the computation dtype.
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
    "mod_every": 0,
    "mod_capacity": 0.125,
    "mod_router": "raw",
    "mod_predictor": "router",
    "mod_aux_weight": 0.01,
    "mod_predictor_hidden": 64,
    "memory_key_shift": False,
    "qk_conv": 0,
    # knn only: make_config drops these from a config of another mode (where giving one is an error)
    "knn_tokens": 65536,
    "knn_top_k": 32,
    "knn_layer": -1,
    # rmt only: make_config drops it from a config of another mode (where giving it is an error)
    "rmt_tokens": 16,
}

MEMORY_MODES = ("infini-linear", "infini-delta", "none", "xl", "knn", "rmt")
KNN_FIELDS = ("knn_tokens", "knn_top_k", "knn_layer")
RMT_FIELDS = ("rmt_tokens",)
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
MOD_ROUTERS = ("raw", "sigmoid")
MOD_PREDICTORS = ("router", "mlp")
# how a routed block selects its tokens; chosen by the caller, not by the config (MODEL.md)
ROUTINGS = ("topk", "causal")


class ConfigError(ValueError):
    pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def make_config(user):
    """Fill defaults and validate. Unknown fields are an error. Returns a new dict.

    The knn_* fields are allowed in knn configs only, and the result holds them only for knn;
    likewise rmt_tokens for rmt."""
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
    need(_is_int(cfg["mod_every"]) and cfg["mod_every"] >= 0, "mod_every must be an int >= 0")
    need(_is_num(cfg["mod_capacity"]) and 0 < cfg["mod_capacity"] <= 1,
         "mod_capacity must be a number in (0, 1]")
    need(cfg["mod_router"] in MOD_ROUTERS, "mod_router must be one of %s" % ", ".join(MOD_ROUTERS))
    need(cfg["mod_predictor"] in MOD_PREDICTORS,
         "mod_predictor must be one of %s" % ", ".join(MOD_PREDICTORS))
    need(_is_num(cfg["mod_aux_weight"]) and cfg["mod_aux_weight"] >= 0,
         "mod_aux_weight must be a finite number >= 0")
    need(_is_int(cfg["mod_predictor_hidden"]) and cfg["mod_predictor_hidden"] >= 1,
         "mod_predictor_hidden must be an int >= 1")
    need(isinstance(cfg["memory_key_shift"], bool), "memory_key_shift must be a bool")
    need(not cfg["memory_key_shift"] or cfg["memory"] in ("infini-linear", "infini-delta"),
         "memory_key_shift needs memory infini-linear or infini-delta")
    need(_is_int(cfg["qk_conv"]) and (cfg["qk_conv"] == 0 or 2 <= cfg["qk_conv"] <= 8),
         "qk_conv must be 0 or an int in 2..8")
    need(not (cfg["qk_conv"] and cfg["memory_key_shift"]), "qk_conv and memory_key_shift exclude each other")
    if cfg["memory"] == "knn":
        need(_is_int(cfg["knn_tokens"]) and 1 <= cfg["knn_tokens"] <= 2 ** 24,
             "knn_tokens must be an int in 1..2^24")
        need(_is_int(cfg["knn_top_k"]) and 1 <= cfg["knn_top_k"] <= 4096,
             "knn_top_k must be an int in 1..4096")
        need(_is_int(cfg["knn_layer"]) and -1 <= cfg["knn_layer"] <= cfg["n_layers"] - 1,
             "knn_layer must be an int in -1..n_layers-1")
        need(cfg["mod_every"] == 0, "memory knn needs mod_every 0 (knn models are dense)")
        need(cfg["qk_conv"] == 0, "memory knn excludes qk_conv")
    else:
        given = [k for k in KNN_FIELDS if k in user]
        need(not given, "%s only allowed with memory knn" % ", ".join(given))
        for k in KNN_FIELDS:
            del cfg[k]
    if cfg["memory"] == "rmt":
        need(_is_int(cfg["rmt_tokens"]) and 1 <= cfg["rmt_tokens"] <= 4096,
             "rmt_tokens must be an int in 1..4096")
        need(cfg["segment_len"] + 2 * cfg["rmt_tokens"] <= 16384,
             "segment_len + 2 rmt_tokens must be at most 16384 (a segment runs as that many rows)")
        need(cfg["mod_every"] == 0, "memory rmt needs mod_every 0 (rmt models are dense)")
        need(cfg["qk_conv"] == 0, "memory rmt excludes qk_conv")
    else:
        given = [k for k in RMT_FIELDS if k in user]
        need(not given, "%s only allowed with memory rmt" % ", ".join(given))
        for k in RMT_FIELDS:
            del cfg[k]
    for k in ("gate_init", "rope_theta", "norm_eps", "memory_eps", "init_std", "mod_capacity",
              "mod_aux_weight"):
        cfg[k] = float(cfg[k])
    return cfg


def load_config(path):
    with open(path) as f:
        return make_config(json.load(f))


def load_model(model_dir):
    """A model folder's config and weights in fp32: (cfg, {name: tensor}). OSError, ValueError or
    KeyError when it is not one."""
    import os
    import safetensors_io
    cfg = load_config(os.path.join(model_dir, "config.json"))
    tensors, _ = safetensors_io.load_file(os.path.join(model_dir, "model.safetensors"))
    return cfg, {k: v.float() for k, v in tensors.items()}


def is_infini(cfg):
    return cfg["memory"] in ("infini-linear", "infini-delta")


def knn_block(cfg):
    """The block with the kNN memory (knn mode): knn_layer, where -1 is the one before the last
    (block 0 in a one-block model). None in other modes."""
    if cfg["memory"] != "knn":
        return None
    if cfg["knn_layer"] >= 0:
        return cfg["knn_layer"]
    return max(cfg["n_layers"] - 2, 0)


def is_routed(cfg, i):
    """Whether block i (0-based) is a Mixture-of-Depths block: mod_every 2 routes blocks 1, 3, ..."""
    return cfg["mod_every"] > 0 and (i + 1) % cfg["mod_every"] == 0


def topk_count(cfg, n):
    """k = min(n, max(1, ceil(mod_capacity * n - 1e-6))), in float64 (a Python float).

    The -1e-6 keeps a product that should be a whole number but rounds just above it (1/91 * 273 =
    3.0000000000000004) from taking one token too many."""
    return min(n, max(1, math.ceil(cfg["mod_capacity"] * n - 1e-6)))


# ----------------------------------------------------------------------------------------------
# parameters

def param_shapes(cfg):
    """Ordered list of (name, shape) for every parameter, in MODEL.md table order, except that a
    routed block's router and predictor follow its own down_proj (random_params draws in this order,
    so a dense config draws exactly what it drew before Mixture-of-Depths existed)."""
    D, H, dk, dv = cfg["d_model"], cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    Fh, V = cfg["d_ff"], cfg["vocab_size"]
    out = [("embed.weight", (V, D))]
    if cfg["memory"] == "rmt":
        out.append(("rmt_memory", (cfg["rmt_tokens"], D)))
    for i in range(cfg["n_layers"]):
        p = "blocks.%d." % i
        out.append((p + "attn_norm.weight", (D,)))
        out.append((p + "attn.qkv_proj.weight", (H * dk + H * dk + H * dv, D)))
        out.append((p + "attn.out_proj.weight", (D, H * dv)))
        if is_infini(cfg) or i == knn_block(cfg):
            out.append((p + "attn.gate", (H,)))
        if i == knn_block(cfg):
            out.append((p + "attn.knn_log_scale", (H,)))
        if cfg["memory_key_shift"]:
            out.append((p + "attn.key_shift", (H,)))
        if cfg["qk_conv"]:
            out.append((p + "attn.q_conv", (H, dk, cfg["qk_conv"])))
            out.append((p + "attn.k_conv", (H, dk, cfg["qk_conv"])))
        out.append((p + "mlp_norm.weight", (D,)))
        out.append((p + "mlp.gate_up_proj.weight", (2 * Fh, D)))
        out.append((p + "mlp.down_proj.weight", (D, Fh)))
        if is_routed(cfg, i):
            P = cfg["mod_predictor_hidden"]
            out.append((p + "router.weight", (1, D)))
            out.append((p + "predictor.hidden.weight", (P, D)))
            out.append((p + "predictor.hidden.bias", (P,)))
            out.append((p + "predictor.out.weight", (1, P)))
            out.append((p + "predictor.out.bias", (1,)))
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


def written_keys(k, shift):
    """The keys a segment is written into the memory with (MODEL.md, memory_key_shift).

    k (B, H, N, dk) un-rotated, in segment order; shift (H,) logits or None (then k itself).
    K'_t = (1 - s_h) K_t + s_h K_{t-1}, s_h = sigmoid(shift_h); the first key has no predecessor and
    stays as it is.
    """
    if shift is None:
        return k
    s = torch.sigmoid(shift).view(1, -1, 1, 1)               # (1, H, 1, 1)
    before = torch.cat([k[:, :, :1], k[:, :, :-1]], dim=2)    # (B, H, N, dk): K_{t-1}
    return (1.0 - s) * k + s * before                         # (B, H, N, dk)


def short_conv(x, tail, taps):
    """qk_conv (MODEL.md): out_t = sum_j taps[h, c, j] * x_{t-j}, per head h and channel c, where the
    rows before x are those of tail (the last W-1 raw rows the layer saw, oldest first).

    x (B, H, n, d) raw rows; tail (B, H, W-1, d); taps (H, d, W).
    Returns (out (B, H, n, d), new tail (B, H, W-1, d): the last W-1 rows of tail then x).
    Written as a grouped conv1d (a cross-correlation, hence the flipped taps), one group per channel.
    """
    B, H, n, d = x.shape
    W = taps.shape[-1]
    seq = torch.cat([tail, x], dim=2)                                 # (B, H, W-1+n, d)
    flat = seq.permute(0, 1, 3, 2).reshape(B, H * d, W - 1 + n)       # (B, H*d, W-1+n)
    weight = taps.flip(-1).reshape(H * d, 1, W)                       # (H*d, 1, W)
    out = F.conv1d(flat, weight, groups=H * d)                        # (B, H*d, n)
    out = out.view(B, H, d, n).permute(0, 1, 3, 2)                    # (B, H, n, d)
    return out, seq[:, :, n:]                                         # (B, H, W-1, d)


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


def normalize(x):
    """x / max(|x|_2, 1e-12) over the last dim (a head's channels). x (..., d) -> (..., d)"""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def knn_read(q, k_mem, v_mem, log_scale, top_k):
    """The kNN memory's read (MODEL.md "kNN memory"), exact top-k over a full score matrix.

    q (B, H, N, dk) un-rotated queries; k_mem (B, H, Fm, dk) normalised keys; v_mem (B, H, Fm, dv);
    log_scale (H,) lambda; top_k knn_top_k.
    A_knn[t] = sum_{j in I_t} softmax_j(exp(lambda_h) s_tj) V_mem_j, s_tj = normalize(Q_t) . K_mem_j,
    I_t the min(top_k, Fm) rows with the highest s_tj. An empty memory (Fm = 0) reads as exactly 0.
    -> (B, H, N, dv)
    """
    B, H, N, _ = q.shape
    Fm, dv = k_mem.shape[-2], v_mem.shape[-1]
    if Fm == 0:
        return torch.zeros(B, H, N, dv, dtype=q.dtype)                # (B, H, N, dv)
    kq = min(top_k, Fm)
    scores = normalize(q) @ k_mem.transpose(-1, -2)                  # (B, H, N, Fm) cosines
    top, idx = torch.topk(scores, kq, dim=-1)                         # (B, H, N, kq) each
    scale = torch.exp(log_scale).view(1, H, 1, 1)                     # (1, H, 1, 1)
    probs = torch.softmax(scale * top, dim=-1)                        # (B, H, N, kq)
    # the retrieved values: row idx[b, h, t, j] of v_mem[b, h]
    picked = torch.gather(v_mem.unsqueeze(2).expand(B, H, N, Fm, dv), 3,
                          idx.unsqueeze(-1).expand(B, H, N, kq, dv))  # (B, H, N, kq, dv)
    return (probs.unsqueeze(-1) * picked).sum(dim=3)                  # (B, H, N, dv)


def knn_write(k_mem, v_mem, k, v, capacity):
    """Append a finished segment to the kNN memory and keep the last `capacity` rows, oldest first.

    k_mem (B, H, Fm, dk), v_mem (B, H, Fm, dv); k (B, H, N, dk) un-rotated (normalised here);
    v (B, H, N, dv). The memory carries no gradient. -> (k_mem (B, H, Fm', dk), v_mem (B, H, Fm', dv))
    with Fm' = min(capacity, Fm + N).
    """
    k_all = torch.cat([k_mem, normalize(k).detach()], dim=-2)        # (B, H, Fm + N, dk)
    v_all = torch.cat([v_mem, v.detach()], dim=-2)                    # (B, H, Fm + N, dv)
    keep = min(capacity, k_all.shape[-2])
    return k_all[:, :, -keep:], v_all[:, :, -keep:]


# ----------------------------------------------------------------------------------------------
# state

def state_dtype(compute_dtype):
    return torch.float64 if compute_dtype == torch.float64 else torch.float32


class State(list):
    """A model's state: a list with one dict per block (the per-layer state, see init_state), plus
    the model-level state of rmt, rmt_memory: R (B, p, D), what the last complete segment wrote, or
    None while no segment has ended (the segment then reads the learned parameter rmt_memory). R
    keeps its autograd history. rmt_memory is None in every other mode."""

    def __init__(self, layers, rmt_memory=None):
        super().__init__(layers)
        self.rmt_memory = rmt_memory


def init_state(cfg, batch, compute_dtype):
    """A fresh State. Per-layer state: infini -> {"M": zeros (B,H,dk,dv), "z": zeros (B,H,dk)};
    xl -> {"xl_k": None, "xl_v": None} (empty cache); none and rmt -> {};
    knn -> the xl cache in every block, and in the kNN block also the empty kNN memory
    {"knn_k": (B,H,0,dk), "knn_v": (B,H,0,dv)} (in the computation dtype, like the cache).

    A routed xl block keeps its cache per batch row, because rows select different numbers of
    tokens in causal routing: {"xl_k": [B entries], "xl_v": [...], "xl_pos": [...]}, entry b being
    None (no cache yet) or (1, H, L_b, dk) / (1, H, L_b, dv) / list of L_b positions in the segment
    the cache came from. Routed infini blocks keep M and z batched as above (sliced per row).
    The model-level memory of rmt starts as None: the first segment reads rmt_memory."""
    B, H, dk, dv = batch, cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    sd = state_dtype(compute_dtype)
    layers = []
    for i in range(cfg["n_layers"]):
        if is_infini(cfg):
            layers.append({"M": torch.zeros(B, H, dk, dv, dtype=sd), "z": torch.zeros(B, H, dk, dtype=sd)})
        elif cfg["memory"] == "xl" and is_routed(cfg, i):
            layers.append({"xl_k": [None] * B, "xl_v": [None] * B, "xl_pos": [None] * B})
        elif cfg["memory"] in ("xl", "knn"):
            layers.append({"xl_k": None, "xl_v": None})
        else:
            layers.append({})
        if i == knn_block(cfg):
            layers[-1]["knn_k"] = torch.zeros(B, H, 0, dk, dtype=compute_dtype)   # (B, H, 0, dk)
            layers[-1]["knn_v"] = torch.zeros(B, H, 0, dv, dtype=compute_dtype)   # (B, H, 0, dv)
        if cfg["qk_conv"]:
            # the raw Q and K rows before the first token: zeros (the convolution's padding)
            for key in ("conv_q", "conv_k"):
                layers[-1][key] = torch.zeros(B, H, cfg["qk_conv"] - 1, dk, dtype=compute_dtype)
    return State(layers)


def stacked_state(state):
    """The state with every routed xl block's per-row cache stacked into (B, H, L, dk) / (B, H, L, dv)
    tensors and its positions dropped, like a dense block's. Only possible when every row has the
    same cache length (always so after a complete segment in top-k routing). None caches stay None.
    The model-level rmt memory (if any) is kept as it is."""
    out = []
    for st in state:
        st2 = {}
        for key, t in st.items():
            if key == "xl_pos":
                continue
            if isinstance(t, list):
                if all(e is None for e in t):
                    t = None
                else:
                    lens = set(e.shape[-2] for e in t)
                    if len(lens) != 1:
                        raise ValueError("rows have xl caches of different lengths %s" % sorted(lens))
                    t = torch.cat(t, dim=0)                                  # (B, H, L, dk|dv)
            st2[key] = t
        out.append(st2)
    return State(out, getattr(state, "rmt_memory", None))


# ----------------------------------------------------------------------------------------------
# model

def attention(params, cfg, i, x, layer_state, complete):
    """Attention of block i over one segment. x (B, N, D) (already normed; in rmt mode the N rows
    are the segment's rows [R; tokens; R], at positions 0..N-1).

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
    if cfg["qk_conv"]:
        # the convolved rows are the queries and keys from here on; the tails run on across the
        # segment boundary (kept, like M and z, only once the segment is complete)
        q, tail_q = short_conv(q, layer_state["conv_q"], params[p + "q_conv"])
        k, tail_k = short_conv(k, layer_state["conv_k"], params[p + "k_conv"])
        if complete:
            new_state["conv_q"], new_state["conv_k"] = tail_q, tail_k
    if cfg["memory"] in ("xl", "knn"):
        a_dot = local_attention(q, k, v, layer_state["xl_k"], layer_state["xl_v"], cfg["rope_theta"])
        a = a_dot                                                            # (B, H, N, dv)
        if i == knn_block(cfg):
            # kNN read with the memory as it was before this segment, un-rotated Q; gated like
            # the compressive memory's read
            a_knn = knn_read(q, layer_state["knn_k"], layer_state["knn_v"], params[p + "knn_log_scale"],
                             cfg["knn_top_k"])                               # (B, H, N, dv)
            g = torch.sigmoid(params[p + "gate"]).view(1, H, 1, 1)           # (1, H, 1, 1)
            a = g * a_knn + (1.0 - g) * a_dot                                # (B, H, N, dv)
            if complete:
                new_state["knn_k"], new_state["knn_v"] = knn_write(
                    layer_state["knn_k"], layer_state["knn_v"], k, v, cfg["knn_tokens"])
        if complete:
            new_state["xl_k"] = k.detach()                                   # (B, H, N, dk) un-rotated
            new_state["xl_v"] = v.detach()                                   # (B, H, N, dv)
    elif cfg["memory"] in ("none", "rmt"):
        # rmt: x holds the segment's rows [R; tokens; R], all ordinary rows here (no gate, no
        # other memory: the recurrent memory lives in the rows themselves)
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
            kw = written_keys(k, params.get(p + "key_shift"))              # (B, H, N, dk)
            M_new, z_new = memory_write(sigma(kw).to(sd), v.to(sd), M, z, eps,
                                        delta=(cfg["memory"] == "infini-delta"))
            new_state["M"], new_state["z"] = M_new, z_new
    a = a.transpose(1, 2).reshape(B, N, H * dv)                              # (B, N, H*dv) head-major
    return a @ params[p + "out_proj.weight"].t(), new_state                  # (B, N, D)


# ----------------------------------------------------------------------------------------------
# Mixture-of-Depths (MODEL.md "Mixture-of-Depths routing"). Routed blocks work on one batch row at
# a time: in causal routing rows select different numbers of tokens, and a per-row loop is the
# plainest way to say "attention over the selected tokens alone". Written separately from the dense
# path above (not by generalising it) so that dense results stay bit-identical to before.

def local_attention_at(q, k, v, pos, k_cache, v_cache, cache_pos, theta):
    """Causal softmax attention among tokens at arbitrary (increasing) positions, plus a cache.

    q, k (B, H, k, dk) un-rotated; v (B, H, k, dv); pos: list of k ints, the tokens' positions in
    their segment (RoPE uses these, not the index in the selection);
    k_cache (B, H, L, dk) un-rotated or None; v_cache (B, H, L, dv) or None; cache_pos: list of L
    ints (negative: the previous segment's positions minus segment_len). Every cache key is visible.
    -> (B, H, k, dv)
    """
    dk = q.shape[-1]
    qr = rope(q, pos, theta)                                          # (B, H, k, dk)
    kr = rope(k, pos, theta)                                          # (B, H, k, dk)
    scale = 1.0 / math.sqrt(dk)
    scores = (qr @ kr.transpose(-1, -2)) * scale                      # (B, H, k, k)
    pt = torch.tensor(list(pos), dtype=torch.int64)                   # (k,)
    visible = pt[None, :] <= pt[:, None]                              # (k, k) key pos <= query pos
    scores = scores.masked_fill(~visible, float("-inf"))
    values = v
    if k_cache is not None:
        kcr = rope(k_cache, cache_pos, theta)                         # (B, H, L, dk)
        s_cache = (qr @ kcr.transpose(-1, -2)) * scale                # (B, H, k, L)
        scores = torch.cat([s_cache, scores], dim=-1)                 # (B, H, k, L + k)
        values = torch.cat([v_cache, v], dim=-2)                      # (B, H, L + k, dv)
    probs = torch.softmax(scores, dim=-1)                             # (B, H, k, L + k)
    return probs @ values                                             # (B, H, k, dv)


def attention_selected(params, cfg, i, x, pos, row_state, complete):
    """Attn_S of block i for ONE batch row: x (1, k, D) the normed selected rows, pos their k
    positions in the segment (k >= 1). row_state: this row's slice of the layer state
    (infini: M (1,H,dk,dv), z (1,H,dk); xl: xl_k (1,H,L,dk) or None, xl_v, xl_pos).

    Returns (out (1, k, D), new row state). Only the selected tokens read the memory, and only
    their K and V are written (infini) or cached (xl), once the segment is complete.
    """
    B, k, _ = x.shape
    H, dk, dv = cfg["n_heads"], cfg["d_key"], cfg["d_value"]
    theta = cfg["rope_theta"]
    p = "blocks.%d.attn." % i
    qkv = x @ params[p + "qkv_proj.weight"].t()                              # (1, k, 2*H*dk + H*dv)
    q = qkv[..., : H * dk].view(B, k, H, dk).transpose(1, 2)                 # (1, H, k, dk)
    kk = qkv[..., H * dk: 2 * H * dk].view(B, k, H, dk).transpose(1, 2)      # (1, H, k, dk)
    v = qkv[..., 2 * H * dk:].view(B, k, H, dv).transpose(1, 2)              # (1, H, k, dv)

    new_state = dict(row_state)
    if cfg["qk_conv"]:
        # along the selected tokens: the tails hold the last tokens this block took
        q, tail_q = short_conv(q, row_state["conv_q"], params[p + "q_conv"])
        kk, tail_k = short_conv(kk, row_state["conv_k"], params[p + "k_conv"])
        if complete:
            new_state["conv_q"], new_state["conv_k"] = tail_q, tail_k
    if cfg["memory"] == "xl":
        kc, vc = row_state["xl_k"], row_state["xl_v"]                        # (1,H,L,dk), (1,H,L,dv)
        cpos = None
        if kc is not None:
            # the previous segment's selected tokens sit at their own positions minus segment_len
            cpos = [t - cfg["segment_len"] for t in row_state["xl_pos"]]
        a = local_attention_at(q, kk, v, pos, kc, vc, cpos, theta)           # (1, H, k, dv)
        if complete:
            new_state["xl_k"] = kk.detach()                                  # (1, H, k, dk) un-rotated
            new_state["xl_v"] = v.detach()                                   # (1, H, k, dv)
            new_state["xl_pos"] = list(pos)
    elif cfg["memory"] == "none":
        a = local_attention_at(q, kk, v, pos, None, None, None, theta)       # (1, H, k, dv)
    else:
        M, z = row_state["M"], row_state["z"]                                # (1,H,dk,dv), (1,H,dk)
        sd, eps = M.dtype, cfg["memory_eps"]
        a_mem = memory_read(sigma(q).to(sd), M, z, eps).to(x.dtype)          # (1, H, k, dv)
        a_dot = local_attention_at(q, kk, v, pos, None, None, None, theta)   # (1, H, k, dv)
        g = torch.sigmoid(params[p + "gate"]).view(1, H, 1, 1)               # (1, H, 1, 1)
        a = g * a_mem + (1.0 - g) * a_dot                                    # (1, H, k, dv)
        if complete:
            kw = written_keys(kk, params.get(p + "key_shift"))             # (1, H, k, dk)
            M_new, z_new = memory_write(sigma(kw).to(sd), v.to(sd), M, z, eps,
                                        delta=(cfg["memory"] == "infini-delta"))
            new_state["M"], new_state["z"] = M_new, z_new                    # (1,H,dk,dv), (1,H,dk)
    a = a.transpose(1, 2).reshape(B, k, H * dv)                              # (1, k, H*dv) head-major
    return a @ params[p + "out_proj.weight"].t(), new_state                  # (1, k, D)


def router_logits(params, i, x):
    """r and p of routed block i. x (B, n, D) the block input (not normed) -> r (B, n), p (B, n).

    p reads sg(x): its BCE term trains the predictor alone, never the blocks below it."""
    pre = "blocks.%d." % i
    r = (x @ params[pre + "router.weight"].t()).squeeze(-1)                  # (B, n)
    hid = F.silu(x.detach() @ params[pre + "predictor.hidden.weight"].t()
                 + params[pre + "predictor.hidden.bias"])                    # (B, n, P)
    p = (hid @ params[pre + "predictor.out.weight"].t()
         + params[pre + "predictor.out.bias"]).squeeze(-1)                   # (B, n)
    return r, p


def topk_select(cfg, r_row):
    """The top-k selection of one row: r_row (n,) -> sorted list of the k positions with the largest
    r. Ties (not expected with real-valued logits) go to the earlier position."""
    n = r_row.shape[0]
    vals = r_row.detach().tolist()                                           # exact (float64)
    order = sorted(range(n), key=lambda t: (-vals[t], t))
    return sorted(order[: topk_count(cfg, n)])


def causal_select(cfg, r_row, p_row):
    """Causal selection of one row: each token on its own, r > 0 (router) or p > 0 (mlp)."""
    l_row = r_row if cfg["mod_predictor"] == "router" else p_row             # (n,)
    return [t for t, v in enumerate(l_row.detach().tolist()) if v > 0]


def _row_state(cfg, layer_state, b):
    """Batch row b of a routed block's layer state, as attention_selected takes it."""
    row = {}
    if is_infini(cfg):
        row = {"M": layer_state["M"][b:b + 1], "z": layer_state["z"][b:b + 1]}  # (1,H,dk,dv), (1,H,dk)
    elif cfg["memory"] == "xl":
        row = {key: layer_state[key][b] for key in ("xl_k", "xl_v", "xl_pos")}
    if cfg["qk_conv"]:
        row.update({key: layer_state[key][b:b + 1] for key in ("conv_q", "conv_k")})  # (1,H,W-1,dk)
    return row


def routed_block(params, cfg, i, x, layer_state, complete, routing):
    """Routed block i over one segment. x (B, n, D) the block input.

    Returns (x_out (B, n, D), new layer state, route) with route = {
      "sel": (B, n) bool, the tokens this block ran on (the routing asked for);
      "y":   (B, n) float 0/1, top-k membership under these r (the aux target; equal to sel in
             top-k routing, computed for information only in causal routing);
      "r":   (B, n) router logits; "p": (B, n) predictor logits }.
    """
    assert routing in ROUTINGS, routing
    B, n, D = x.shape
    pre = "blocks.%d." % i
    eps = cfg["norm_eps"]
    r, p = router_logits(params, i, x)                                       # (B, n), (B, n)
    y = torch.zeros(B, n, dtype=x.dtype)                                     # (B, n)
    sel = torch.zeros(B, n, dtype=torch.bool)                                # (B, n)
    rows, row_states = [], []
    for b in range(B):
        top = topk_select(cfg, r[b])
        y[b, top] = 1.0
        S = top if routing == "topk" else causal_select(cfg, r[b], p[b])    # sorted positions
        sel[b, S] = True
        st_b = _row_state(cfg, layer_state, b)
        xb = x[b]                                                            # (n, D)
        if not S:
            # no token runs the block: x unchanged; nothing read or written. The xl cache of a
            # complete segment becomes this segment's (empty) selection.
            if complete and cfg["memory"] == "xl":
                H, dk, dv = cfg["n_heads"], cfg["d_key"], cfg["d_value"]
                st_b = dict(st_b, xl_k=torch.zeros(1, H, 0, dk, dtype=x.dtype),  # (1, H, 0, dk)
                            xl_v=torch.zeros(1, H, 0, dv, dtype=x.dtype),       # (1, H, 0, dv)
                            xl_pos=[])
            rows.append(xb)
            row_states.append(st_b)
            continue
        idx = torch.tensor(S, dtype=torch.int64)                             # (k,)
        X = xb[idx].unsqueeze(0)                                             # (1, k, D)
        a, st_b = attention_selected(params, cfg, i, rms_norm(X, params[pre + "attn_norm.weight"], eps),
                                     S, st_b, complete)                      # (1, k, D)
        h = X + a                                                            # (1, k, D)
        hn = rms_norm(h, params[pre + "mlp_norm.weight"], eps)               # (1, k, D)
        # f: the block's residual update without X itself (the attention and MLP parts together)
        f = h + mlp(hn, params[pre + "mlp.gate_up_proj.weight"], params[pre + "mlp.down_proj.weight"]) - X  # (1, k, D)
        rs = r[b, idx]                                                       # (k,)
        w = rs if cfg["mod_router"] == "raw" else torch.sigmoid(rs)          # (k,)
        upd = X + w.view(1, -1, 1) * f                                       # (1, k, D)
        rows.append(xb.index_copy(0, idx, upd[0]))                           # (n, D) others unchanged
        row_states.append(st_b)
    x_out = torch.stack(rows, dim=0)                                         # (B, n, D)
    if is_infini(cfg):
        new_state = {"M": torch.cat([s["M"] for s in row_states], dim=0),    # (B, H, dk, dv)
                     "z": torch.cat([s["z"] for s in row_states], dim=0)}    # (B, H, dk)
    elif cfg["memory"] == "xl":
        new_state = {key: [s[key] for s in row_states] for key in ("xl_k", "xl_v", "xl_pos")}
    else:
        new_state = {}
    if cfg["qk_conv"]:
        for key in ("conv_q", "conv_k"):
            new_state[key] = torch.cat([s[key] for s in row_states], dim=0)  # (B, H, W-1, dk)
    return x_out, new_state, {"sel": sel, "y": y, "r": r, "p": p}


# ----------------------------------------------------------------------------------------------
# whole model

def rmt_read_memory(params, state, batch):
    """R (B, p, D), the recurrent memory a segment of an rmt model reads: what the previous segment
    wrote, or the learned rmt_memory (the same for every batch row) for a sequence's first segment.
    state must be a State (a plain list has no model-level memory)."""
    R = state.rmt_memory
    if R is None:
        R = params["rmt_memory"].unsqueeze(0).expand(batch, -1, -1)         # (B, p, D)
    return R


def forward_segment(params, cfg, tokens, state, routing="topk", with_routes=False):
    """One segment (N <= segment_len tokens, starting at a segment boundary). tokens (B, N) int64.

    routing: "topk" or "causal", how routed blocks select tokens (ignored by dense configs).
    Returns (logits (B, N, V), new State), and with with_routes also routes: {i: route of
    routed_block} for every routed block i. State is only advanced if the segment is complete.

    rmt (MODEL.md "Recurrent memory"): the blocks run on the rows [R; tokens; R] (p read rows, the N
    tokens, p write rows), causal over all rows, at positions 0..N+2p-1; the logits are the token
    rows'; the last block's output at the write rows (before the final RMSNorm) is the next R. A
    partial segment runs [R; tokens] only: its write rows would run with its last token, which has
    not come, so it writes nothing.
    """
    assert routing in ROUTINGS, routing
    B, N = tokens.shape
    assert 1 <= N <= cfg["segment_len"]
    complete = N == cfg["segment_len"]
    eps = cfg["norm_eps"]
    x = params["embed.weight"][tokens]                                       # (B, N, D)
    rmt = cfg["memory"] == "rmt"
    if rmt:
        n_mem = cfg["rmt_tokens"]                                            # p
        R = rmt_read_memory(params, state, B)                                # (B, p, D)
        # the same R twice: read rows before the tokens, write rows after them
        x = torch.cat([R, x, R] if complete else [R, x], dim=1)              # (B, p + N [+ p], D)
    new_state = []
    routes = {}
    for i in range(cfg["n_layers"]):
        if is_routed(cfg, i):
            x, st, routes[i] = routed_block(params, cfg, i, x, state[i], complete, routing)  # (B, N, D)
            new_state.append(st)
            continue
        p = "blocks.%d." % i
        a, st = attention(params, cfg, i, rms_norm(x, params[p + "attn_norm.weight"], eps),
                          state[i], complete)
        x = x + a                                                            # (B, N, D)
        h = rms_norm(x, params[p + "mlp_norm.weight"], eps)                  # (B, N, D)
        x = x + mlp(h, params[p + "mlp.gate_up_proj.weight"], params[p + "mlp.down_proj.weight"])
        new_state.append(st)
    new_rmt = None
    if rmt:
        # the write: the residual stream at the write rows, before the final RMSNorm, with its
        # autograd history (not detached); a partial segment leaves the state's memory as it was
        new_rmt = x[:, n_mem + N:] if complete else state.rmt_memory        # (B, p, D) or None
        x = x[:, n_mem: n_mem + N]                                           # (B, N, D) token rows
    new_state = State(new_state, new_rmt)
    head = params["embed.weight"] if cfg["tie_embeddings"] else params["lm_head.weight"]  # (V, D)
    logits = rms_norm(x, params["norm.weight"], eps) @ head.t()              # (B, N, V)
    if with_routes:
        return logits, new_state, routes
    return logits, new_state


def concat_routes(seg_routes):
    """Join per-segment routes ({i: {key: (B, n_s)}}, one per segment) along tokens: {i: {key: (B, T)}}."""
    if not seg_routes:
        return {}
    return {i: {key: torch.cat([rt[i][key] for rt in seg_routes], dim=1) for key in seg_routes[0][i]}
            for i in seg_routes[0]}


def forward(params, cfg, tokens, state=None, routing="topk", with_routes=False):
    """Whole sequence, cut into segments of segment_len aligned to its start. tokens (B, T) int64.

    state: a State from init_state / a previous call that ended on a segment boundary (None = fresh).
    Returns (logits (B, T, V), state) [, routes {i: {"sel", "y", "r", "p": (B, T)}} with
    with_routes]. If T is not a multiple of segment_len, the trailing partial segment gets its
    logits but is not written to the state (the returned state is the one after the last complete
    segment).
    """
    B, T = tokens.shape
    if state is None:
        state = init_state(cfg, B, params["embed.weight"].dtype)
    Nseg = cfg["segment_len"]
    outs, seg_routes = [], []
    for s in range(0, T, Nseg):
        logits, state, rt = forward_segment(params, cfg, tokens[:, s: s + Nseg], state, routing,
                                            with_routes=True)
        outs.append(logits)
        seg_routes.append(rt)
    logits = torch.cat(outs, dim=1)                                          # (B, T, V)
    if with_routes:
        return logits, state, concat_routes(seg_routes)
    return logits, state


def loss_fn(logits, targets):
    """Mean cross-entropy. logits (B, T, V), targets (B, T) int64 -> scalar."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))


def bce_with_logits(l, y):
    """BCE(l, y) = -(y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))), elementwise; log(1 -
    sigmoid(l)) written as logsigmoid(-l) (the same value, without cancellation)."""
    return -(y * F.logsigmoid(l) + (1.0 - y) * F.logsigmoid(-l))


def mod_aux_losses(routes):
    """(mean BCE(r, y), mean BCE(p, y)), each mean over all routed (block, row, token) decisions
    in routes (one forward pass: every routed block, every segment). routes must come from top-k
    routing: causal routing has no aux loss. Returns (None, None) without routed blocks."""
    if not routes:
        return None, None
    for i, rt in routes.items():
        if not torch.equal(rt["sel"], rt["y"] > 0):
            raise ValueError("block %d: routes are not from top-k routing (no aux loss)" % i)
    r = torch.cat([routes[i]["r"].reshape(-1) for i in sorted(routes)])     # (decisions,)
    p = torch.cat([routes[i]["p"].reshape(-1) for i in sorted(routes)])     # (decisions,)
    y = torch.cat([routes[i]["y"].reshape(-1) for i in sorted(routes)])     # (decisions,)
    return bce_with_logits(r, y).mean(), bce_with_logits(p, y).mean()


def total_loss(logits, targets, routes, cfg):
    """CE + mod_aux_weight * mean BCE(r, y) + mean BCE(p, y) (MODEL.md, top-k routing); plain CE
    for a dense config. logits (B, T, V), targets (B, T), routes from forward(..., with_routes=True)
    over the same tokens."""
    ce = loss_fn(logits, targets)
    router_bce, predictor_bce = mod_aux_losses(routes)
    if router_bce is None:
        return ce
    return ce + cfg["mod_aux_weight"] * router_bce + predictor_bce


# ----------------------------------------------------------------------------------------------
# random parameters for golden files

def random_params(cfg, seed, dtype):
    """Seeded random parameters: drawn in float64 (in param_shapes order), then cast to dtype.

    matrices ~ randn * 0.5/sqrt(fan_in) (router and predictor weights too); embed, lm_head and
    rmt_memory (rows of the residual stream, like the embeddings) ~ randn * 0.5; norm weights
    1 + 0.1*randn; gate and key_shift ~ randn; knn_log_scale ~ ln sqrt(dk) + 0.5*randn (around the
    C++ init); q_conv and k_conv ~ identity + 0.5*randn; biases (the predictor's) ~ 0.1*randn
    (not 0 as in the C++ init: a zero bias would leave the bias gradient's wiring untested).
    """
    gen = torch.Generator().manual_seed(int(seed))
    params = {}
    for name, shape in param_shapes(cfg):
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        if name in ("embed.weight", "lm_head.weight", "rmt_memory"):
            t = r * 0.5
        elif name.endswith("norm.weight"):
            t = 1.0 + 0.1 * r
        elif name.endswith("attn.gate") or name.endswith("attn.key_shift"):
            t = r
        elif name.endswith("attn.knn_log_scale"):
            t = math.log(math.sqrt(cfg["d_key"])) + 0.5 * r
        elif name.endswith("attn.q_conv") or name.endswith("attn.k_conv"):
            t = 0.5 * r
            t[..., 0] += 1.0                   # around the identity, as the C++ init
        elif name.endswith(".bias"):
            t = 0.1 * r
        else:
            t = r * (0.5 / math.sqrt(shape[1]))
        params[name] = t.to(dtype)
    return params
