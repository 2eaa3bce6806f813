"""Two models' passkey answers to the same keys, compared key by key: the keys each misses, the keys
only one of them misses, and the exact two-sided sign test on those (the chance of a split at least
as uneven if both models missed at the same rate). Keys are paired by (length, depth, trial), so both
files must come from `infini passkey --json` runs with the same --lengths, --depths, --trials and
--seed; several pairs of files (A1 B1 A2 B2 ...) are pooled.

python3 experiments/passkey-many-keys/passkey-paired.py A.json B.json [A2.json B2.json ...]
"""

import json
import sys
from math import comb


def answers(path):
    """{(length, depth, trial): (key, answer)} of one result file."""
    with open(path) as f:
        cells = json.load(f)["cells"]
    out = {}
    for c in cells:
        for trial, (key, answer) in enumerate(zip(c["keys"], c["answers"])):
            out[(c["length"], c["depth"], trial)] = (str(key), answer.strip())
    return out


def sign_test(only_a, only_b):
    n, low = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(low + 1)) / 2**n)


def main(paths):
    if len(paths) < 2 or len(paths) % 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    keys = missed_a = missed_b = only_a = only_b = 0
    for a_path, b_path in zip(paths[::2], paths[1::2]):
        try:
            a, b = answers(a_path), answers(b_path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print("passkey-paired: %s / %s: not an `infini passkey --json` result (%s)" % (a_path, b_path, e),
                  file=sys.stderr)
            return 1
        if a.keys() != b.keys() or any(a[t][0] != b[t][0] for t in a):
            print("passkey-paired: %s and %s asked different keys (run both with the same --lengths, "
                  "--depths, --trials and --seed)" % (a_path, b_path), file=sys.stderr)
            return 1
        for t in sorted(a):
            key, wrong_a, wrong_b = a[t][0], a[t][1] != a[t][0], b[t][1] != b[t][0]
            keys += 1
            missed_a += wrong_a
            missed_b += wrong_b
            only_a += wrong_a and not wrong_b
            only_b += wrong_b and not wrong_a
            if wrong_a or wrong_b:
                print("%8d %4g %10s  A %-10s B %-10s" % (t[0], t[1], key, repr(a[t][1]), repr(b[t][1])))
    print("%d keys: A missed %d (%.1f%%), B %d (%.1f%%); only A %d, only B %d; sign test p = %.3f" %
          (keys, missed_a, 100 * missed_a / keys, missed_b, 100 * missed_b / keys, only_a, only_b,
           sign_test(only_a, only_b)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
