#!/usr/bin/env python3
"""Tables and a plot from memory-mode runs (scripts/compare-memory-modes.sh, scripts/memory-mode-run.sh).

Each RUN is a path prefix such as runs/memory-modes/xl; the report reads RUN.eval.json
(`infini eval --json`), RUN.info.json (`infini info --json`), RUN/metrics.jsonl (training) and, when
present, RUN.forget.eval.json (`infini eval --forget-memory --json`). The first RUN is the baseline of
the "minus" columns. Writes RESULTS/results.json, RESULTS/results.md, RESULTS/loss-by-segment.dat and,
with gnuplot (required), RESULTS/loss-by-segment.png. Runs named NAME-sSEED are seeds of one model:
results.md then also gives each memory mode's mean and standard deviation over its seeds, the
differences from infini-delta paired by seed, and RESULTS/quality-vs-memory.png draws bits per byte
against the state's size in floats (log scale), one point per mode with its seeds' spread.

    python3 scripts/memory-modes-report.py RESULTS RUN [RUN ...]
"""
import json
import math
import os
import shutil
import subprocess
import sys


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


def load(run):
    ev = json.load(open(run + ".eval.json"))
    info = json.load(open(run + ".info.json"))
    metrics = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    last = metrics[-1]
    val = [m for m in metrics if "val_loss" in m]
    row = {
        "name": os.path.basename(run),
        "memory": ev["memory"],
        "gate_init": ev["config"].get("gate_init"),
        "train_steps": last.get("step"),
        "train_tokens": last.get("tokens"),
        "final_val_loss": val[-1]["val_loss"] if val else None,
        "bits_per_byte": ev["bits_per_byte"],
        "loss": ev["loss"],
        "perplexity": ev["perplexity"],
        "eval_documents": ev["documents"],
        "eval_tokens": ev["tokens"],
        "state_bytes_at_segment_boundary": info["measured"]["state_bytes_at_segment_boundary"],
        "state_bytes_largest": info["measured"]["state_bytes_largest"],
        # A knn model's memory grows until full; info computes the full state's size.
        "state_bytes_full": info.get("knn", {}).get("state_bytes_at_segment_boundary_full",
                                                    info["measured"]["state_bytes_at_segment_boundary"]),
        "loss_by_segment_groups": groups(ev["loss_by_segment"]),
    }
    if os.path.exists(run + ".forget.eval.json"):
        fe = json.load(open(run + ".forget.eval.json"))
        assert fe.get("forget_memory"), run + ".forget.eval.json was not run with --forget-memory"
        row["bits_per_byte_memory_forgotten"] = fe["bits_per_byte"]
        row["loss_by_segment_groups_memory_forgotten"] = groups(fe["loss_by_segment"])
    return row


def seed_of(name):
    """(model, seed) of a run named MODEL-sSEED; (name, None) otherwise."""
    head, sep, tail = name.rpartition("-s")
    return (head, tail) if sep and tail.isdigit() else (name, None)


def mean_sd(values):
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
    return m, sd


