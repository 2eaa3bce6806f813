"""Fixtures for the Python package's tests (run by tests/python_package.sh, so by ctest and CI).

The C++ side of each comparison comes from the `infini` command (INFINI_BIN) and from api_probe
(INFINI_PROBE, tests/api_probe.cpp), each its own process.
"""
import os
import subprocess
from pathlib import Path

import pytest
import torch

import infini

SOURCE = Path(os.environ.get("INFINI_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHIPPED = SOURCE / "models" / "passkey-infini-delta"
SAMPLE = SOURCE / "data" / "sample" / "kjv-genesis-exodus.txt"
# A small byte-level model: seconds to train, every code path of the big one.
SMALL = {"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_key": 8, "d_value": 8, "d_ff": 64,
         "segment_len": 16, "memory": "infini-delta"}


def _runner(variable):
    """Runs the program INFINI_BIN or INFINI_PROBE names; returns its stdout, or fails with its stderr."""
    binary = os.environ.get(variable)
    if not binary:
        pytest.skip(f"{variable} is not set (tests/python_package.sh sets it)")

    def run(*args):
        done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, f"{binary} {' '.join(map(str, args))}: {done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def cli():
    return _runner("INFINI_BIN")


@pytest.fixture(scope="session")
def probe():
    return _runner("INFINI_PROBE")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    # As api_probe: one thread, so that both sides sum in one order.
    infini.set_threads(1)


@pytest.fixture(scope="session")
def shipped():
    return infini.load(SHIPPED)


def sample_tokens(n, offset=0):
    """n bytes of the sample text as a (1, n) LongTensor."""
    data = SAMPLE.read_bytes()[offset:offset + n]
    return torch.tensor(list(data), dtype=torch.int64).unsqueeze(0)


def read_raw(path, dtype, shape):
    return torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=dtype).reshape(shape)
