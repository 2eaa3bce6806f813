"""Real clients against `infini serve`: the official `openai` npm package (pinned in
node/package-lock.json, installed with `npm ci`) and the web page in Debian's headless Chromium,
driven by playwright-core. Their answers must equal the CLI's."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from serving import MODEL, Server, cli, cli_generate

HERE = os.path.dirname(os.path.abspath(__file__))
# Where the npm packages go: the build folder (never the source tree).
NODE_DIR = os.environ.get("INFINI_NODE_DIR", os.path.join(HERE, "..", "..", "build", "serve-node"))
ARTIFACTS = os.environ.get("INFINI_ARTIFACTS", os.path.join(HERE, "..", "..", "build", "test-artifacts"))


@pytest.fixture(scope="module")
def node():
    """The node scripts beside their packages, installed with `npm ci` when the lockfile changed."""
    for tool in ["node", "npm"]:
        assert shutil.which(tool), f"{tool} is missing: run scripts/install-deps.sh --tests"
    os.makedirs(NODE_DIR, exist_ok=True)
    for name in ["package.json", "package-lock.json", "openai_client.mjs", "browser.mjs"]:
        shutil.copy(os.path.join(HERE, "node", name), NODE_DIR)
    with open(os.path.join(HERE, "node", "package-lock.json"), "rb") as f:
        lock = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(NODE_DIR, "node_modules", ".installed-from")
    if not os.path.exists(stamp) or open(stamp).read() != lock:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True)
        with open(stamp, "w") as f:
            f.write(lock)
    return NODE_DIR


def run_node(node_dir, *args):
    out = subprocess.run(["node", *args], cwd=node_dir, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("api_key", [None, "k3y-for-the-client"])
def test_openai_package(node, api_key):
    s = Server(*(["--api-key", api_key] if api_key else []))
    try:
        prompt = "And God said, Let there be light"
        settings = dict(prompt=prompt, max_tokens=40, temperature=0.8, seed=7, stop=["\n\n"])
        if api_key:
            settings["api_key"] = api_key
        got = run_node(node, "openai_client.mjs", s.url, json.dumps(settings))
        expected = cli_generate(prompt, tokens=40, temperature=0.8, seed=7, extra=["--stop", "\n\n"])
        assert got["model"] == os.path.basename(MODEL.rstrip("/"))
        assert got["text"] == expected and got["streamed"] == expected
        assert got["finish_reason"] == got["stream_finish_reason"] in ("length", "stop")
        assert got["chunks"] >= 2
        assert got["usage"]["prompt_tokens"] == len(prompt.encode())
    finally:
        s.stop()


def passkey_document(key, fillers_before=40, fillers_after=40):
    """A document like `infini passkey`'s prompts, without the question (docs/PASSKEY.md)."""
    filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    intro = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
             "I will quiz you about the important information there.")
    return (intro + "\n" + " ".join([filler] * fillers_before) + "\n" +
            f"The pass key is {key}. Remember it. {key} is the pass key.\n" +
            " ".join([filler] * fillers_after) + "\n")


def test_web_page_in_chromium(node, tmp_path):
    assert os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")), \
        "chromium is missing: run scripts/install-deps.sh --tests"
    text = passkey_document(48213)
    book = tmp_path / "book.txt"
    book.write_text(text)
    question = "What is the pass key? The pass key is"
    state = str(tmp_path / "book.state")
    cli("read", "--model", MODEL, "--input", str(book), "--save-state", state)
    expected = cli_generate(question, state=state, tokens=48, temperature=0)

    s = Server()
    try:
        os.makedirs(ARTIFACTS, exist_ok=True)
        screenshot = os.path.join(ARTIFACTS, "serve-web-page.png")
        got = run_node(node, "browser.mjs", s.url, str(book), question, screenshot)
        assert got["answer"] == expected, got
        assert f"{len(text.encode()):,} tokens read" in got["reading"], got["reading"]
        session = s.ok("GET", "/v1/sessions/" + got["session"])
        assert session["tokens"] == len(text.encode()) and session["status"] == "ready"
        assert os.path.getsize(screenshot) > 10000
    finally:
        s.stop()
