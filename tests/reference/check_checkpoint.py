"""Reads a run folder written by `infini train` with this folder's own safetensors reader (written
from the format's specification, not from the C++ code) and checks that its files agree:

- checkpoint.safetensors holds every weight of model.safetensors, bit for bit, with the shapes the
  reference derives from config.json, plus an AdamW moment pair per weight;
- its metadata carries the same config as config.json and the step of the last metrics.jsonl line.

With a second run folder, also checks that both runs ended with the same weights (to 1e-6): how the
tests show that a stopped-and-resumed run equals an unbroken one.

/usr/bin/python3 tests/reference/check_checkpoint.py RUN [OTHER_RUN]
Exit status 0 when everything holds.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import infini_ref as ref  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def fail(message):
    print("check_checkpoint: " + message, file=sys.stderr)
    sys.exit(1)


def check_run(run):
    with open(os.path.join(run, "config.json")) as f:
        config_json = json.load(f)
    cfg = ref.make_config(config_json)
    weights, _ = load_file(os.path.join(run, "model.safetensors"))
    ref.check_params(weights, cfg)
    ckpt, meta = load_file(os.path.join(run, "checkpoint.safetensors"))
    if meta.get("format") != "infini-checkpoint":
        fail("%s: metadata 'format' is %r" % (run, meta.get("format")))
    if json.loads(meta["config"]) != config_json:
        fail("%s: the checkpoint's config differs from config.json" % run)
    for name, w in weights.items():
        c = ckpt.get("model." + name)
        if c is None or c.dtype != w.dtype or not torch.equal(c, w):
            fail("%s: checkpoint tensor model.%s differs from model.safetensors" % (run, name))
        for moment in ("exp_avg", "exp_avg_sq"):
            m = ckpt.get("adamw.%s.%s" % (moment, name))
            if m is None or m.shape != w.shape or not torch.isfinite(m).all():
                fail("%s: AdamW tensor %s of %s missing or malformed" % (run, moment, name))
        if (ckpt["adamw.exp_avg_sq." + name] < 0).any():
            fail("%s: negative second moment for %s" % (run, name))
    state = json.loads(meta["run"])
    with open(os.path.join(run, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records or records[-1]["step"] != state["step"] or int(ckpt["adamw.step"][0]) != state["step"]:
        fail("%s: checkpoint step %s, AdamW step %s, last metrics step %s" % (
            run, state["step"], int(ckpt["adamw.step"][0]), records[-1]["step"] if records else None))
    print("%s: %d weights and their AdamW moments agree, step %d" % (run, len(weights), state["step"]))
    return weights


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    weights = check_run(sys.argv[1])
    if len(sys.argv) == 3:
        other = check_run(sys.argv[2])
        worst = max(float((weights[k].double() - other[k].double()).abs().max()) for k in weights)
        if worst > 1e-6:
            fail("final weights differ by %.3g" % worst)
        print("final weights of both runs agree (largest difference %.3g)" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
