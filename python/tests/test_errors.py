"""Bad input raises infini.Error with the engine's message, and never crashes the interpreter."""
import pytest
import torch

import infini
from conftest import SMALL


def test_a_missing_folder(tmp_path):
    with pytest.raises(infini.Error, match="config.json"):
        infini.load(tmp_path / "nope")


def test_tokens_of_the_wrong_dtype_or_shape(shipped):
    with pytest.raises(infini.Error, match="int64"):
        shipped(torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(infini.Error, match="shape"):
        shipped(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError):
        shipped([[1, 2, 3]])


def test_out_of_range_ids(shipped):
    with pytest.raises(infini.Error, match="outside the vocabulary"):
        shipped(torch.tensor([[1, 2, 256]]))
    session = shipped.session()
    with pytest.raises(infini.Error, match="outside the vocabulary"):
        session.feed([1, -1])
    assert session.position == 0  # nothing was read
    with pytest.raises(infini.Error, match="outside the vocabulary"):
        shipped.tokenizer.decode([300])


def test_a_state_from_another_model(shipped, tmp_path):
    other = infini.Model(SMALL)
    _, state = other(torch.tensor([[1, 2, 3]]))
    with pytest.raises(infini.Error, match="another config"):
        shipped(torch.tensor([[1, 2, 3]]), state)
    session = other.session()
    session.feed("hello")
    session.save(tmp_path / "other.st")
    with pytest.raises(infini.Error, match="another model"):
        infini.Session.load(shipped, tmp_path / "other.st")
    with pytest.raises(infini.Error, match="another model"):
        shipped.session().restore(session.snapshot())
    with pytest.raises(infini.Error, match="holds 1 sequences"):
        other(torch.tensor([[1], [2]]), state)


def test_bad_configs_and_options(shipped):
    with pytest.raises(infini.Error, match="'n_layers'"):
        infini.Model({"n_layers": 10**9})
    with pytest.raises(infini.Error, match="'d_model'"):
        infini.Model({"d_model": "wide"})
    with pytest.raises(infini.Error, match="top_p"):
        shipped.session().generate("x", top_p=0)
    with pytest.raises(infini.Error, match="nothing to continue"):
        shipped.session().generate("")
    with pytest.raises(infini.Error, match="CPU"):
        shipped.to(torch.float64)
