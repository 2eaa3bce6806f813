"""infini.evaluate and infini.passkey return the dicts the command line prints."""
import json

import infini
from conftest import SAMPLE, SHIPPED


def test_passkey_gives_the_clis_cells(shipped, cli):
    expected = json.loads(cli("passkey", "--model", SHIPPED, "--lengths", 3000, "--depths", "0,1", "--trials", 3,
                              "--plot", "", "--json", "--threads", 1))
    seen = []
    got = infini.passkey(shipped, lengths=[3000], depths=[0, 1], trials=3, progress=seen.append)
    for field in ("keys", "answers", "accuracy", "exact_match", "over_long", "key_exact", "prompt_tokens"):
        assert [c[field] for c in got["cells"]] == [c[field] for c in expected["cells"]], field
    assert [c["depth"] for c in seen] == [0, 1]
    assert got["model"] == expected["model"] and got["key_range"] == [1, 50000]


def test_evaluate_reports_progress_and_the_options(shipped, tmp_path):
    (tmp_path / "a.txt").write_bytes(SAMPLE.read_bytes()[:2000])
    (tmp_path / "b.txt").write_bytes(SAMPLE.read_bytes()[5000:6000])
    seen = []
    result = infini.evaluate(shipped, tmp_path, progress=lambda docs, tokens: seen.append((docs, tokens)))
    assert result["documents"] == 2 and result["tokens"] == 1999 + 999
    assert seen[-1] == (2, 1999 + 999)
    forgetful = infini.evaluate(shipped, tmp_path, forget_memory=True, max_tokens=500)
    assert forgetful["forget_memory"] and forgetful["tokens"] == 2 * 499
