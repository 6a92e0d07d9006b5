"""Small hand-checkable price frames and a strategy driven by a script of actions."""

from __future__ import annotations

import pandas as pd
import pytest

from tradenn.backtest import Strategy

#          Open   High   Low    Close
BARS = [
    (100.0, 101.0, 99.0, 100.0),  # 0
    (102.0, 104.0, 101.0, 103.0),  # 1
    (103.0, 106.0, 102.0, 105.0),  # 2
    (104.0, 105.0, 98.0, 99.0),  # 3
    (99.0, 100.0, 95.0, 96.0),  # 4
    (97.0, 99.0, 96.0, 98.0),  # 5
]


@pytest.fixture
def bars() -> pd.DataFrame:
    index = pd.bdate_range("2024-01-01", periods=len(BARS), name="Date")
    frame = pd.DataFrame(BARS, index=index, columns=["Open", "High", "Low", "Close"])
    frame["Volume"] = 1000.0
    return frame


def scripted(actions: dict) -> type[Strategy]:
    """A strategy that calls ``actions[bar](self)`` in ``next()`` at the given bars."""

    class Script(Strategy):
        def next(self):
            action = actions.get(len(self.data) - 1)
            if action is not None:
                action(self)

    return Script
