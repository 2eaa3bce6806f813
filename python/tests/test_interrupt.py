"""Ctrl-C during a long call raises KeyboardInterrupt within a second, and the session stays usable."""
import os
import signal
import subprocess
import sys
import time

from conftest import SHIPPED

SCRIPT = r"""
import sys, time
import infini
model = infini.load(sys.argv[1])
session = model.session()
print("ready", flush=True)
started = time.monotonic()
try:
    session.feed("All work and no play. " * 200000)  # 4.4M tokens: minutes
    print("finished", flush=True)
except KeyboardInterrupt:
    print(f"interrupted {time.monotonic():.3f} position {session.position}", flush=True)
    print(session.generate(" and", max_tokens=5, temperature=0), flush=True)
"""


def test_ctrl_c_stops_a_long_feed_within_a_second():
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(SHIPPED)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ})
    assert child.stdout.readline().strip() == "ready"
    time.sleep(2)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    words = out.split()
    assert words[0] == "interrupted", out
    assert float(words[1]) - sent < 1.0, out
    assert 0 < int(words[3]) < 4_400_000, out
    assert len(out.splitlines()) == 2, out  # and the session generates afterwards
