"""How much each head's local attention looks at the token just before (and at the token itself), per
block, on one 256-byte passkey prompt read by the Python reference (tests/reference/infini_ref.py).

Only byte-level models without Mixture-of-Depths routing (the passkey models). experiments/passkey-lab-log.md, "Keys
with a repeated digit".

/usr/bin/python3 experiments/passkey-qk-conv/previous-token-attention.py MODEL_DIR
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
import infini_ref as ref  # noqa: E402

PROMPT = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
          "I will quiz you about the important information there. The grass is green. The sky is blue. "
          "The sun is yellow. Here we go. There and back again. The pass key is 33739. Remember it. "
          "33739 is the pass key. The grass is green. The sky is blue. What is the pass key? The pass key is")


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model = argv[0]
    try:
        cfg, params = ref.load_model(model)
    except (OSError, ValueError, KeyError) as e:
        print("previous-token-attention: %s: cannot load the model (%s)" % (model, e), file=sys.stderr)
        return 1
    if cfg["vocab_size"] != 256 or cfg["mod_every"]:
        print("previous-token-attention: %s: needs a byte-level dense model" % model, file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    tokens = torch.tensor([list(PROMPT.encode())[:cfg["segment_len"]]])  # (1, N)
    seen = []
    plain = ref.local_attention

    def recording(q, k, v, k_cache, v_cache, theta):
        N, dk = q.shape[-2], q.shape[-1]
        scores = (ref.rope(q, range(N), theta) @ ref.rope(k, range(N), theta).transpose(-1, -2)) / dk ** 0.5
        probs = torch.softmax(scores.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), float("-inf")), -1)[0]
        seen.append([(p.diagonal(-1).mean().item(), p.diagonal(0).mean().item()) for p in probs])  # per head
        return plain(q, k, v, k_cache, v_cache, theta)

    ref.local_attention = recording
    with torch.no_grad():
        ref.forward(params, cfg, tokens)
    for i, heads in enumerate(seen):
        print("block %d: weight on the token before %s | on the token itself %s" % (
            i, " ".join("%.2f" % b for b, _ in heads), " ".join("%.2f" % s for _, s in heads)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
