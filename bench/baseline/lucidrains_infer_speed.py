#!/usr/bin/env python3
"""Inference throughput of lucidrains/infini-transformer-pytorch on CPU, for a side-by-side
comparison with infini's inference at the reference config (see README.md in this folder).
Randomly initialised weights (seed 0), batch 1, under torch.inference_mode.

  PYTHONPATH=SHIMS:CHECKOUT /usr/bin/python3 bench/baseline/lucidrains_infer_speed.py \
      --threads 1 --blas-threads 2 --prefill-tokens 16384 --decode-tokens 256

Prefill: reads --prefill-tokens pseudo-random token ids segment after segment, calling the
model the way InfiniTransformerWrapper.forward does (`model(segment, past_memories=...,
return_new_memories=True)`, the returned memories fed to the next segment). A trailing partial
segment is run with return_new_memories=False, so that it ends up in the kv cache, which is the
state generate() keeps for a partial segment. The whole read is timed; the last logits give the
first generated token (not counted as decode).

Decode: --decode-tokens greedy steps, each one forward call producing one token, timed alone.
InfiniTransformerWrapper.generate() cannot be called as is: it starts from past_memories=None and
feeds only the last segment of the prompt, so everything the prefill compressed would be lost.
The loop below is generate()'s loop body unchanged, started from the prefill's state, with
argmax in place of its top-p + gumbel sampling. Its real per-token cost is therefore:
- the whole current partial segment is passed in and embedded, then all but the last position
  are thrown away (the model keeps a kv cache, so attention runs on one query);
- keys are cached unrotated, so every step re-applies rotary to all cached keys (up to 255);
- on the step that completes a segment (length divisible by the segment) it asks for new
  memories, which compresses the cached keys/values of that segment and drops the kv cache.
"""
import argparse, json, os, time

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--blas-threads', type=int, default=2,
                help='OPENBLAS_NUM_THREADS; 2 on the 2-core machine is what Python users get by default')
ap.add_argument('--prefill-tokens', type=int, default=16384)
ap.add_argument('--decode-tokens', type=int, default=256)
ap.add_argument('--segment', type=int, default=256)
ap.add_argument('--ff-mult', type=float, default=4)   # int(4*256*2/3) = 682 hidden
ap.add_argument('--seed', type=int, default=0)
args = ap.parse_args()
assert args.prefill_tokens >= 1 and args.decode_tokens >= 0

# must be set before torch (and thus libblas) is loaded: an OpenBLAS picked up via
# LD_LIBRARY_PATH sizes its own thread pool from this, torch.set_num_threads does not reach it
os.environ['OPENBLAS_NUM_THREADS'] = str(args.blas_threads)
os.environ['OMP_NUM_THREADS'] = str(args.threads)

import torch
from infini_transformer_pytorch import InfiniTransformer

def blas_lib():
    try:
        libs = {l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l}
        return sorted(libs)
    except OSError:
        return []

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)

cfg = dict(num_tokens=256, dim=256, depth=4, heads=4, dim_head=64,
           ff_mult=args.ff_mult, use_mem_delta_rule=True)
model = InfiniTransformer(**cfg)
model.eval()   # generate() does the same; there is no dropout at this config anyway
n_params_all = sum(p.numel() for p in model.parameters())
# the rotary frequencies are a frozen parameter: trainable is the figure comparable to infini's
n_params_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
ff_hidden = int(args.ff_mult * cfg['dim'] * 2 / 3)
seg = args.segment

g = torch.Generator().manual_seed(args.seed)
prompt = torch.randint(0, cfg['num_tokens'], (1, args.prefill_tokens), generator=g)

def prefill(tokens):
    past_memories, cached_kv, logits = None, None, None
    for s in tokens.split(seg, dim=-1):
        if s.shape[-1] == seg:
            logits, _, past_memories = model(s, past_memories=past_memories, return_new_memories=True)
        else:
            # only the last piece can be partial; generate() would hold it as kv cache
            logits, cached_kv, past_memories = model(s, past_memories=past_memories, return_new_memories=False)
    return logits[:, -1], past_memories, cached_kv

def decode(out, past_memories, cached_kv, steps):
    # generate()'s loop, from the state after `out`; out already holds the first new token
    first = out.shape[-1]
    for curr_len in range(first, first + steps):
        start_ind = (curr_len - 1) // seg * seg
        logits, cached_kv, past_memories = model(
            out[:, start_ind:],
            cached_kv=cached_kv,
            past_memories=past_memories,
            return_new_memories=(curr_len % seg == 0))
        out = torch.cat((out, logits[:, -1].argmax(dim=-1, keepdim=True)), dim=-1)
    return out

with torch.inference_mode():
    # warm-up on a throw-away state: first calls pay for allocator and kernel set-up
    w_last, w_mem, w_kv = prefill(prompt[:, :seg])
    decode(torch.cat((prompt[:, :seg], w_last.argmax(-1, keepdim=True)), -1), w_mem, w_kv, 4)

    t0 = time.perf_counter()
    last, past_memories, cached_kv = prefill(prompt)
    t1 = time.perf_counter()
    out = torch.cat((prompt, last.argmax(dim=-1, keepdim=True)), dim=-1)
    t2 = time.perf_counter()
    out = decode(out, past_memories, cached_kv, args.decode_tokens)
    t3 = time.perf_counter()

prefill_s, decode_s = t1 - t0, t3 - t2
generated = out[0, args.prefill_tokens:].tolist()

print(json.dumps(dict(
    impl='lucidrains/infini-transformer-pytorch', mode='inference', torch=torch.__version__,
    threads=args.threads, blas_threads=args.blas_threads, blas=blas_lib(),
    **{k: v for k, v in cfg.items()}, segment_length=seg, ff_hidden=ff_hidden,
    params_total=n_params_all, params_trainable=n_params_trainable, seed=args.seed, batch=1, grad='inference_mode', sampling='greedy',
    prefill_tokens=args.prefill_tokens, prefill_segments=-(-args.prefill_tokens // seg),
    prefill_seconds=round(prefill_s, 3), prefill_tok_per_s=round(args.prefill_tokens / prefill_s, 1),
    decode_tokens=args.decode_tokens, decode_seconds=round(decode_s, 3),
    decode_tok_per_s=round(args.decode_tokens / decode_s, 1) if args.decode_tokens else None,
    decode_ms_per_token=round(1e3 * decode_s / args.decode_tokens, 3) if args.decode_tokens else None,
    first_generated=generated[:8])))