def by_mode(table, results):
    """Means over seeds, differences from infini-delta paired by seed, and the quality-vs-memory plot."""
    modes = {}
    for r in table:
        model, seed = seed_of(r["name"])
        modes.setdefault(r["memory"], {})[seed] = r
    anchor = modes.get("infini-delta", {})
    rows = []
    for memory, seeds in modes.items():
        bpb = [r["bits_per_byte"] for r in seeds.values()]
        paired = [seeds[s]["bits_per_byte"] - anchor[s]["bits_per_byte"] for s in seeds if s in anchor]
        full = [r["state_bytes_full"] for r in seeds.values()]
        rows.append({"memory": memory, "seeds": sorted(s for s in seeds if s is not None), "bits_per_byte": bpb,
                     "mean": mean_sd(bpb)[0], "sd": mean_sd(bpb)[1],
                     "minus_infini_delta": paired, "state_floats_full": max(full) / 4})
    rows.sort(key=lambda r: r["mean"])
    lines = ["\nBy memory mode, over seeds (bits per byte; differences from infini-delta paired by seed, "
             "negative: better than infini-delta; state in floats at a segment boundary, a knn memory full):\n",
             "| memory | seeds | bits/byte, mean | sd | each seed | minus infini-delta, mean | each seed | state floats |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r["minus_infini_delta"]
        dm, _ = mean_sd(d) if d else (float("nan"), None)
        lines.append("| %s | %d | %.4f | %.4f | %s | %s | %s | %s |" % (
            r["memory"], len(r["bits_per_byte"]), r["mean"], r["sd"], ", ".join("%.4f" % v for v in r["bits_per_byte"]),
            "-" if not d or r["memory"] == "infini-delta" else "%+.4f" % dm,
            "-" if not d or r["memory"] == "infini-delta" else ", ".join("%+.4f" % v for v in d),
            format(int(r["state_floats_full"]), ",")))
    dat = os.path.join(results, "quality-vs-memory.dat")
    with open(dat, "w") as f:
        f.write("# state floats, bits/byte mean, min, max, memory\n")
        for r in rows:
            # A log axis has no 0: a mode with no state (none) sits at 1 float, its label says so.
            name = r["memory"] if r["state_floats_full"] > 0 else r["memory"] + " (no state)"
            f.write("%g %.6f %.6f %.6f %s\n" % (max(r["state_floats_full"], 1), r["mean"], min(r["bits_per_byte"]),
                                                max(r["bits_per_byte"]), name.replace(" ", "_")))
    plot = "; ".join([
        "set terminal pngcairo size 900,560",
        'set output "%s"' % os.path.join(results, "quality-vs-memory.png"),
        "set logscale x 10", "set grid", "set key off", "set offsets graph 0.08, graph 0.12, graph 0.1, graph 0.1",
        'set xlabel "state at a segment boundary (floats, log scale)"',
        'set ylabel "held-out bits per byte (mean; bars: the seeds\' range)"',
        'plot "%s" using 1:2:3:4 with yerrorbars pt 7 ps 1.2, "" using 1:2:5 with labels offset 0,1.2' % dat,
    ])
    subprocess.run(["gnuplot", "-e", plot], check=True)
    return rows, "\n".join(lines) + "\n"


def label(g):
    return str(g["first"]) if g["first"] == g["last"] else "%d-%d" % (g["first"], g["last"])


def main(results, runs):
    if shutil.which("gnuplot") is None:
        sys.exit("gnuplot not found: install it with 'apt-get install gnuplot-nox' (scripts/install-deps.sh does)")
    os.makedirs(results, exist_ok=True)
    table = [load(run) for run in runs]
    # Rows line up by segment group: every run must be scored on the same documents and segments.
    shape = [(g["first"], g["last"], g["tokens"]) for g in table[0]["loss_by_segment_groups"]]
    for r in table:
        for key in ["loss_by_segment_groups", "loss_by_segment_groups_memory_forgotten"]:
            if key in r and [(g["first"], g["last"], g["tokens"]) for g in r[key]] != shape:
                sys.exit("%s: its %s do not match %s's (other documents or segment length?)" % (
                    r["name"], key, table[0]["name"]))
    xl = next((r for r in table if r["memory"] == "xl"), None)
    for r in table:
        b = r["state_bytes_at_segment_boundary"]
        r["compression_vs_xl"] = xl["state_bytes_at_segment_boundary"] / b if xl and b else None
    modes, mode_table = by_mode(table, results)
    json.dump({"models": table, "by_memory": modes}, open(os.path.join(results, "results.json"), "w"), indent=1)

    base = table[0]
    with open(os.path.join(results, "results.md"), "w") as md:
        md.write("| model | memory | steps | bits/byte | loss (nats/token) | perplexity | bits/byte, memory "
                 "forgotten at each segment | memory state at a segment boundary | compression vs XL cache "
                 "|\n|---|---|---|---|---|---|---|---|---|\n")
        for r in table:
            comp = "-" if r["compression_vs_xl"] is None else "%.1fx" % r["compression_vs_xl"]
            forgot = r.get("bits_per_byte_memory_forgotten")
            md.write("| %s | %s | %d | %.4f | %.4f | %.3f | %s | %s bytes | %s |\n" % (
                r["name"], r["memory"], r["train_steps"], r["bits_per_byte"], r["loss"], r["perplexity"],
                "-" if forgot is None else "%.4f" % forgot,
                format(r["state_bytes_at_segment_boundary"], ","), comp))
        md.write("\nLoss (nats/token) by segment index, in power-of-two groups:\n\n| segments | tokens | "
                 + " | ".join(r["name"] for r in table) + " |\n|---|---|" + "---|" * len(table) + "\n")
        for i, g in enumerate(base["loss_by_segment_groups"]):
            cells = ["%.4f" % r["loss_by_segment_groups"][i]["loss"] for r in table]
            md.write("| %s | %d | %s |\n" % (label(g), g["tokens"], " | ".join(cells)))
        with_forget = [r for r in table if "loss_by_segment_groups_memory_forgotten" in r]
        if with_forget:
            md.write("\nWhat the memory adds, same weights: loss with the memory carried minus loss with it "
                     "forgotten at every segment boundary (negative: the memory helps):\n\n| segments | "
                     + " | ".join(r["name"] for r in with_forget) + " |\n|---|" + "---|" * len(with_forget)
                     + "\n")
            for i, g in enumerate(base["loss_by_segment_groups"]):
                cells = ["%+.4f" % (r["loss_by_segment_groups"][i]["loss"]
                                    - r["loss_by_segment_groups_memory_forgotten"][i]["loss"])
                         for r in with_forget]
                md.write("| %s | %s |\n" % (label(g), " | ".join(cells)))
        md.write(mode_table)

    # Columns: x, loss per model, loss minus the baseline's per model, memory gain per model (0 if none).
    dat = os.path.join(results, "loss-by-segment.dat")
    n = len(table)
    with open(dat, "w") as f:
        f.write("# segment-group-middle, loss, loss minus %s's, loss minus loss with memory forgotten; "
                "models: %s\n" % (base["name"], " ".join(r["name"] for r in table)))
        for i, g in enumerate(base["loss_by_segment_groups"]):
            mid = math.sqrt((g["first"] + 1) * (g["last"] + 1))  # segments numbered from 1
            losses = [r["loss_by_segment_groups"][i]["loss"] for r in table]
            gains = [r["loss_by_segment_groups"][i]["loss"] - r["loss_by_segment_groups_memory_forgotten"][i]["loss"]
                     if "loss_by_segment_groups_memory_forgotten" in r else 0.0 for r in table]
            f.write("%g %s %s %s\n" % (mid, " ".join("%.6f" % v for v in losses),
                                        " ".join("%.6f" % (v - losses[0]) for v in losses),
                                        " ".join("%.6f" % v for v in gains)))
    png = os.path.join(results, "loss-by-segment.png")
    forgotten = [(i, r) for i, r in enumerate(table) if "loss_by_segment_groups_memory_forgotten" in r]
    xlabel = 'set xlabel "segment of the document (%d tokens each; power-of-two groups)"' % (
        json.load(open(runs[0] + ".eval.json"))["segment_len"])
    panels = [
        'set ylabel "held-out loss (nats/token)"',
        "plot " + ", ".join('"%s" using 1:%d with linespoints lc %d title "%s"' % (dat, i + 2, i + 1, r["name"])
                            for i, r in enumerate(table)),
        'set ylabel "loss minus %s\'s (nats/token)"' % base["name"],
        "plot " + ", ".join('"%s" using 1:%d with linespoints lc %d title "%s"' % (dat, n + i + 2, i + 1, r["name"])
                            for i, r in enumerate(table)),
    ]
    if forgotten:
        panels += ['set ylabel "loss minus loss with memory forgotten"',
                   "plot " + ", ".join('"%s" using 1:%d with linespoints lc %d title "%s"' % (dat, 2 * n + i + 2, i + 1, r["name"])
                                       for i, r in forgotten)]
    panels.insert(len(panels) - 1, xlabel)  # under the bottom panel only
    rows = len(panels) // 2
    plot = "; ".join([
        "set terminal pngcairo size 900,%d" % (420 * rows),
        'set output "%s"' % png,
        "set multiplot layout %d,1" % rows,
        "set logscale x 2",
        "set grid",
        "set key top right",
    ] + panels + ["unset multiplot"])
    subprocess.run(["gnuplot", "-e", plot], check=True)
    print(open(os.path.join(results, "results.md")).read())


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
