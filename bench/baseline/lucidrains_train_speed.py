#!/usr/bin/env python3
"""Training throughput of lucidrains/infini-transformer-pytorch on CPU, for a side-by-side
comparison with `infini bench` at the reference config (see README.md in this folder).

  PYTHONPATH=SHIMS:CHECKOUT /usr/bin/python3 bench/baseline/lucidrains_train_speed.py \
      --threads 1 --blas-threads 2 --warmup 1 --steps 4
"""
import argparse, json, os, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--steps', type=int, default=5)
ap.add_argument('--warmup', type=int, default=2)
ap.add_argument('--batch', type=int, default=4)
ap.add_argument('--seq', type=int, default=2048)
ap.add_argument('--segment', type=int, default=256)
ap.add_argument('--ff-mult', type=float, default=4)   # int(4*256*2/3) = 682 hidden
ap.add_argument('--lr', type=float, default=1e-3)
ap.add_argument('--blas-threads', type=int, default=None, help='OPENBLAS_NUM_THREADS (default: --threads)')
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--data', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             '../../data/sample/kjv-genesis-exodus.txt'))
args = ap.parse_args()

# must be set before torch (and thus libblas) is loaded: an OpenBLAS picked up via
# LD_LIBRARY_PATH sizes its own thread pool from this, torch.set_num_threads does not reach it
os.environ['OPENBLAS_NUM_THREADS'] = str(args.blas_threads or args.threads)
os.environ['OMP_NUM_THREADS'] = str(args.threads)

import torch
from infini_transformer_pytorch import InfiniTransformer, InfiniTransformerWrapper

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
n_segments = args.seq // args.segment
# detach_mems_every_num_segments == number of segments -> memories are never
# detached inside the sequence and backward runs once at the last segment: full BPTT.
wrapper = InfiniTransformerWrapper(model, segment_length=args.segment,
                                   detach_mems_every_num_segments=n_segments)

n_params_all = sum(p.numel() for p in model.parameters())
n_params_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
ff_hidden = int(args.ff_mult * cfg['dim'] * 2 / 3)

optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)

# data: bytes of the sample text if present, else random bytes
if os.path.exists(args.data):
    raw = open(args.data, 'rb').read()
    data = torch.tensor(list(raw), dtype=torch.long)
    data_src = args.data
else:
    data = torch.randint(0, 256, (1 << 20,))
    data_src = 'random'
# wrapper does seq[:, :-1] / seq[:, 1:], so feed seq+1 tokens -> exactly seq input tokens,
# i.e. n_segments full segments of `segment` tokens.
L = args.seq + 1
g = torch.Generator().manual_seed(args.seed)

def batch():
    starts = torch.randint(0, data.numel() - L, (args.batch,), generator=g)
    return torch.stack([data[s:s + L] for s in starts.tolist()])

def step():
    seq = batch()
    loss = wrapper(seq, backward=True)   # segments + full BPTT backward inside
    optim.step()
    optim.zero_grad(set_to_none=True)
    return float(loss)

losses = []
for _ in range(args.warmup):
    losses.append(step())
t0 = time.perf_counter()
for _ in range(args.steps):
    losses.append(step())
dt = time.perf_counter() - t0
tokens = args.steps * args.batch * args.seq

print(json.dumps(dict(
    impl='lucidrains/infini-transformer-pytorch', torch=torch.__version__,
    threads=args.threads, blas_threads=args.blas_threads or args.threads, steps=args.steps, warmup=args.warmup,
    batch=args.batch, seq_len=args.seq, segment_length=args.segment,
    n_segments=n_segments, bptt='full', **{k: v for k, v in cfg.items()},
    ff_hidden=ff_hidden, ff_kind='GEGLU (gelu gate) with biases',
    params_total=n_params_all, params_trainable=n_params_trainable,
    optimizer='AdamW', lr=args.lr, blas=blas_lib(), data=data_src,
    first_loss=round(losses[0], 4), last_loss=round(losses[-1], 4),
    seconds=round(dt, 3), tok_per_s=round(tokens / dt, 1))))
