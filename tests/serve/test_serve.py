"""`infini serve` over real HTTP on 127.0.0.1: every endpoint and error status, answers equal to the
CLI's, sessions that survive kill -9, and concurrent clients (docs/SERVING.md)."""
import concurrent.futures
import json
import os
import socket
import re
import shutil
import subprocess
import time
import urllib.parse

import pytest

from serving import BIN, MODEL, Server, cli, cli_generate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "data", "sample", "kjv-genesis-exodus.txt"), encoding="utf-8") as f:
    BOOK = f.read()
CHAPTER = BOOK[:6000]
MORE = BOOK[6000:9000]


@pytest.fixture(scope="module")
def server():
    s = Server("--max-body-bytes", "65536", "--max-tokens", "256", "--max-upload-bytes", "200000")
    yield s
    s.stop()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- the OpenAI-shaped endpoints ---------------------------------------------------------------------

def test_health_and_models(server):
    health = server.ok("GET", "/health")
    assert health["status"] == "ok"
    models = server.ok("GET", "/v1/models")
    assert models["object"] == "list"
    assert models["data"][0]["id"] == os.path.basename(MODEL.rstrip("/"))
    assert models["data"][0]["object"] == "model"


@pytest.mark.parametrize("settings", [
    dict(temperature=0.8, seed=7),
    dict(temperature=0, seed=1),
    dict(temperature=1.0, seed=3, top_k=5),
    dict(temperature=0.9, seed=4, top_p=0.5, repetition_penalty=1.3),
])
def test_completion_equals_cli(server, settings):
    prompt = "And God said, Let there be"
    out = server.ok("POST", "/v1/completions", dict(model="x", prompt=prompt, max_tokens=40, **settings))
    extra = []
    for key, flag in [("top_k", "--top-k"), ("top_p", "--top-p"), ("repetition_penalty", "--repetition-penalty")]:
        if key in settings:
            extra += [flag, str(settings[key])]
    expected = cli_generate(prompt, tokens=40, temperature=settings["temperature"], seed=settings["seed"], extra=extra)
    assert out["choices"][0]["text"] == expected
    assert out["object"] == "text_completion"
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 40
    assert out["usage"]["prompt_tokens"] == len(prompt.encode())  # byte tokens


def test_stop_string(server):
    prompt = "In the beginning God created"
    full = cli_generate(prompt, tokens=60, temperature=0, seed=1)
    stop = full[10:13]
    out = server.ok("POST", "/v1/completions", dict(prompt=prompt, max_tokens=60, temperature=0, stop=[stop]))
    assert out["choices"][0]["text"] == full[:full.index(stop)]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["choices"][0]["text"] == cli_generate(prompt, tokens=60, temperature=0, seed=1, extra=["--stop", stop])


def test_stream_equals_whole(server):
    body = dict(prompt="And the earth was", max_tokens=50, temperature=0.7, seed=11)
    whole = server.complete(**body)
    chunks, done = server.stream(**body)
    assert done
    assert len(chunks) >= 2
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)


def test_bytes_that_are_not_utf8(tmp_path):
    """A byte model may generate any bytes: the JSON carries U+FFFD for those that are not UTF-8,
    and a stream, which never splits a character, adds up to the whole text."""
    model = str(tmp_path / "random")
    cli("train", "--config", os.path.join(ROOT, "configs", "reference.json"), "--data",
        os.path.join(ROOT, "data", "sample", "kjv-genesis-exodus.txt"), "--steps", "1", "--window", "64",
        "--batch", "1", "--val-every", "0", "--out", model)
    s = Server(model=model)
    try:
        body = dict(prompt="In", max_tokens=200, temperature=2.0, seed=3)
        whole = s.complete(**body)
        chunks, done = s.stream(**body)
        assert done and "".join(c["choices"][0]["text"] for c in chunks) == whole
        raw = subprocess.run([BIN, "generate", "--model", model, "--prompt", "In", "--tokens", "200",
                              "--temperature", "2.0", "--seed", "3"], capture_output=True, check=True).stdout
        assert whole == raw[:-1].decode("utf-8", "replace") or "\ufffd" in whole
        assert len(whole.encode("utf-8", "surrogatepass")) >= 100
    finally:
        s.stop()


