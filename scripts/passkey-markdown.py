"""The length x depth table of one or more `infini passkey --json` results, as the docs' Markdown:
per cell the % of key digits right and, in brackets, the % of keys exact (the answer stopping after the
key) and, where that differs, the % of keys right whatever followed; per length the peak RSS of
that length's reads, and the ratio of the longest length's RSS to the shortest's.

python3 scripts/passkey-markdown.py RESULT.json [...]   (e.g. DIR/table-*.json of scripts/passkey-table.sh)
"""

import json
import sys


def label(tokens):
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if tokens % size == 0:
            return "%d%s" % (tokens // size, unit)
    return str(tokens)


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rows = {}  # length -> ({depth: cell}, peak RSS in bytes)
    for path in paths:
        try:
            with open(path) as f:
                result = json.load(f)
            cells = result["cells"]
            rss = {r["length"]: r["bytes"] for r in result["peak_rss"]}
        except (OSError, ValueError, KeyError) as e:
            print("passkey-markdown: %s: not an `infini passkey --json` result (%s)" % (path, e), file=sys.stderr)
            return 1
        for c in cells:
            rows.setdefault(c["length"], ({}, rss[c["length"]]))[0][c["depth"]] = c
    depths = sorted({d for cells, _ in rows.values() for d in cells})
    print("| length | " + " | ".join("depth %g" % d for d in depths) + " | peak RSS |")
    print("|---" * (len(depths) + 2) + "|")
    for length in sorted(rows):
        cells, rss = rows[length]
        text = []
        for d in depths:
            c = cells.get(d)
            if c is None:
                text.append("-")
            elif "key_exact" in c and c["key_exact"] != round(c["exact_match"] * c["trials"]):
                # Keys right but answers that went on with a digit: "digits (exact; keys right)".
                text.append("%.1f (%.0f; %.0f)" % (100 * c["accuracy"], 100 * c["exact_match"],
                                                   100 * c["key_exact"] / c["trials"]))
            else:
                text.append("%.1f (%.0f)" % (100 * c["accuracy"], 100 * c["exact_match"]))
        print("| %s | %s | %.1f MiB |" % (label(length), " | ".join(text), rss / (1 << 20)))
    lengths = sorted(rows)
    if len(lengths) > 1:
        ratio = rows[lengths[-1]][1] / rows[lengths[0]][1]
        print("\npeak RSS at %s / at %s: %.3f" % (label(lengths[-1]), label(lengths[0]), ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
