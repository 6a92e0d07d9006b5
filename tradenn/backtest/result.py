"""What a backtest returns: statistics, trades, orders, equity, and ways to look at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Result:
    """The outcome of :meth:`Backtest.run`.

    Attributes
    ----------
    stats : Series
        Every statistic, readable top to bottom (see :mod:`tradenn.backtest.stats`).
    trades : DataFrame
        Closed trades: Size, EntryBar, ExitBar, EntryPrice, ExitPrice, EntryTime, ExitTime, PnL
        (net of commissions), ReturnPct, Commission, Duration, Tag.
    orders : DataFrame
        Every order placed, filled or not, with its status and, when rejected, the reason.
    equity : Series
        Account equity at each bar's close.
    position : Series
        Units held at each bar's close (negative when short).
    diagnostics : dict
        What the strategy reports about itself beyond trading statistics (model strategies:
        out-of-sample forecast quality and training time; see ``Strategy.diagnostics``).
    """

    stats: pd.Series
    trades: pd.DataFrame
    orders: pd.DataFrame
    equity: pd.Series
    position: pd.Series
    data: pd.DataFrame = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    strategy_name: str = ""
    indicators: dict[str, Any] = field(default_factory=dict, repr=False)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The strategy with its parameters, e.g. ``SmaCross(fast=10, slow=20)``."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.strategy_name}({params})"

    def plot(self, path: str | Path | None = None, *, title: str | None = None):
        """Price with entries and exits, equity vs buy & hold, drawdown and position.

        Saves a PNG to ``path`` when given; returns the matplotlib Figure.
        """
        from tradenn.backtest.plotting import plot_result

        return plot_result(self, path, title=title)

    def report(self, directory: str | Path) -> Path:
        """Write a self-contained HTML report plus trades.csv, equity.csv and stats.json."""
        from tradenn.backtest.report import write_report

        return write_report(self, directory)

    def __repr__(self) -> str:
        return f"<Result {self.label}>\n{self.stats.to_string()}"
