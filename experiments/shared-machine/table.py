#!/usr/bin/env python3
"""The shared-machine table from contention.sh's JSON lines: per condition and build, the median
training, prefill (16K) and decode tokens/s, each with its share of the same build's idle figure,
and the anchor's training tokens/s with infini's ratio to it.

  /usr/bin/python3 experiments/shared-machine/table.py OUT.jsonl [LABEL=BIN ...]
"""
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = dict(a.split('=', 1)[::-1] for a in sys.argv[2:])
order = ['idle', 'loop1-nice19', 'loop1-nice0', 'loop2-nice19', 'loop2-nice19+job-nice19', 'loop2-nice19+job-nice0']
figures = {}  # (condition, bin, figure) -> [values]
for r in rows:
    c, what, b, res = r['condition'], r['what'], r['bin'], r['result']
    if what == 'train':
        figures.setdefault((c, b, 'train'), []).append(res['train_tokens_per_second'])
    elif what == 'session':
        figures.setdefault((c, b, 'prefill'), []).append(res['prefill'][0]['tokens_per_second'])
        figures.setdefault((c, b, 'decode'), []).append(res['decode']['tokens_per_second'])
    elif what == 'anchor':
        figures.setdefault((c, 'anchor', 'train'), []).append(res['tok_per_s'])
    elif what == 'anchor-infer':
        figures.setdefault((c, 'anchor', 'prefill'), []).append(res['prefill_tok_per_s'])
        figures.setdefault((c, 'anchor', 'decode'), []).append(res['decode_tok_per_s'])
bins = sorted({b for (_, b, _) in figures if b != 'anchor'})
med = {k: statistics.median(v) for k, v in figures.items()}
print('| condition | build | infini train tok/s (share of idle) | anchor train tok/s (share) | infini / anchor | '
      'prefill 16K tok/s (share) | decode tok/s (share) | runs |')
print('|---|---|---|---|---|---|---|---|')
for c in order:
    for b in bins:
        if (c, b, 'train') not in med and (c, b, 'prefill') not in med:
            continue
        cells = []
        for fig, who in (('train', b), ('train', 'anchor')):
            v, idle = med.get((c, who, fig)), med.get(('idle', who, fig))
            cells.append(f'{v:,.0f} ({v / idle:.0%})' if v and idle else (f'{v:,.0f}' if v else ''))
        t, a = med.get((c, b, 'train')), med.get((c, 'anchor', 'train'))
        cells.append(f'{t / a:.2f}x' if t and a else '')
        for fig in ('prefill', 'decode'):
            v, idle = med.get((c, b, fig)), med.get(('idle', b, fig))
            cells.append(f'{v:,.0f} ({v / idle:.0%})' if v and idle else '')
        n = len(figures.get((c, b, 'train'), []))
        print(f'| {c} | {labels.get(b, b)} | ' + ' | '.join(cells) + f' | {n} |')
