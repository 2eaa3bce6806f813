#!/usr/bin/env python3
"""Pairs the A and B lines of experiments/inference-bench/ab.sh (A before B in each round) and prints,
for prefill and decode, each side's median tokens/s and the median and range of the per-round ratio
B/A: the machine drifts between rounds, so the ratio is taken pair by pair.

    python3 ab-summary.py AB_OUTPUT
"""
import re
import statistics
import sys

runs = {"A": {"read": [], "decode": []}, "B": {"read": [], "decode": []}}
for line in open(sys.argv[1]):
    m = re.match(r"([AB]) bench (read|decode) .*?: (\d+) tok/s", line)
    if m:
        runs[m.group(1)][m.group(2)].append(float(m.group(3)))
for kind in ("read", "decode"):
    a, b = runs["A"][kind], runs["B"][kind]
    ratios = [y / x for x, y in zip(a, b)]
    print(f"{kind}: A median {statistics.median(a):.0f} tok/s, B median {statistics.median(b):.0f} tok/s, "
          f"B/A per round median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, "
          f"{len(ratios)} rounds)")