# --- memory sessions ---------------------------------------------------------------------------------

def test_session_answers_as_read_then_generate(server, tmp_path):
    book = write(tmp_path, "book.txt", CHAPTER)
    state = str(tmp_path / "book.state")
    cli("read", "--model", MODEL, "--input", book, "--save-state", state)
    expected = cli_generate("\nQ", state=state, tokens=48, temperature=0.8, seed=5)

    session = server.ok("POST", "/v1/sessions", {"text": CHAPTER})
    assert session["status"] == "ready" and session["tokens"] == len(CHAPTER.encode())
    assert session["state_bytes"] == os.path.getsize(os.path.join(server.sessions_dir, session["id"] + ".state"))
    ask = dict(prompt="\nQ", max_tokens=48, temperature=0.8, seed=5, session=session["id"])
    assert server.complete(**ask) == expected
    # A completion does not change the session: the same question gets the same answer.
    assert server.complete(**ask) == expected
    assert server.ok("GET", "/v1/sessions/" + session["id"])["tokens"] == len(CHAPTER.encode())
    # An empty prompt continues the text itself.
    assert server.complete(prompt="", max_tokens=20, temperature=0, session=session["id"]) == \
        cli_generate(state=state, tokens=20, temperature=0, seed=1)


def test_raw_upload_and_append(server, tmp_path):
    both = write(tmp_path, "both.txt", CHAPTER + MORE)
    state = str(tmp_path / "both.state")
    cli("read", "--model", MODEL, "--input", both, "--save-state", state)
    expected = cli_generate(" And", state=state, tokens=32, temperature=0.5, seed=9)

    session = server.ok("POST", "/v1/sessions", raw=CHAPTER.encode())
    assert session["tokens"] == len(CHAPTER.encode())
    appended = server.ok("POST", f"/v1/sessions/{session['id']}/append", raw=MORE.encode())
    assert appended["tokens"] == len((CHAPTER + MORE).encode())
    assert appended["bytes"] == len((CHAPTER + MORE).encode())
    assert server.complete(prompt=" And", max_tokens=32, temperature=0.5, seed=9, session=session["id"]) == expected
    # A JSON append is the same as a raw one.
    other = server.ok("POST", "/v1/sessions", {"text": CHAPTER})
    server.ok("POST", f"/v1/sessions/{other['id']}/append", {"text": MORE})
    assert server.complete(prompt=" And", max_tokens=32, temperature=0.5, seed=9, session=other["id"]) == expected


def test_list_get_delete(server):
    a = server.ok("POST", "/v1/sessions", {"text": "one"})
    b = server.ok("POST", "/v1/sessions")
    assert b["tokens"] == 0 and b["status"] == "ready"
    ids = [s["id"] for s in server.ok("GET", "/v1/sessions")["data"]]
    assert a["id"] in ids and b["id"] in ids
    assert server.ok("DELETE", "/v1/sessions/" + a["id"]) == {"id": a["id"], "object": "session.deleted", "deleted": True}
    assert not os.path.exists(os.path.join(server.sessions_dir, a["id"] + ".state"))
    status, out = server.request("GET", "/v1/sessions/" + a["id"])
    assert status == 404 and out["error"]["code"] == "session_not_found"
    ids = [s["id"] for s in server.ok("GET", "/v1/sessions")["data"]]
    assert a["id"] not in ids and b["id"] in ids
    # An empty session has nothing to continue without a prompt, and answers with one.
    status, out = server.request("POST", "/v1/completions", {"prompt": "", "session": b["id"]})
    assert status == 400
    assert server.complete(prompt="In the", max_tokens=8, temperature=0, session=b["id"]) == \
        server.complete(prompt="In the", max_tokens=8, temperature=0)


