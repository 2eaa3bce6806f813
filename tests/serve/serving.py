"""Starts `infini serve` for the tests and talks to it over real HTTP on 127.0.0.1 (urllib only)."""
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN = os.environ.get("INFINI_BIN", "build/infini")
MODEL = os.environ.get("INFINI_MODEL", "models/passkey-infini-delta")


class Server:
    """One `infini serve` process on a free port, with its own sessions folder."""

    def __init__(self, *flags, sessions_dir=None, model=MODEL):
        self.sessions_dir = sessions_dir or tempfile.mkdtemp(prefix="infini-serve-test-")
        self.flags = list(flags)
        self.model = model
        self.api_key = None
        if "--api-key" in self.flags:
            self.api_key = self.flags[self.flags.index("--api-key") + 1]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--model", self.model, "--port", "0", "--sessions-dir", self.sessions_dir] + self.flags,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("infini serve exited before listening:\n" + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on http://([\d.]+):(\d+)", line)
            if m:
                self.url = f"http://{m.group(1)}:{m.group(2)}"
                break
        else:
            raise RuntimeError("infini serve did not start listening in 120 s")
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [self.log.append(l) for l in self.proc.stderr], daemon=True).start()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def request(self, method, path, body=None, headers=None, raw=None, timeout=300):
        """(status, parsed JSON or text). `body` is sent as JSON, `raw` as bytes."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif raw is not None:
            data = raw
            headers.setdefault("Content-Type", "text/plain")
        if self.api_key and "Authorization" not in headers:
            headers["Authorization"] = "Bearer " + self.api_key
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                status, payload, kind = res.status, res.read(), res.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, payload, kind = e.code, e.read(), e.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            return status, json.loads(payload)
        return status, payload.decode("utf-8", "replace")

    def ok(self, method, path, body=None, **kw):
        status, out = self.request(method, path, body, **kw)
        assert status == 200, (status, out)
        return out

    def complete(self, **body):
        return self.ok("POST", "/v1/completions", body)["choices"][0]["text"]

    def stream(self, **body):
        """The events of a streamed completion: (list of parsed chunks, saw [DONE])."""
        body = dict(body, stream=True)
        req = urllib.request.Request(self.url + "/v1/completions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": "Bearer " + self.api_key} if self.api_key else {})})
        chunks, done = [], False
        with urllib.request.urlopen(req, timeout=300) as res:
            assert res.headers.get("Content-Type", "").startswith("text/event-stream")
            buffer = b""
            for line in res:
                buffer += line
                if not buffer.endswith(b"\n\n"):
                    continue
                event, buffer = buffer.decode().strip(), b""
                assert event.startswith("data: "), event
                data = event[len("data: "):]
                if data == "[DONE]":
                    done = True
                    continue
                chunks.append(json.loads(data))
        return chunks, done


def cli(*args, input_text=None):
    """stdout of an `infini` command, which must succeed."""
    out = subprocess.run([BIN, *args], capture_output=True, text=True, input=input_text)
    assert out.returncode == 0, out.stderr
    return out.stdout


def cli_generate(prompt=None, state=None, tokens=32, temperature=0.8, seed=7, extra=()):
    """The text `infini generate` prints for these settings (its trailing newline removed)."""
    args = ["generate", "--model", MODEL, "--tokens", str(tokens), "--temperature", str(temperature),
            "--seed", str(seed), *extra]
    if prompt is not None:
        args += ["--prompt", prompt]
    if state is not None:
        args += ["--state", state]
    out = cli(*args)
    assert out.endswith("\n")
    return out[:-1]
