"""The model from Python against the C++ engine: logits, the eval loss, gradients, training."""
import json

import torch
import torch.nn.functional as F

import infini
from conftest import SAMPLE, SHIPPED, SMALL, read_raw, sample_tokens


def test_logits_equal_the_engines_bit_for_bit(shipped, probe, tmp_path):
    tokens = torch.cat([sample_tokens(300), sample_tokens(300, offset=5000)])  # (2, 300)
    tokens.numpy().tofile(tmp_path / "tokens.bin")
    probe("logits", SHIPPED, tmp_path / "tokens.bin", 2, 300, tmp_path / "logits.bin")
    with torch.no_grad():
        logits, state = shipped(tokens)
    expected = read_raw(tmp_path / "logits.bin", torch.float32, logits.shape)
    assert logits.dtype == torch.float32 and logits.shape == (2, 300, 256)
    assert torch.equal(logits, expected)
    assert state.position == 300 and state.batch == 2


def test_any_chunking_gives_the_same_logits(shipped):
    tokens = sample_tokens(200)
    with torch.no_grad():
        whole, _ = shipped(tokens)
        first, state = shipped(tokens[:, :77])
        second, _ = shipped(tokens[:, 77:], state)
    assert torch.allclose(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)


def test_the_loss_over_a_file_equals_infini_eval(shipped, cli, tmp_path):
    text = SAMPLE.read_bytes()[:3000]
    (tmp_path / "doc.txt").write_bytes(text)
    expected = json.loads(cli("eval", "--model", SHIPPED, "--data", tmp_path / "doc.txt", "--json", "--threads", 1))
    tokens = torch.tensor(list(text), dtype=torch.int64).unsqueeze(0)
    with torch.no_grad():
        logits, _ = shipped(tokens)
    loss = F.cross_entropy(logits[0, :-1], tokens[0, 1:]).item()
    assert expected["tokens"] == len(text) - 1
    assert abs(loss - expected["loss"]) <= 1e-5 * expected["loss"]
    ours = infini.evaluate(shipped, tmp_path / "doc.txt")
    assert ours["loss"] == expected["loss"] and ours["model"] == str(SHIPPED)


def test_gradients_equal_the_trainers_first_step(probe, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SMALL))
    probe("grads", tmp_path / "config.json", 7, SAMPLE, 2, 48, tmp_path)
    model = infini.load(tmp_path / "model")
    inputs = read_raw(tmp_path / "inputs.bin", torch.int64, (2, 48))
    targets = read_raw(tmp_path / "targets.bin", torch.int64, (2, 48))
    logits, _ = model(inputs)
    loss = F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1), reduction="sum") / targets.numel()
    loss.backward()
    names = json.loads((tmp_path / "grads.json").read_text())
    parameters = dict(model.named_parameters())
    assert names == list(parameters)
    flat = read_raw(tmp_path / "grads.bin", torch.float32, (-1,))
    offset = 0
    for name in names:
        p = parameters[name]
        expected = flat[offset:offset + p.numel()].reshape(p.shape)
        offset += p.numel()
        assert p.grad is not None, name
        assert torch.allclose(p.grad, expected, rtol=0, atol=1e-6), (name, (p.grad - expected).abs().max())
    assert offset == flat.numel()
    # The gradient reaches the memory's gate through the state carried across segments.
    gates = [n for n in names if n.endswith("gate")]
    assert gates and all(parameters[n].grad.abs().sum() > 0 for n in gates)


def test_a_pytorch_loop_trains_it_and_the_cli_loads_the_result(cli, probe, tmp_path):
    torch.manual_seed(0)
    model = infini.Model(SMALL, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.tensor(list(SAMPLE.read_bytes()[:20000]), dtype=torch.int64)
    losses = []
    for step in range(30):
        starts = torch.randint(0, data.numel() - 65, (4,))
        batch = torch.stack([data[s:s + 65] for s in starts])
        state = None
        total = 0.0
        optimizer.zero_grad()
        for half in (batch[:, :33], batch[:, 32:]):  # two chunks, the memory carried, BPTT cut between
            logits, state = model(half[:, :-1], state)
            loss = F.cross_entropy(logits.reshape(-1, 256), half[:, 1:].reshape(-1)) / 2
            loss.backward()
            state = state.detach()
            total += loss.item()
        optimizer.step()
        losses.append(total)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5, losses
    model.save(tmp_path / "trained")
    cli("info", "--model", tmp_path / "trained", "--json")
    tokens = sample_tokens(100, offset=12345)
    tokens.numpy().tofile(tmp_path / "tokens.bin")
    probe("logits", tmp_path / "trained", tmp_path / "tokens.bin", 1, 100, tmp_path / "logits.bin")
    with torch.no_grad():
        logits, _ = model(tokens)
    assert torch.equal(logits, read_raw(tmp_path / "logits.bin", torch.float32, logits.shape))


def test_parameters_are_the_engines_own_tensors(tmp_path):
    model = infini.Model(SMALL, seed=5)
    names = [n for n, _ in model.named_parameters()]
    assert "embed.weight" in names and len(names) == len(set(names))
    assert sum(p.numel() for p in model.parameters()) == model.parameter_count()
    # Changing a tensor in place changes what the engine computes and saves.
    tokens = sample_tokens(20)
    with torch.no_grad():
        before, _ = model(tokens)
        dict(model.named_parameters())["lm_head.weight"].mul_(2)
        after, _ = model(tokens)
    assert not torch.equal(before, after)
    model.save(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(infini.load(tmp_path / "m")(tokens)[0], after)
    assert infini.Model(SMALL, seed=5).identity() != model.identity()
