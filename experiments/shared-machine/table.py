#!/usr/bin/env python3
"""The shared-machine table from contention.sh's JSON lines: per condition and build, the median
training, reading (16K tokens) and decoding tokens/s, each with its share of the same program's idle
figure, beside the Python anchor's under the same load and infini's ratio to it.

  /usr/bin/python3 experiments/shared-machine/table.py OUT.jsonl [LABEL=BIN ...]
"""
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = dict(a.split('=', 1)[::-1] for a in sys.argv[2:])
order = ['idle', 'loop1-nice19', 'loop1-nice0', 'loop2-nice19', 'loop2-nice19+job-nice19', 'loop2-nice19+job-nice0']
figures = {}  # (condition, program, figure) -> [values]
for r in rows:
    c, what, b, res = r['condition'], r['what'], r['bin'], r['result']
    add = lambda who, fig, v: figures.setdefault((c, who, fig), []).append(v)
    if what == 'train':
        add(b, 'train', res['train_tokens_per_second'])
    elif what == 'session':
        add(b, 'prefill', res['prefill'][0]['tokens_per_second'])
        add(b, 'decode', res['decode']['tokens_per_second'])
    elif what == 'anchor':
        add('anchor', 'train', res['tok_per_s'])
    elif what == 'anchor-infer':
        add('anchor', 'prefill', res['prefill_tok_per_s'])
        add('anchor', 'decode', res['decode_tok_per_s'])
med = {k: statistics.median(v) for k, v in figures.items()}


def cell(c, who, fig):
    v, idle = med.get((c, who, fig)), med.get(('idle', who, fig))
    if v is None:
        return ''
    return f'{v:,.0f} ({v / idle:.0%})' if idle else f'{v:,.0f}'


def ratio(c, b, fig):
    v, a = med.get((c, b, fig)), med.get((c, 'anchor', fig))
    return f'{v / a:.2f}x' if v and a else ''


bins = sorted({b for (_, b, _) in figures if b != 'anchor'})
heads = []
for fig in ('train', 'prefill', 'decode'):
    heads += [f'infini {fig} (share of idle)', f'anchor {fig} (share)', 'infini / anchor']
print('| condition | build | ' + ' | '.join(heads) + ' | runs |')
print('|---|---|' + '---|' * len(heads) + '---|')
for c in order:
    for b in bins:
        if not any((c, b, f) in med for f in ('train', 'prefill', 'decode')):
            continue
        cells = []
        for fig in ('train', 'prefill', 'decode'):
            cells += [cell(c, b, fig), cell(c, 'anchor', fig), ratio(c, b, fig)]
        n = len(figures.get((c, b, 'train'), []))
        print(f'| {c} | {labels.get(b, b)} | ' + ' | '.join(cells) + f' | {n} |')
