"""Where the first digit of a passkey answer comes from: the memory or the local attention.

Reads passkey prompts (the generator's layout, src/data/passkey.cpp) with the Python reference
(tests/reference/infini_ref.py), teacher-forced up to the space before the key, and prints the top
prediction for the key's first digit four ways:
  full       the model as it is;
  local      every memory gate shut (attn.gate = -30) in the segment that holds the space, so only
             the local attention reads there;
  memory     every gate open (+30) in that segment, so only the memory read is used;
  fresh      that segment alone, from an empty state (no memory, no convolution tails).
Each line also gives where in its segment the space sits and where the key's first digit sits (or
"earlier" when it lies in an earlier segment). experiments/passkey-lab-log.md, "Depth 1".

Only byte-level models without Mixture-of-Depths routing (the passkey models).

/usr/bin/python3 experiments/passkey-depth1/first-digit-source.py MODEL_DIR LENGTH [DEPTH [KEYS]]
    LENGTH in bytes (the prompt, without the answer); DEPTH 0..1 (default 1); KEYS (default 10)
    random keys from seed 7.
"""

import os
import random
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
import infini_ref as ref  # noqa: E402

INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
         "I will quiz you about the important information there.")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
QUESTION = "What is the pass key? The pass key is"


def key_line(key):
    return "The pass key is %d. Remember it. %d is the pass key." % (key, key)


def prompt(length, depth, key):
    """The generator's prompt of at most `length` bytes (fillers sized for a 5-digit key)."""
    fixed = len(INTRO) + len(key_line(50000)) + len(QUESTION) + 4
    total = max(0, (length - fixed + 1) // (len(FILLER) + 1))
    before = round(depth * total)
    fillers = lambda n: " ".join([FILLER] * n)  # noqa: E731
    return INTRO + "\n" + fillers(before) + "\n" + key_line(key) + "\n" + fillers(total - before) + "\n" + QUESTION


def predict(params, cfg, tokens, pos, gate=None, fresh=False):
    """Logits (V,) at position pos of tokens (1, T); gate overrides every attn.gate in pos's segment."""
    S = cfg["segment_len"]
    start = (pos // S) * S
    state = ref.init_state(cfg, 1, torch.float32)
    if start > 0 and not fresh:
        _, state = ref.forward(params, cfg, tokens[:, :start])
    p = dict(params)
    if gate is not None:
        for i in range(cfg["n_layers"]):
            p["blocks.%d.attn.gate" % i] = torch.full_like(params["blocks.%d.attn.gate" % i], gate)
    logits, _ = ref.forward_segment(p, cfg, tokens[:, start: start + S], state)  # (1, n, V)
    return logits[0, pos - start]


def main(argv):
    if not 2 <= len(argv) <= 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model = argv[0]
    try:
        length = int(argv[1])
        depth = float(argv[2]) if len(argv) > 2 else 1.0
        keys = int(argv[3]) if len(argv) > 3 else 10
        if length < 1 or not 0.0 <= depth <= 1.0 or keys < 1:
            raise ValueError("out of range")
    except ValueError as e:
        print("first-digit-source: LENGTH > 0, 0 <= DEPTH <= 1, KEYS > 0 expected (%s)" % e, file=sys.stderr)
        return 2
    try:
        cfg, params = ref.load_model(model)
    except (OSError, ValueError, KeyError) as e:
        print("first-digit-source: %s: cannot load the model (%s)" % (model, e), file=sys.stderr)
        return 1
    if cfg["vocab_size"] != 256 or cfg["mod_every"] or not ref.is_infini(cfg):
        print("first-digit-source: %s: needs a byte-level dense Infini-attention model" % model, file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    S = cfg["segment_len"]
    rng = random.Random(7)
    ways = [("full", {}), ("local", {"gate": -30.0}), ("memory", {"gate": 30.0}), ("fresh", {"fresh": True})]
    right = {name: 0 for name, _ in ways}
    for _ in range(keys):
        key = rng.randint(1, 50000)
        text = prompt(length, depth, key)
        pos = len(text)  # the space before the key's first digit
        digit = text.rindex(key_line(key)) + len("The pass key is ")
        tokens = torch.tensor([list((text + " " + str(key)).encode())])  # (1, T)
        where = "%d" % (digit % S) if digit // S == pos // S else "earlier"
        cells = []
        with torch.no_grad():
            for name, kw in ways:
                probs = torch.softmax(predict(params, cfg, tokens, pos, **kw), -1)  # (V,)
                top = int(probs.argmax())
                ok = top == ord(str(key)[0])
                right[name] += ok
                cells.append("%s %s %.2f%s" % (name, chr(top) if 32 < top < 127 else "#%d" % top, probs[top], " ok" if ok else ""))
        print("key %5d  space at %3d, digit at %7s | %s" % (key, pos % S, where, " | ".join(cells)))
    print("first digit right, of %d: %s" % (keys, ", ".join("%s %d" % (n, right[n]) for n, _ in ways)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