# --- errors ------------------------------------------------------------------------------------------

def expect_error(server, status, code, method, path, body=None, **kw):
    got, out = server.request(method, path, body, **kw)
    assert got == status, (got, out)
    assert set(out) == {"error"} and set(out["error"]) == {"message", "type", "code"}, out
    assert out["error"]["message"]
    if code:
        assert out["error"]["code"] == code, out
    return out["error"]


@pytest.mark.parametrize("body,field", [
    ({"prompt": 5}, "prompt"),
    ({"prompt": "x", "max_tokens": "9"}, "max_tokens"),
    ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
    ({"prompt": "x", "max_tokens": 100000}, "max_tokens"),
    ({"prompt": "x", "temperature": "hot"}, "temperature"),
    ({"prompt": "x", "temperature": 3}, "temperature"),
    ({"prompt": "x", "top_p": 0}, "top_p"),
    ({"prompt": "x", "top_k": 1.5}, "top_k"),
    ({"prompt": "x", "repetition_penalty": 0}, "repetition_penalty"),
    ({"prompt": "x", "stop": 7}, "stop"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "seed": 18446744073709551615}, "seed"),
    ({"prompt": "x", "stream": "yes"}, "stream"),
    ({"prompt": "x", "session": 12}, "session"),
    ({"prompt": "x", "session": "../../etc/passwd"}, "session"),
    ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": "x", "logprobs": 1}, "logprobs"),
    ({"prompt": "x", "model": 3}, "model"),
    ({"max_tokens": 3}, "prompt"),
    ({"prompt": ["a", "b"]}, "prompt"),
])
def test_bad_fields_are_400_naming_the_field(server, body, field):
    error = expect_error(server, 400, None, "POST", "/v1/completions", body)
    assert f"'{field}'" in error["message"]


def test_malformed_json_and_bodies(server):
    expect_error(server, 400, "invalid_json", "POST", "/v1/completions", raw=b'{"prompt": "x",',
                 headers={"Content-Type": "application/json"})
    expect_error(server, 400, "invalid_json", "POST", "/v1/completions", raw=b'[1, 2]',
                 headers={"Content-Type": "application/json"})
    expect_error(server, 400, "invalid_json", "POST", "/v1/completions", raw=b"[" * 60000,
                 headers={"Content-Type": "application/json"})
    expect_error(server, 400, "invalid_json", "POST", "/v1/completions", raw=b'{"prompt": "x", "seed": 5511e30861615}',
                 headers={"Content-Type": "application/json"})
    expect_error(server, 413, "body_too_large", "POST", "/v1/completions", {"prompt": "x" * 70000})
    expect_error(server, 413, "body_too_large", "POST", "/v1/sessions", raw=b"y" * 200001)
    # A text that is not what the tokenizer takes... byte models take any bytes; a JSON string must be UTF-8.
    expect_error(server, 400, "invalid_json", "POST", "/v1/sessions", raw=b'{"text": "\xff"}',
                 headers={"Content-Type": "application/json"})
    expect_error(server, 400, "invalid_value", "POST", "/v1/sessions", {"text": 5})
    expect_error(server, 400, "missing_field", "POST", "/v1/sessions/" + "0" * 32 + "/append", {})


def test_unknown_sessions_and_routes(server):
    expect_error(server, 404, "session_not_found", "GET", "/v1/sessions/" + "a" * 32)
    expect_error(server, 404, "session_not_found", "GET", "/v1/sessions/not-an-id")
    expect_error(server, 404, "session_not_found", "DELETE", "/v1/sessions/" + "b" * 32)
    expect_error(server, 404, "session_not_found", "POST", "/v1/sessions/" + "c" * 32 + "/append", raw=b"text")
    expect_error(server, 404, "session_not_found", "POST", "/v1/completions", {"prompt": "x", "session": "d" * 32})
    expect_error(server, 404, "not_found", "GET", "/v1/nothing")
    expect_error(server, 404, "not_found", "POST", "/v1/nothing", raw=b"x" * 1000)
    expect_error(server, 413, "body_not_allowed", "GET", "/v1/models", raw=b"x" * 1000)


