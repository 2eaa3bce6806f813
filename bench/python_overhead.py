"""What the Python package costs over the C++ engine, side by side (docs/PYTHON.md).

Training: a plain PyTorch step (forward, cross-entropy, backward, clip, torch.optim.AdamW) on the
reference config at batch x window tokens of random ids, against `infini bench --config` on the same
shapes, which runs `infini train`'s step. Generation: `session.generate` against `infini generate`,
the shipped model, the same prompt, greedy. The two sides alternate, `--rounds` times; the figures
are medians and their ratio (Python / C++), and the median of each round's own ratio. Prints one JSON line; progress goes to stderr.

    VENV/bin/python bench/python_overhead.py --infini build/infini [--rounds 3] [--steps 4]
        [--threads N] [--busy-neighbours 1]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import infini

ROOT = Path(__file__).resolve().parent.parent


def python_train(config, batch, window, steps, warmup):
    model = infini.Model(config, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    torch.manual_seed(0)
    tokens = torch.randint(config.get("vocab_size", 256), (batch, window + 1))
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        logits, _ = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return batch * window / statistics.median(times)


def cli_train(binary, config_path, batch, window, steps, warmup, threads):
    out = subprocess.run([binary, "bench", "--config", config_path, "--batch", str(batch), "--window", str(window),
                          "--steps", str(steps), "--warmup-steps", str(warmup), "--threads", str(threads), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["train_tokens_per_second"]


def python_generate(model_dir, prompt, tokens):
    session = infini.load(model_dir).session()
    start = time.perf_counter()
    text = session.generate(prompt, max_tokens=tokens, temperature=0)
    seconds = time.perf_counter() - start
    return (session.position) / seconds, text  # prompt included, as `infini generate` counts time


def cli_generate(binary, model_dir, prompt, tokens, threads):
    done = subprocess.run([binary, "generate", "--model", model_dir, "--prompt", prompt, "--tokens", str(tokens),
                           "--temperature", "0", "--threads", str(threads)], capture_output=True, text=True, check=True)
    seconds = float(re.search(r"tokens in ([0-9.]+) s", done.stderr).group(1))
    position = int(re.search(r"position ([0-9]+)", done.stderr).group(1))
    return position / seconds, done.stdout[:-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--infini", default=str(ROOT / "build" / "infini"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "reference.json"))
    parser.add_argument("--model", default=str(ROOT / "models" / "passkey-infini-delta"))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--generate-tokens", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=0, help="both sides (0: every usable CPU, measured)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy-neighbours", type=int, default=0, help="CPU-bound loops running meanwhile")
    args = parser.parse_args()
    infini.set_threads(args.threads)
    config = json.loads(Path(args.config).read_text())
    prompt = "And God said, Let there be light: and there was light. " * 8
    neighbours = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy_neighbours)]
    try:
        rows = {"python_train": [], "cli_train": [], "python_generate": [], "cli_generate": []}
        for r in range(args.rounds):
            rows["cli_train"].append(cli_train(args.infini, args.config, args.batch, args.window, args.steps,
                                               args.warmup_steps, args.threads))
            rows["python_train"].append(python_train(config, args.batch, args.window, args.steps, args.warmup_steps))
            speed, cli_text = cli_generate(args.infini, args.model, prompt, args.generate_tokens, args.threads)
            rows["cli_generate"].append(speed)
            speed, py_text = python_generate(args.model, prompt, args.generate_tokens)
            rows["python_generate"].append(speed)
            if py_text != cli_text:
                raise SystemExit("python_overhead: session.generate and infini generate gave different text")
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f} tok/s" for k, v in rows.items()), file=sys.stderr)
    finally:
        for n in neighbours:
            n.kill()
    medians = {k: statistics.median(v) for k, v in rows.items()}
    # Each round's two sides ran back to back: their ratio is free of the machine's drift between rounds.
    paired = {kind: statistics.median(p / c for p, c in zip(rows[f"python_{kind}"], rows[f"cli_{kind}"]))
              for kind in ("train", "generate")}
    print(json.dumps({"rounds": rows, "medians": medians, "busy_neighbours": args.busy_neighbours,
                      "train_ratio": medians["python_train"] / medians["cli_train"],
                      "generate_ratio": medians["python_generate"] / medians["cli_generate"],
                      "train_ratio_paired": paired["train"], "generate_ratio_paired": paired["generate"],
                      "batch": args.batch, "window": args.window, "generate_tokens": args.generate_tokens,
                      "threads": args.threads}))


if __name__ == "__main__":
    main()
