"""What a model's wrong passkey answers have in common, per cell of an `infini passkey --json` file:
how many answers open with the key's first digit, and how many hold exactly the key's digits in
another order (the sign of a memory that keeps which digits it saw but not where).

python3 scripts/passkey-answers.py RESULT.json [...]
"""

import json
import sys


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in paths:
        try:
            with open(path) as f:
                cells = json.load(f)["cells"]
        except (OSError, ValueError, KeyError) as e:
            print("passkey-answers: %s: not an `infini passkey --json` result (%s)" % (path, e), file=sys.stderr)
            return 1
        print(path)
        print("%9s %6s %9s %6s %12s %12s" % ("length", "depth", "accuracy", "exact", "first digit", "permutation"))
        firsts = total = 0
        for c in cells:
            keys = [str(k) for k in c["keys"]]
            answers = [a.strip() for a in c["answers"]]
            first = sum(a[:1] == k[:1] for a, k in zip(answers, keys))
            shuffled = sum(a != k and sorted(a) == sorted(k) for a, k in zip(answers, keys))
            firsts += first
            total += len(keys)
            print("%9d %6g %8.1f%% %5.0f%% %6d of %2d %6d of %2d" % (c["length"], c["depth"], 100 * c["accuracy"],
                                                                100 * c["exact_match"], first, len(keys), shuffled,
                                                                len(keys)))
        print("first digit right in %d of %d answers" % (firsts, total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
