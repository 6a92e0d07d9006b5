"""Crash safety: a run killed anywhere (SIGKILL, even inside a bar's transaction) and restarted
gives exactly the orders, fills and equity of an uninterrupted run; SIGTERM stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from tradenn import data
from tradenn.data.synthetic import gbm
from tradenn.live import Ledger, PaperTrader, SimulatedBroker

from .support import FakeFeed, command, crash_hook

PARAMS = {"fast": 3, "slow": 8}
COSTS = {"commission": 0.001, "slippage_bps": 2.0}
PHASES = ("before", "mid", "after")


def _csv(tmp_path: Path, n: int) -> tuple[Path, pd.DataFrame]:
    path = tmp_path / "prices.csv"
    frame = gbm(n, sigma=0.4, seed=11)[["Open", "High", "Low", "Close", "Volume"]]
    frame.to_csv(path, index_label="Date")
    return path, data.load(path)[["Open", "High", "Low", "Close", "Volume"]]


def _run_in_process(frame: pd.DataFrame, path: Path, hook: str | None = None) -> None:
    with Ledger(path) as ledger:
        PaperTrader(
            load_strategy("sma_cross"),
            lambda: SimulatedBroker(10_000.0, **COSTS),
            ledger,
            FakeFeed(frame),
            params=PARAMS,
            on_step=None if hook is None else crash_hook(hook),
        ).run()


def _contents(path: Path) -> tuple:
    with Ledger(path) as ledger:
        bars = ledger.bars()
        return (
            ledger.rows("orders"),
            ledger.rows("fills"),
            ledger.equity().to_dict("list"),
            bars.index.tolist(),
            ledger.last()["equity"],
        )


def _kill_points(n_bars: int, count: int, seed: int) -> list[tuple[int, str]]:
    """``count`` distinct (bar, phase) points in the order a run reaches them; the first bar's
    transaction is always one of them."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(n_bars * len(PHASES), size=count - 1, replace=False)
    points = {(0, "mid")} | {(int(p) // 3, PHASES[int(p) % 3]) for p in picks}
    ordered = sorted(points, key=lambda p: (p[0], PHASES.index(p[1])))
    return ordered[:count]


def _bars_after_kill(bar: int, phase: str) -> int:
    return bar + 1 if phase == "after" else bar


def test_sigkill_at_20_points_inside_and_around_transactions_changes_nothing(tmp_path):
    """Forked children (the whole loop, killed for real) keep the default run fast."""
    _, frame = _csv(tmp_path, 120)
    _run_in_process(frame, tmp_path / "whole.db")
    path = tmp_path / "killed.db"
    points = _kill_points(len(frame), 20, seed=1)
    assert len(points) == 20 and sum(p == "mid" for _, p in points) >= 5
    for bar, phase in points:
        pid = os.fork()
        if pid == 0:  # the child: run until the hook kills it
            try:
                _run_in_process(frame, path, f"kill-{phase}@{bar}")
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (bar, phase)
        with Ledger(path) as ledger:
            assert ledger.counts()["bars"] == _bars_after_kill(bar, phase), (bar, phase)
    _run_in_process(frame, path)
    assert _contents(path) == _contents(tmp_path / "whole.db")


def _cli(csv: Path, ledger: Path, hook: str | None = None, **popen) -> subprocess.Popen:
    """`tradenn paper run ...` in a fresh interpreter, as a user runs it, with ``hook``."""
    argv = ["run", "sma_cross", "--feed", f"replay:{csv}", "--ledger", str(ledger), "--quiet"]
    argv += ["--commission", str(COSTS["commission"]), "--slippage", str(COSTS["slippage_bps"])]
    argv += [f"--param=fast={PARAMS['fast']}", f"--param=slow={PARAMS['slow']}"]
    args, env = command("tradenn.live.commands", argv, hook)
    return subprocess.Popen(args, env=env, **popen)


def _crash_and_resume_via_cli(tmp_path: Path, n_bars: int, kills: int, seed: int) -> None:
    csv, frame = _csv(tmp_path, n_bars)
    _run_in_process(frame, tmp_path / "whole.db")
    path = tmp_path / "killed.db"
    for bar, phase in _kill_points(n_bars, kills, seed):
        process = _cli(csv, path, f"kill-{phase}@{bar}", stdout=subprocess.DEVNULL)
        assert process.wait(timeout=120) == -signal.SIGKILL, (bar, phase)
        with Ledger(path) as ledger:
            assert ledger.counts()["bars"] == _bars_after_kill(bar, phase)
    process = _cli(csv, path, stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    assert _contents(path) == _contents(tmp_path / "whole.db")


def test_the_cli_killed_with_sigkill_resumes_to_the_same_result(tmp_path):
    _crash_and_resume_via_cli(tmp_path, 80, 3, seed=2)


@pytest.mark.slow
def test_the_cli_killed_at_30_random_points_of_300_bars_resumes_to_the_same_result(tmp_path):
    _crash_and_resume_via_cli(tmp_path, 300, 30, seed=3)


def test_sigterm_stops_after_the_current_bar_with_exit_code_0_and_resumes(tmp_path):
    csv, frame = _csv(tmp_path, 80)
    _run_in_process(frame, tmp_path / "whole.db")
    path = tmp_path / "paper.db"
    process = _cli(csv, path, "pause@40", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    assert "paused after bar 40" in line
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert out.startswith("stopped: 41 new bars")
    with Ledger(path) as ledger:
        assert ledger.counts()["bars"] == 41
    resumed = _cli(csv, path, stdout=subprocess.PIPE, text=True)
    out, _ = resumed.communicate(timeout=60)
    assert resumed.returncode == 0 and out.startswith("feed ended: 39 new bars after 41 recorded")
    assert _contents(path) == _contents(tmp_path / "whole.db")
