"""Reads a model folder written by `infini train` with this folder's own safetensors reader, checks
its tensors against the reference's parameter table, and checks that greedy decoding with the
reference (float64) produces exactly the text the C++ `infini generate --temperature 0` produced.

/usr/bin/python3 tests/reference/check_model_file.py MODEL_DIR PROMPT TOKENS GENERATED_FILE
Exit status 0 when everything matches.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import infini_ref as ref  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, prompt, n_tokens, generated_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ref.make_config(json.load(f))
    tensors, _ = load_file(os.path.join(model_dir, "model.safetensors"))
    ref.check_params(tensors, cfg)
    for name, t in tensors.items():
        if t.dtype != ref.DTYPES[cfg["dtype"]]:
            raise SystemExit("%s: dtype %s, config says %s" % (name, t.dtype, cfg["dtype"]))
        if not torch.isfinite(t).all():
            raise SystemExit("%s: non-finite values" % name)
    params = {k: v.to(torch.float64) for k, v in tensors.items()}

    # Greedy decoding, re-reading the whole sequence each step (slow, obviously correct).
    tokens = list(prompt.encode("utf-8"))
    new = []
    with torch.no_grad():
        for _ in range(n_tokens):
            # Generation routes causally (docs/MODEL.md); dense models ignore the argument.
            logits, _ = ref.forward(params, cfg, torch.tensor([tokens + new], dtype=torch.int64), routing="causal")
            new.append(int(logits[0, -1].argmax()))
    expected = bytes(new) + b"\n"
    with open(generated_path, "rb") as f:
        got = f.read()
    if got != expected:
        print("C++ generated %r\nreference     %r" % (got, expected), file=sys.stderr)
        return 1
    print("model file matches the reference: %d tensors, greedy text %r" % (len(tensors), expected[:-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
