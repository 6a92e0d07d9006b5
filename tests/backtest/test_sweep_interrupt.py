"""A sweep stopped by Ctrl-C or SIGTERM: the workers stop at once, the finished rows are kept
and printed, the exit code is 130. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tradenn

SLOW = '''
import os, time
from tradenn.backtest import Strategy

class Slow(Strategy):
    """Long above the window's mean; each call takes a while and leaves its pid in a file."""
    window = 10

    def positions(self, data):
        open(os.path.join(os.environ["PIDS"], str(os.getpid())), "w").close()
        time.sleep(0.25)
        close = data["Close"]
        return (close > close.rolling(self.window).mean()).astype(float)
'''


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_sweep_keeps_its_rows_and_leaves_no_worker(sig, tmp_path):
    strategy = tmp_path / "slow.py"
    strategy.write_text(SLOW)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = dict(os.environ, PIDS=str(pids), PYTHONPATH=str(Path(tradenn.__file__).parents[1]))
    argv = [sys.executable, "-m", "tradenn", "optimize", f"{strategy}:Slow", "--data", "SPX",
            "--grid", "window=5:200:1", "--jobs", "2", "--quiet"]  # fmt: skip
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(os.listdir(pids)) < 2 and time.monotonic() < deadline:  # the 2 workers
        time.sleep(0.1)
    time.sleep(2.0)  # some rows finish
    began = time.monotonic()
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert time.monotonic() - began < 10
    assert process.returncode == 130, err
    assert "INTERRUPTED" in out and "combinations ran" in out, err
    assert "tradenn: interrupted:" in err and "Traceback" not in err
    workers = [int(name) for name in os.listdir(pids) if int(name) != process.pid]
    assert workers
    time.sleep(0.5)
    assert not [pid for pid in workers if _alive(pid)]
