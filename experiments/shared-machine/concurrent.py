#!/usr/bin/env python3
"""Decoding in several sessions at once, from `infini bench --json --model M --concurrent-sessions
1,2,4 [--busy-neighbours 1]` outputs (one JSON object per line): per count of sessions, the median
tokens/s per session and in all, idle and beside the neighbour, over the runs.

  /usr/bin/python3 experiments/shared-machine/concurrent.py OUT.jsonl
"""
import json, statistics, sys

rows = {}  # (machine, sessions) -> [(per-session median, total, threads chosen)]
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    d = json.loads(line)
    runs = [('idle', d['first']), ('busy', d['busy'])] if 'busy' in d else [('idle', d)]
    for machine, r in runs:
        rows.setdefault((machine, 'main thread'), []).append((r['decode']['tokens_per_second'],) * 2 + ([r['decode']['threads_chosen']],))
        for c in r['concurrent_decode']:
            rows.setdefault((machine, c['sessions']), []).append(
                (c['median_tokens_per_second_per_session'], c['total_tokens_per_second'], c['threads_chosen']))
print('| machine | sessions | tokens/s per session (median of runs) | in all | threads chosen | runs |')
print('|---|---|---|---|---|---|')
for (machine, n), v in rows.items():
    print(f'| {machine} | {n} | {statistics.median(x[0] for x in v):,.0f} | {statistics.median(x[1] for x in v):,.0f} | '
          f'{sorted({t for x in v for t in x[2]})} | {len(v)} |')
