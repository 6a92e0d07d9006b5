"""What a backtest returns: statistics, trades, orders, equity, and ways to look at them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.account import Fill, Order, Trade
from tradenn.data.timezones import bar_times, wall_clock


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


# ------------------------------------------------------------------ tables from the account


def account_path(fills: list[Fill], cash: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Units and cash held at each of ``n`` bars' closes, from the fills (step functions)."""
    units = np.zeros(n)
    money = np.full(n, cash)
    if fills:
        bars = np.array([f.bar for f in fills])
        last = np.searchsorted(bars, np.arange(n), side="right") - 1
        filled = last >= 0
        units[filled] = np.array([f.position for f in fills])[last[filled]]
        money[filled] = np.array([f.cash for f in fills])[last[filled]]
    return units, money


_TRADE_COLUMNS = (
    "Size",
    "EntryBar",
    "ExitBar",
    "EntryPrice",
    "ExitPrice",
    "EntryTime",
    "ExitTime",
    "PnL",
    "ReturnPct",
    "Commission",
    "Duration",
    "Tag",
)


def trade_columns(trades: list[Trade], index: pd.DatetimeIndex) -> dict[str, Any]:
    """Closed trades as columns (numpy arrays and indexes) named as in ``Result.trades``: what
    :func:`~tradenn.backtest.stats.compute_stats` reads, without building a DataFrame."""
    if not trades:
        return {}
    size = np.array([t.size for t in trades])
    entry_bar = np.array([t.entry_bar for t in trades])
    exit_bar = np.array([t.exit_bar for t in trades])
    entry_price = np.array([t.entry_price for t in trades])
    exit_price = np.array([t.exit_price for t in trades])
    commission = np.array([t.commission for t in trades])
    entry_time, exit_time = index[entry_bar], index[exit_bar]
    pnl = size * (exit_price - entry_price) - commission
    return {
        "Size": size,
        "EntryBar": entry_bar,
        "ExitBar": exit_bar,
        "EntryPrice": entry_price,
        "ExitPrice": exit_price,
        "EntryTime": entry_time,
        "ExitTime": exit_time,
        "PnL": pnl,
        "ReturnPct": pnl / (np.abs(size) * entry_price),
        "Commission": commission,
        # Wall-clock time: a trade held over a DST change is not an hour longer or shorter.
        "Duration": wall_clock(exit_time) - wall_clock(entry_time),
        "Tag": [t.tag for t in trades],
    }


def trades_frame(
    trades: list[Trade] | dict[str, Any], index: pd.DatetimeIndex | None = None
) -> pd.DataFrame:
    """Closed trades as the ``Result.trades`` table (bars mapped to ``index``), from the
    trades or from their :func:`trade_columns`."""
    columns = trades if isinstance(trades, dict) else trade_columns(trades, index)
    if not columns:
        return pd.DataFrame(columns=list(_TRADE_COLUMNS))
    # One DataFrame from whole columns (column-by-column pandas arithmetic cost milliseconds
    # per backtest, which a sweep pays thousands of times).
    return pd.DataFrame(columns, columns=list(_TRADE_COLUMNS))


def _times(bars: list, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Timestamps of bar positions in the index's zone, NaT where there is none."""
    return bar_times(index, bars)


def orders_frame(orders: list[Order], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Orders as the ``Result.orders`` table (bars mapped to ``index``)."""
    columns = {
        "PlacedTime": _times([o.placed_bar for o in orders], index),
        "Side": ["buy" if o.side > 0 else "sell" for o in orders],
        "Size": [o.size for o in orders],
        "Type": [o.kind for o in orders],
        "Limit": [o.limit for o in orders],
        "Stop": [o.stop for o in orders],
        "SL": [o.sl for o in orders],
        "TP": [o.tp for o in orders],
        "Status": [o.status for o in orders],
        "FillTime": _times([o.fill_bar for o in orders], index),
        "FillPrice": [o.fill_price for o in orders],
        "Reason": [o.reason for o in orders],
        "Tag": [o.tag for o in orders],
    }
    return pd.DataFrame(columns)
