"""docs/PYTHON.md's worked example, whole: the shipped model finds a passkey in 1M tokens, then a small
model trains for a minute with a plain PyTorch loop, is saved, and the infini command loads it.

    VENV/bin/python examples/python/tour.py [--tokens 1048576] [--train-seconds 60] [--out runs/py-tour]
"""
import argparse
import time

import torch
import torch.nn.functional as F

import infini

parser = argparse.ArgumentParser()
parser.add_argument("--tokens", type=int, default=1 << 20, help="length of the passkey prompt")
parser.add_argument("--train-seconds", type=float, default=60)
parser.add_argument("--out", default="runs/py-tour")
args = parser.parse_args()
infini.set_threads(0)  # every usable CPU, fewer while a neighbour keeps them busy

# 1. A passkey in a million tokens, read a piece at a time: the state stays a fixed size.
model = infini.load("models/passkey-infini-delta")
print(model)
# The paper's prompt (App. B), laid out as `infini passkey` lays it out: five lines.
intro = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
         "I will quiz you about the important information there.")
filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
key_line = "The pass key is 48153. Remember it. 48153 is the pass key."
question = "What is the pass key? The pass key is"
fillers = (args.tokens - len(intro) - len(key_line) - len(question) - 4) // (len(filler) + 1)
before = fillers // 2  # the key in the middle
session = model.session()
start = time.monotonic()
session.feed("\n".join([intro, " ".join([filler] * before), key_line, " ".join([filler] * (fillers - before)), ""]))
answer = session.generate(question, max_tokens=6, temperature=0)
print(f"read {session.position:,} tokens in {time.monotonic() - start:.0f} s, state {session.state_bytes:,} bytes; "
      f"answer:{answer!r}")

# 2. A small model, trained from Python for a minute on the KJV sample.
config = {"vocab_size": 256, "d_model": 128, "n_layers": 2, "n_heads": 4, "d_key": 32, "d_value": 32,
          "d_ff": 344, "segment_len": 64, "memory": "infini-delta"}
small = infini.Model(config, seed=1)
optimizer = torch.optim.AdamW(small.parameters(), lr=3e-3, weight_decay=0.1)
data = torch.tensor(list(open("data/sample/kjv-genesis-exodus.txt", "rb").read()), dtype=torch.int64)
torch.manual_seed(0)
step, start = 0, time.monotonic()
while time.monotonic() - start < args.train_seconds:
    starts = torch.randint(0, data.numel() - 257, (8,))
    batch = torch.stack([data[s:s + 257] for s in starts])   # (8, 257): 4 segments and a target
    logits, _ = small(batch[:, :-1])                         # the memory carried across the 4 segments
    loss = F.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(small.parameters(), 1.0)
    optimizer.step()
    if step % 50 == 0:
        print(f"step {step}: loss {loss.item():.3f}")
    step += 1
print(f"{step} steps in {time.monotonic() - start:.0f} s, last loss {loss.item():.3f}")
small.save(args.out)
print(f"saved {args.out}; try: build/infini generate --model {args.out} --prompt 'And God said' --tokens 80")
print(small.session().generate("And God said", max_tokens=80, temperature=0.7, seed=3))
