#!/usr/bin/env python3
"""Tables and a plot from the memory-mode comparison (scripts/compare-memory-modes.sh).

Reads RUNS/<mode>.eval.json (`infini eval --json`) and RUNS/<mode>.info.json (`infini info --json`)
for each mode; writes RESULTS/results.json, RESULTS/results.md, RESULTS/loss-by-segment.dat and,
with gnuplot, RESULTS/loss-by-segment.png.

    python3 scripts/memory-modes-report.py RUNS RESULTS
"""
import json
import math
import os
import subprocess
import sys

MODES = ["none", "xl", "infini-linear", "infini-delta"]


def groups(by_segment):
    """Loss by segment index in power-of-two groups: 0, 1, 2-3, 4-7, ..."""
    out, lo = [], 0
    last = max(s["segment"] for s in by_segment)
    while lo <= last:
        hi = 1 if lo == 0 else 2 * lo
        rows = [s for s in by_segment if lo <= s["segment"] < hi]
        tokens = sum(s["tokens"] for s in rows)
        if tokens:
            loss = sum(s["loss"] * s["tokens"] for s in rows) / tokens
            out.append({"first": lo, "last": hi - 1, "tokens": tokens, "loss": loss})
        lo = hi
    return out


def main(runs, results):
    os.makedirs(results, exist_ok=True)
    table = []
    for mode in MODES:
        ev = json.load(open(os.path.join(runs, mode + ".eval.json")))
        info = json.load(open(os.path.join(runs, mode + ".info.json")))
        metrics = [json.loads(line) for line in open(os.path.join(runs, mode, "metrics.jsonl"))]
        last = metrics[-1]
        table.append({
            "memory": mode,
            "train_steps": last.get("step"),
            "train_tokens": last.get("tokens"),
            "bits_per_byte": ev["bits_per_byte"],
            "loss": ev["loss"],
            "perplexity": ev["perplexity"],
            "eval_documents": ev["documents"],
            "eval_tokens": ev["tokens"],
            "state_bytes_at_segment_boundary": info["measured"]["state_bytes_at_segment_boundary"],
            "state_bytes_largest": info["measured"]["state_bytes_largest"],
            "loss_by_segment_groups": groups(ev["loss_by_segment"]),
        })
    xl_state = next(r for r in table if r["memory"] == "xl")["state_bytes_at_segment_boundary"]
    for r in table:
        b = r["state_bytes_at_segment_boundary"]
        r["compression_vs_xl"] = xl_state / b if b else None
    json.dump({"models": table}, open(os.path.join(results, "results.json"), "w"), indent=1)

    with open(os.path.join(results, "results.md"), "w") as md:
        md.write("| memory | bits/byte | loss (nats/token) | perplexity | memory state at a segment boundary "
                 "| compression vs XL cache |\n|---|---|---|---|---|---|\n")
        for r in table:
            comp = "-" if r["compression_vs_xl"] is None else "%.1fx" % r["compression_vs_xl"]
            md.write("| %s | %.4f | %.4f | %.3f | %s bytes | %s |\n" % (
                r["memory"], r["bits_per_byte"], r["loss"], r["perplexity"],
                format(r["state_bytes_at_segment_boundary"], ","), comp))
        md.write("\nLoss (nats/token) by segment index, in power-of-two groups:\n\n| segments | tokens | "
                 + " | ".join(r["memory"] for r in table) + " |\n|---|---|" + "---|" * len(table) + "\n")
        for i, g in enumerate(table[0]["loss_by_segment_groups"]):
            label = str(g["first"]) if g["first"] == g["last"] else "%d-%d" % (g["first"], g["last"])
            cells = ["%.4f" % r["loss_by_segment_groups"][i]["loss"] for r in table]
            md.write("| %s | %d | %s |\n" % (label, g["tokens"], " | ".join(cells)))

    dat = os.path.join(results, "loss-by-segment.dat")
    with open(dat, "w") as f:
        f.write("# segment-group-middle, loss per model, loss minus none's per model: "
                + " ".join(r["memory"] for r in table) + "\n")
        for i, g in enumerate(table[0]["loss_by_segment_groups"]):
            mid = math.sqrt((g["first"] + 1) * (g["last"] + 1))  # segments numbered from 1
            losses = [r["loss_by_segment_groups"][i]["loss"] for r in table]
            f.write("%g %s %s\n" % (mid, " ".join("%.6f" % v for v in losses),
                                     " ".join("%.6f" % (v - losses[0]) for v in losses)))
    png = os.path.join(results, "loss-by-segment.png")
    n = len(table)
    plot = "; ".join([
        "set terminal pngcairo size 900,820",
        'set output "%s"' % png,
        "set multiplot layout 2,1",
        "set logscale x 2",
        "set grid",
        "set key top right",
        'set ylabel "held-out loss (nats/token)"',
        "plot " + ", ".join('"%s" using 1:%d with linespoints title "%s"' % (dat, i + 2, r["memory"])
                            for i, r in enumerate(table)),
        'set xlabel "segment of the document (256 tokens each; power-of-two groups)"',
        'set ylabel "loss minus none\'s (nats/token)"',
        "plot " + ", ".join('"%s" using 1:%d with linespoints title "%s"' % (dat, n + i + 2, r["memory"])
                            for i, r in enumerate(table)),
        "unset multiplot",
    ])
    subprocess.run(["gnuplot", "-e", plot], check=True)
    print(open(os.path.join(results, "results.md")).read())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
