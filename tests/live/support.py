"""What the paper-loop and feed tests share: a feed that replays a frame, a frame's bars as
plain tuples, and crash-test hooks for the loop, injected through ``PaperTrader(on_step=...)``.

A hook is written ``ACTION@N``:

* ``kill-before@N``, ``kill-mid@N``, ``kill-after@N``: SIGKILL the process before, inside or
  after bar N's ledger transaction;
* ``kill-saved@N``: SIGKILL it once bar N's model file is written, before its transaction;
* ``pause@N``: after bar N, wait (up to 60 s) for the run to be told to stop.

A test gives :func:`crash_hook` to a ``PaperTrader`` it builds, or runs the command line in a
fresh interpreter with :data:`RUNNER`, which installs the hook named by :data:`HOOK_ENV`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from tradenn.live import Bar


class FakeFeed:
    """Replays a frame: the bars strictly after ``after``; with ``stop_after=k`` it sets the
    stop event while the k-th bar is being processed (as a signal handler would);
    ``history(n)`` is the first ``n`` bars."""

    def __init__(self, frame: pd.DataFrame, name: str = "replay:TEST", stop_after=None):
        self.frame, self.name, self.stop_after = frame, name, stop_after

    def bars(self, after, stop: threading.Event) -> Iterator[Bar]:
        frame = self.frame if after is None else self.frame[self.frame.index > after]
        for k, (time, row) in enumerate(
            zip(frame.index, frame.itertuples(index=False), strict=True)
        ):
            if stop.is_set():
                return
            if self.stop_after is not None and k + 1 == self.stop_after:
                stop.set()
            yield Bar(time, row.Open, row.High, row.Low, row.Close, row.Volume)

    def history(self, n: int, stop=None) -> pd.DataFrame:
        return self.frame.iloc[:n]


# the minute clock the feed tests' bars start on
T0 = pd.Timestamp("2024-03-04 09:30")
MINUTE = pd.Timedelta(minutes=1)


def bar_rows(frame: pd.DataFrame) -> list[tuple]:
    """The frame's bars as plain tuples, read straight from its columns.

    Parameters
    ----------
    frame : pandas.DataFrame
        A price frame (Open, High, Low, Close, Volume).

    Returns
    -------
    list of tuple
        ``(time, open, high, low, close, volume)`` per bar, in order.
    """
    return [
        (t, r.Open, r.High, r.Low, r.Close, r.Volume)
        for t, r in zip(frame.index, frame.itertuples(), strict=True)
    ]


HOOK_ENV = "TRADENN_TEST_CRASH_HOOK"
ACTIONS = ("kill-before", "kill-mid", "kill-after", "kill-saved", "pause")

# ``python -c RUNNER HOOKS_FILE MODULE ARGS...``: ``MODULE.main(ARGS)`` with the hook installed.
RUNNER = """
import importlib, runpy, sys
runpy.run_path(sys.argv[1])["install_from_env"]()
sys.exit(importlib.import_module(sys.argv[2]).main(sys.argv[3:]))
"""
HOOKS_FILE = str(Path(__file__).resolve())


def crash_hook(text: str) -> Callable[[str, int, threading.Event], None]:
    """The ``on_step`` callback that carries out hook ``text`` (e.g. ``kill-mid@7``)."""
    action, _, bar = text.partition("@")
    if action not in ACTIONS or not bar.isdigit():
        raise ValueError(f"crash hook {text!r}: expected {'|'.join(ACTIONS)}@N")
    target = int(bar)

    def on_step(phase: str, seq: int, stop: threading.Event) -> None:
        if seq != target:
            return
        if action == f"kill-{phase}":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "pause" and phase == "after":
            print(f"tradenn-test-hook: paused after bar {seq}", file=sys.stderr, flush=True)
            stop.wait(60)

    return on_step


def install_from_env() -> None:
    """Make every ``PaperTrader`` built from now on in this process use the hook that
    :data:`HOOK_ENV` names (nothing when it is unset)."""
    text = os.environ.get(HOOK_ENV)
    if not text:
        return
    from tradenn.live import loop

    hook = crash_hook(text)
    init = loop.PaperTrader.__init__

    def with_hook(self, *args, **kwargs):
        kwargs.setdefault("on_step", hook)
        init(self, *args, **kwargs)

    loop.PaperTrader.__init__ = with_hook


def command(module: str, argv: list[str], hook: str | None = None) -> tuple[list[str], dict]:
    """The argv and environment that run ``module.main(argv)`` in a fresh interpreter with
    ``hook`` installed (the repository on ``PYTHONPATH``)."""
    import tradenn

    env = dict(os.environ, PYTHONPATH=str(Path(tradenn.__file__).parents[1]))
    env.pop(HOOK_ENV, None)
    if hook:
        env[HOOK_ENV] = hook
    return [sys.executable, "-c", RUNNER, HOOKS_FILE, module, *argv], env