def test_api_key():
    s = Server("--api-key", "sesame-123")
    try:
        assert s.request("GET", "/health", headers={"Authorization": "none"})[0] == 200
        for auth in ["", "Bearer sesame-12", "Bearer sesame-1234", "bearer sesame-123", "Basic sesame-123"]:
            for method, path in [("GET", "/v1/models"), ("GET", "/v1/sessions"), ("POST", "/v1/completions")]:
                status, out = s.request(method, path, {"prompt": "x"} if method == "POST" else None,
                                        headers={"Authorization": auth})
                assert status == 401 and out["error"]["type"] == "authentication_error", (auth, path, out)
        assert s.ok("GET", "/v1/models")["data"]
        assert s.complete(prompt="In", max_tokens=4)
    finally:
        s.stop()


# --- persistence -------------------------------------------------------------------------------------

def test_sessions_survive_kill_9(tmp_path):
    s = Server(sessions_dir=str(tmp_path / "sessions"))
    try:
        texts = [CHAPTER[:2000], CHAPTER[2000:4500] + MORE, "short"]
        sessions = [s.ok("POST", "/v1/sessions", {"text": t}) for t in texts]
        s.ok("POST", f"/v1/sessions/{sessions[0]['id']}/append", {"text": MORE[:700]})
        ask = dict(prompt="\nAnd", max_tokens=24, temperature=0.6, seed=21)
        before = {x["id"]: s.complete(session=x["id"], **ask) for x in sessions}
        listed = sorted((x["id"], x["tokens"]) for x in s.ok("GET", "/v1/sessions")["data"])
        s.kill()
        s.start()
        assert sorted((x["id"], x["tokens"]) for x in s.ok("GET", "/v1/sessions")["data"]) == listed
        assert all(x["status"] == "ready" for x in s.ok("GET", "/v1/sessions")["data"])
        assert {x["id"]: s.complete(session=x["id"], **ask) for x in sessions} == before
    finally:
        s.stop()


def slow_upload(url, path, first_part, total):
    """Sends an append whose body stops after `first_part` of its declared `total` bytes, and keeps
    the connection open. Returns the socket."""
    parsed = urllib.parse.urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port))
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                  f"Content-Length: {total}\r\n\r\n").encode() + first_part)
    return sock


def test_upload_cut_off_by_kill_is_incomplete(tmp_path):
    s = Server(sessions_dir=str(tmp_path / "sessions"))
    try:
        kept = s.ok("POST", "/v1/sessions", {"text": CHAPTER[:3000]})
        answer = s.complete(session=kept["id"], prompt=" The", max_tokens=16, temperature=0)
        target = s.ok("POST", "/v1/sessions", {"text": MORE})
        sock = slow_upload(s.url, f"/v1/sessions/{target['id']}/append", CHAPTER.encode(), 10 ** 6)
        for _ in range(200):  # until the server has read what was sent
            info = s.ok("GET", "/v1/sessions/" + target["id"])
            if info["status"] == "reading" and info["progress"]["tokens_read"] >= 4096:
                break
            time.sleep(0.05)
        assert info["status"] == "reading" and info["progress"]["bytes_total"] == 10 ** 6
        status, _ = s.request("POST", "/v1/completions", {"prompt": "x", "session": target["id"]})
        assert status == 409
        s.kill()
        sock.close()
        s.start()
        info = s.ok("GET", "/v1/sessions/" + target["id"])
        assert info["status"] == "incomplete" and info["tokens"] == len(MORE.encode()), info
        error = expect_error(s, 409, "session_incomplete", "POST", "/v1/completions", {"prompt": "x", "session": target["id"]})
        assert "cut off" in error["message"] or "stopped" in error["message"]
        assert s.complete(session=kept["id"], prompt=" The", max_tokens=16, temperature=0) == answer
        # Appending again completes it.
        s.ok("POST", f"/v1/sessions/{target['id']}/append", {"text": CHAPTER})
        assert s.ok("GET", "/v1/sessions/" + target["id"])["status"] == "ready"
    finally:
        s.stop()


