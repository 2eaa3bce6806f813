"""Sessions from Python against the infini command: generation, state files both ways, streaming."""
import torch

import infini
from conftest import SAMPLE, SHIPPED, SMALL


def test_generate_with_a_seed_gives_the_clis_text(shipped, cli):
    prompt = "In the beginning God created"
    for temperature, seed in ((0.0, 1), (0.9, 42)):
        expected = cli("generate", "--model", SHIPPED, "--prompt", prompt, "--tokens", 40, "--temperature",
                       temperature, "--top-k", 20, "--seed", seed, "--threads", 1)
        got = shipped.session().generate(prompt, max_tokens=40, temperature=temperature, top_k=20, seed=seed)
        assert got + "\n" == expected


def test_stop_strings_and_streaming_agree_with_generate(shipped, cli):
    prompt = "And God said, Let there be"
    expected = cli("generate", "--model", SHIPPED, "--prompt", prompt, "--tokens", 60, "--temperature", 0,
                   "--stop", ".", "--threads", 1)
    session = shipped.session()
    whole = session.generate(prompt, max_tokens=60, temperature=0, stop=["."])
    assert whole + "\n" == expected and "." not in whole
    pieces = list(shipped.session().stream(prompt, max_tokens=60, temperature=0, stop="."))
    assert len(pieces) > 1 and "".join(pieces) == whole


def test_a_state_saved_in_python_continues_in_the_cli(shipped, cli, tmp_path):
    session = shipped.session()
    session.feed(SAMPLE.read_text()[:5000])
    session.save(tmp_path / "state.st")
    expected = cli("generate", "--model", SHIPPED, "--state", tmp_path / "state.st", "--tokens", 30,
                   "--temperature", 0, "--threads", 1)
    assert session.generate(max_tokens=30, temperature=0) + "\n" == expected


def test_a_state_the_cli_read_continues_in_python(shipped, cli, tmp_path):
    (tmp_path / "text.txt").write_text(SAMPLE.read_text()[:7000])
    cli("read", "--model", SHIPPED, "--input", tmp_path / "text.txt", "--save-state", tmp_path / "s.st")
    expected = cli("generate", "--model", SHIPPED, "--state", tmp_path / "s.st", "--tokens", 30, "--temperature", 0,
                   "--threads", 1)
    session = infini.Session.load(shipped, tmp_path / "s.st")
    assert session.position == 7000
    assert session.generate(max_tokens=30, temperature=0) + "\n" == expected


def test_snapshots_and_progress(shipped):
    session = shipped.session()
    seen = []
    session.feed(SAMPLE.read_text()[:40000], progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (40000, 40000) and len(seen) == 3
    snapshot = session.snapshot()
    first = session.generate(" And", max_tokens=20, temperature=0.8, seed=5)
    session.restore(snapshot)
    assert session.generate(" And", max_tokens=20, temperature=0.8, seed=5) == first
    assert session.position == 40000 + len(" And") + 20  # bytes: one token each
    assert session.state_bytes < 2_000_000


def test_a_session_state_feeds_the_forward_pass(shipped):
    tokens = torch.tensor([list(SAMPLE.read_bytes()[:600])])
    session = shipped.session()
    session.feed(tokens[0, :500])
    with torch.no_grad():
        logits, _ = shipped(tokens[:, 500:], session.state())
        whole, _ = shipped(tokens)
    assert torch.allclose(logits, whole[:, 500:], rtol=1e-4, atol=1e-4)
