#!/usr/bin/env python3
"""Compares two logit_dump outputs (BEFORE and AFTER prefixes) path by path: the largest absolute
difference, the largest relative to the path's largest logit (as the C++ tests' max_rel_error), and
whether the argmax moved. Exit 1 when that relative difference exceeds --tol or an argmax moved.

    python3 compare.py BEFORE_PREFIX AFTER_PREFIX [--vocab 256] [--tol 1e-5]
"""
import argparse
import sys

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("before")
p.add_argument("after")
p.add_argument("--vocab", type=int, default=256)
p.add_argument("--tol", type=float, default=1e-5)
a = p.parse_args()
ok = True
for path in ("general", "prefill", "decode"):
    x = np.fromfile(f"{a.before}.{path}.f32", dtype=np.float32).reshape(-1, a.vocab)
    y = np.fromfile(f"{a.after}.{path}.f32", dtype=np.float32).reshape(-1, a.vocab)
    if x.shape != y.shape:
        print(f"{path}: shapes differ, {x.shape} against {y.shape}")
        ok = False
        continue
    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    moved = int((x.argmax(1) != y.argmax(1)).sum())
    print(f"{path}: {x.shape[0]} rows x {x.shape[1]}, max |diff| {diff.max():.3e}, "
          f"relative {diff.max() / np.abs(x).max():.3e}, argmax moved in {moved} rows")
    ok = ok and diff.max() / np.abs(x).max() <= a.tol and moved == 0
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
