#!/usr/bin/env python3
"""B against A, pair by pair (same round and condition), from contention.sh's JSON lines: per
condition and figure the median ratio B/A, its range and the number of pairs.

  /usr/bin/python3 experiments/shared-machine/pairs.py OUT.jsonl BIN_A BIN_B
"""
import json, statistics, sys

path, a, b = sys.argv[1:4]
figs = {}  # (round, condition, bin, figure) -> value
for l in open(path):
    if not l.strip():
        continue
    r = json.loads(l)
    key = (r['round'], r['condition'], r['bin'])
    res = r['result']
    if r['what'] == 'train':
        figs[key + ('train',)] = res['train_tokens_per_second']
    elif r['what'] == 'session':
        figs[key + ('prefill 16K',)] = res['prefill'][0]['tokens_per_second']
        figs[key + ('decode',)] = res['decode']['tokens_per_second']
ratios = {}
for (rnd, c, bin_, fig), v in figs.items():
    if bin_ == b and (rnd, c, a, fig) in figs:
        ratios.setdefault((c, fig), []).append(v / figs[(rnd, c, a, fig)])
print('| condition | figure | B/A median | range | pairs |')
print('|---|---|---|---|---|')
for (c, fig), rs in sorted(ratios.items()):
    print(f'| {c} | {fig} | {statistics.median(rs):.3f} | {min(rs):.2f}-{max(rs):.2f} | {len(rs)} |')
