"""Load benchmark of `infini serve` (scripts/bench-serve.sh runs it; docs/SERVING.md has results).

Starts the server on 127.0.0.1 with the model given and measures, over real HTTP:
  load     C concurrent clients x R completions of T tokens each: errors, p50/p99 latency, tokens/s;
  streams  aggregate decode tokens/s with S concurrent streams against 1 stream;
  rss      the server's RSS with N resident sessions, each holding the state of a K-token read (read
           once, its files copied), against 10: bytes per session against the state file's size.
Results go to stdout as JSON, progress to stderr. Every request goes to this machine's loopback.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def log(*args):
    print("bench-serve:", *args, file=sys.stderr, flush=True)


class Server:
    def __init__(self, binary, model, sessions_dir, *flags):
        self.proc = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", "--sessions-dir", sessions_dir,
                                      *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise SystemExit("bench-serve: the server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def post(self, path, body=None, raw=None, timeout=3600):
        data = json.dumps(body).encode() if body is not None else raw
        kind = "application/json" if body is not None else "text/plain"
        req = urllib.request.Request(self.url + path, data=data, method="POST", headers={"Content-Type": kind})
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read())

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def completion(server, tokens, seed, prompt="In the beginning"):
    t0 = time.perf_counter()
    out = server.post("/v1/completions", dict(prompt=prompt, max_tokens=tokens, temperature=0.8, seed=seed))
    return time.perf_counter() - t0, out["usage"]["completion_tokens"]


def run_load(server, clients, requests, tokens):
    latencies, errors, produced = [], 0, 0
    lock = threading.Lock()

    def client(c):
        nonlocal errors, produced
        for r in range(requests):
            try:
                seconds, n = completion(server, tokens, seed=c * 1000 + r)
                with lock:
                    latencies.append(seconds)
                    produced += n
            except Exception as e:  # counted, not raised: the error count is a result
                with lock:
                    errors += 1
                log("error:", e)

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
    return {"clients": clients, "requests_each": requests, "tokens_each": tokens, "errors": errors,
            "completed": len(latencies), "p50_s": pick(0.50), "p99_s": pick(0.99), "wall_s": wall,
            "tokens_per_s": produced / wall}


def run_streams(server, streams, tokens, rounds):
    def one(s):
        return sum(completion(server, tokens, seed=s * 100 + r)[1] for r in range(rounds))

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        produced = sum(pool.map(one, range(streams)))
    return produced / (time.perf_counter() - t0)


def measure_streams(server, a):
    """1 stream and S streams in alternating pairs: this machine's speed drifts by 2x over minutes, so
    each ratio compares runs seconds apart, and the figures are medians over the pairs."""
    log(f"streams: {a.stream_pairs} pairs of 1 then {a.streams} streams, {a.stream_rounds} completions of "
        f"{a.stream_tokens} tokens each")
    one, many = [], []
    for _ in range(a.stream_pairs):
        one.append(run_streams(server, 1, a.stream_tokens, a.stream_rounds))
        many.append(run_streams(server, a.streams, a.stream_tokens, a.stream_rounds))
        log(f"  1 stream {one[-1]:.0f} tok/s, {a.streams} streams {many[-1]:.0f} tok/s")
    ratios = [m / o for o, m in zip(one, many)]
    return {"streams": a.streams, "pairs": a.stream_pairs, "tokens_per_s_1": statistics.median(one),
            f"tokens_per_s_{a.streams}": statistics.median(many), "ratio": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default="build/infini")
    p.add_argument("--model", required=True)
    p.add_argument("--text", default="data/sample/kjv-genesis-exodus.txt", help="text the sessions read")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--stream-tokens", type=int, default=256)
    p.add_argument("--stream-rounds", type=int, default=3)
    p.add_argument("--stream-pairs", type=int, default=7, help="alternating 1-stream and S-stream runs")
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--read-tokens", type=int, default=131072)
    p.add_argument("--only", choices=["load", "streams", "rss"], action="append")
    a = p.parse_args()
    parts = a.only or ["load", "streams", "rss"]
    work = tempfile.mkdtemp(prefix="bench-serve-")
    results = {"model": a.model}
    try:
        if "load" in parts or "streams" in parts:
            server = Server(a.bin, a.model, os.path.join(work, "s1"), "--parallel", str(max(a.clients, a.streams)))
            try:
                completion(server, 8, 0)  # warm up
                if "load" in parts:
                    log(f"load: {a.clients} clients x {a.requests} completions of {a.tokens} tokens")
                    results["load"] = run_load(server, a.clients, a.requests, a.tokens)
                if "streams" in parts:
                    results["streams"] = measure_streams(server, a)
            finally:
                server.stop()
        if "rss" in parts:
            results["rss"] = run_rss(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(results, sys.stdout, indent=2)
    print()


def run_rss(a, work):
    sessions_dir = os.path.join(work, "s2")
    with open(a.text, "rb") as f:
        text = f.read()
    while len(text) < a.read_tokens:
        text += text
    text = text[:a.read_tokens]  # byte tokens: one per byte
    server = Server(a.bin, a.model, sessions_dir)
    log(f"rss: one session reads {len(text)} bytes")
    first = server.post("/v1/sessions", raw=text)
    server.stop()
    state = os.path.join(sessions_dir, first["id"] + ".state")
    with open(os.path.join(sessions_dir, first["id"] + ".json")) as f:
        record = json.load(f)
    ids = [first["id"]]
    for k in range(1, a.sessions):  # copies, as a read of the same text would leave them
        sid = f"{k:032x}"
        shutil.copy(state, os.path.join(sessions_dir, sid + ".state"))
        with open(os.path.join(sessions_dir, sid + ".json"), "w") as f:
            json.dump(dict(record, id=sid), f)
        ids.append(sid)
    server = Server(a.bin, a.model, sessions_dir, "--max-resident-sessions", str(a.sessions))
    try:
        def load(some):  # a completion of no tokens makes a session resident
            for sid in some:
                server.post("/v1/completions", dict(prompt="", max_tokens=0, session=sid))
        load(ids[:10])
        time.sleep(1)
        rss_10 = server.rss_bytes()
        log(f"rss: loading {a.sessions} sessions")
        load(ids[10:])
        time.sleep(1)
        rss_all = server.rss_bytes()
        per = (rss_all - rss_10) / (a.sessions - 10)
        size = os.path.getsize(state)
        return {"sessions": a.sessions, "read_tokens": len(text), "rss_10": rss_10, f"rss_{a.sessions}": rss_all,
                "bytes_per_session": per, "state_file_bytes": size, "ratio": per / size}
    finally:
        server.stop()


if __name__ == "__main__":
    main()