def test_a_damaged_state_file_is_a_server_error_naming_it(tmp_path):
    s = Server(sessions_dir=str(tmp_path / "sessions"))
    try:
        session = s.ok("POST", "/v1/sessions", {"text": CHAPTER[:1000]})
        s.kill()
        path = tmp_path / "sessions" / (session["id"] + ".state")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        s.start()
        error = expect_error(s, 500, "session_damaged", "POST", "/v1/completions", {"prompt": "x", "session": session["id"]})
        assert session["id"] + ".state" in error["message"]
        assert s.ok("GET", "/health")["status"] == "ok"  # and the server goes on
    finally:
        s.stop()


def test_upload_cut_off_by_client_is_incomplete(server):
    target = server.ok("POST", "/v1/sessions", {"text": "before"})
    sock = slow_upload(server.url, f"/v1/sessions/{target['id']}/append", b"a few bytes", 5000)
    time.sleep(0.5)
    sock.close()
    for _ in range(100):
        info = server.ok("GET", "/v1/sessions/" + target["id"])
        if info["status"] != "reading":
            break
        time.sleep(0.05)
    assert info["status"] == "incomplete" and info["tokens"] == len(b"before"), info


# --- concurrency -------------------------------------------------------------------------------------

def test_sixteen_clients_at_once_answer_as_one_by_one(server):
    texts = [BOOK[i * 1500:(i + 1) * 1500] for i in range(16)]
    sessions = [server.ok("POST", "/v1/sessions", {"text": t})["id"] for t in texts]
    ask = lambda i: server.complete(session=sessions[i], prompt="\n", max_tokens=24, temperature=0.8, seed=i)
    alone = [ask(i) for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(ask, range(16)))
    assert together == alone


def test_the_listen_queue_holds_a_burst_of_clients(server):
    # A backlog of 5 (cpp-httplib's default) let a burst of 16 clients overflow the accept queue while
    # the accepting thread waited for a CPU; the kernel then sent SYN cookies and reset a connection.
    if shutil.which("ss") is None:
        pytest.skip("needs ss (iproute2) to read the listening socket's backlog")
    port = server.url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnH", "sport = :" + port], capture_output=True, text=True, check=True).stdout
    backlog = int(out.split()[2])  # State Recv-Q Send-Q ...: a listening socket's Send-Q is its backlog
    assert backlog >= 128, out


def test_a_long_read_does_not_block_completions(server):
    target = server.ok("POST", "/v1/sessions")
    sock = slow_upload(server.url, f"/v1/sessions/{target['id']}/append", BOOK[:150000].encode(), 150000)
    try:
        time.sleep(0.3)
        answer = server.complete(prompt="In the", max_tokens=8, temperature=0)
        info = server.ok("GET", "/v1/sessions/" + target["id"])
        assert answer and info["status"] == "reading", info  # answered while the read went on
    finally:
        sock.close()


def test_help_gives_every_flag_its_default():
    text = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for flag, default in [("--host", "127.0.0.1"), ("--port", "8080"), ("--parallel", "8"), ("--request-timeout", "600"),
                          ("--max-resident-sessions", None), ("--max-tokens", None), ("--read-timeout", None)]:
        line = next((l for l in text.splitlines() if l.strip().startswith(flag + " ")), None)
        assert line is not None, f"{flag} is not in --help"
        shown = re.search(r"=(\S+)", line)
        assert shown, f"{flag} shows no default: {line!r}"
        if default is not None:
            assert shown.group(1) == default, f"{flag}: {line!r}"
