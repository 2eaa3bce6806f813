"""What a model's wrong passkey answers have in common, per cell of an `infini passkey --json` file:
how many answers open with the key's first digit, and how many hold exactly the key's digits in
another order (the sign of a memory that keeps which digits it saw but not where). Then, over the
depths below 1 (the memory's cells) and depth 1 (the local attention's), how many keys are exact
among those with a repeated digit and those without (where one digit has two successors, a key that
carries one predecessor cannot tell which comes next).

python3 experiments/passkey-curriculum/passkey-answers.py RESULT.json [...]
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
        exact = {}  # (depth 1?, repeated digit?) -> [exact, keys]
        for c in cells:
            keys = [str(k) for k in c["keys"]]
            answers = [a.strip() for a in c["answers"]]
            first = sum(a[:1] == k[:1] for a, k in zip(answers, keys))
            shuffled = sum(a != k and sorted(a) == sorted(k) for a, k in zip(answers, keys))
            for a, k in zip(answers, keys):
                tally = exact.setdefault((c["depth"] == 1, len(set(k)) < len(k)), [0, 0])
                tally[0] += a == k
                tally[1] += 1
            firsts += first
            total += len(keys)
            print("%9d %6g %8.1f%% %5.0f%% %6d of %2d %6d of %2d" % (c["length"], c["depth"], 100 * c["accuracy"],
                                                                100 * c["exact_match"], first, len(keys), shuffled,
                                                                len(keys)))
        print("first digit right in %d of %d answers" % (firsts, total))
        for near in (False, True):
            parts = ["%s %d of %d" % (name, *exact[(near, repeated)])
                     for repeated, name in ((True, "with a repeated digit"), (False, "without"))
                     if (near, repeated) in exact]
            if parts:
                print("keys exact at depth %s: %s" % ("1" if near else "< 1", ", ".join(parts)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
