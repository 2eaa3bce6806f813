"""A copy of a model folder with the memory gates of some layers set to one value: an initialisation
experiment for passkey fine-tuning (docs/PASSKEY.md), where language-model training has left the gates
of the upper layers nearly shut and the memory path gets little gradient.

/usr/bin/python3 scripts/set-gates.py MODEL_DIR OUT_DIR BETA FIRST_LAYER [LAST_LAYER]
    every block FIRST_LAYER <= i <= LAST_LAYER (default: the last) gets attn.gate = BETA (sigmoid(0) =
    0.5; -30 shuts a block's memory read); the rest is copied as is.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))

from safetensors_io import load_file, save_file  # noqa: E402


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, out, beta, first = argv[1], argv[2], float(argv[3]), int(argv[4])
    last = int(argv[5]) if len(argv) == 6 else None
    weights = os.path.join(src, "model.safetensors")
    if not os.path.isfile(weights):
        print("set-gates: %s has no model.safetensors" % src, file=sys.stderr)
        return 1
    if os.path.exists(out):
        print("set-gates: %s exists; choose a new folder" % out, file=sys.stderr)
        return 1
    loaded = load_file(weights)
    tensors, metadata = loaded if isinstance(loaded, tuple) else (loaded, None)
    changed = []
    for name, t in tensors.items():
        parts = name.split(".")
        if not (name.endswith(".attn.gate") and parts[0] == "blocks"):
            continue
        block = int(parts[1])
        if first <= block and (last is None or block <= last):
            tensors[name] = t.clone().fill_(beta)
            changed.append(name)
    if not changed:
        print("set-gates: no gate of block %d..%s in %s (a memory-less model?)" % (first, "" if last is None else last,
                                                                               weights), file=sys.stderr)
        return 1
    tmp = out + ".tmp"
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("checkpoint.safetensors", "metrics.jsonl", "trained"))
    save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata=metadata)
    os.rename(tmp, out)
    print("set-gates: %s -> %s, %s = %g" % (src, out, ", ".join(changed), beta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
