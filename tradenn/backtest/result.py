"""What a backtest returns: statistics, trades, orders, equity, and ways to look at them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn import __version__
from tradenn.data.calendar import bar_label
from tradenn.data.timezones import bar_times


@dataclass(kw_only=True, repr=False)
class ResultBase:
    """What every backtest's result holds, single-asset (:class:`Result`) or portfolio
    (:class:`~tradenn.backtest.portfolio.PortfolioResult`), and the ways to look at it that
    both share: the label, the report folder, the text and Jupyter views.

    Attributes
    ----------
    stats : Series
        Every statistic, readable top to bottom (see :mod:`tradenn.backtest.stats`).
    trades : DataFrame
        Closed trades.
    equity : Series
        Account equity at each bar's close.
    data : DataFrame
        The bars the strategy ran on.
    params : dict
        The strategy's parameter values in this run.
    strategy_name : str
        The strategy class's name.
    diagnostics : dict
        What the strategy reports about itself beyond trading statistics (model strategies:
        out-of-sample forecast quality and training time; see ``Strategy.diagnostics``).
    setup : dict
        How the run was set up, for people (see :func:`describe_setup`).
    """

    stats: pd.Series
    trades: pd.DataFrame
    equity: pd.Series
    data: pd.DataFrame = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    strategy_name: str = ""
    diagnostics: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, str] = field(default_factory=dict, repr=False)
    """How the run was set up, for people: data, cash, costs, fill timing, units mode,
    margin, tradenn version (see :func:`describe_setup`); reports and notebooks show it."""

    @property
    def label(self) -> str:
        """The strategy with its parameters, e.g. ``SmaCross(fast=10, slow=20)``."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.strategy_name}({params})"

    def report(self, directory: str | Path) -> Path:
        """Write a self-contained HTML report plus the data behind it: trades.csv, equity.csv
        and stats.json, and for a portfolio weights.csv and asset_stats.csv (see
        :mod:`tradenn.backtest.report`)."""
        from tradenn.backtest.report import write_report

        return write_report(self, directory)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>\n{self.stats.to_string()}"

    def _repr_html_(self) -> str:
        """Jupyter's view: the setup, the figure and the statistics."""
        from tradenn.backtest.report import html_summary

        return html_summary(self)


@dataclass(kw_only=True, repr=False)
class Result(ResultBase):
    """The outcome of :meth:`Backtest.run`.

    Attributes
    ----------
    stats : Series
        Every statistic, readable top to bottom (see :mod:`tradenn.backtest.stats`).
    trades : DataFrame
        Closed trades: Size, EntryBar, ExitBar, EntryPrice, ExitPrice, SL and TP (the
        stop-loss and take-profit the trade had when it closed, NaN when none), EntryTime,
        ExitTime, PnL (net of commissions), ReturnPct, MAE, MFE, Commission, Duration, Tag.
        ``ReturnPct`` is a **fraction**, not a percentage, despite its name (kept from
        backtesting.py): ``PnL / (|Size| x EntryPrice)``, so 0.05 is a 5% gain. ``MAE`` and
        ``MFE`` (maximum adverse and favourable excursion, see :func:`excursions`) are
        fractions of ``EntryPrice`` too, ``MAE <= 0 <= MFE``.
    orders : DataFrame
        Every order placed, filled or not, with its status and, when rejected, the reason.
    equity : Series
        Account equity at each bar's close.
    position : Series
        Units held at each bar's close (negative when short).
    indicators : dict
        Every indicator's values, by name.

    Data, parameters, diagnostics and setup: see :class:`ResultBase`.
    """

    position: pd.Series
    indicators: dict[str, Any] = field(default_factory=dict, repr=False)
    order_table: Callable[[], pd.DataFrame] = field(default=pd.DataFrame, repr=False, compare=False)
    """Builds :attr:`orders` when it is first read (picklable, e.g. a ``functools.partial``)."""

    @functools.cached_property
    def orders(self) -> pd.DataFrame:
        """Every order placed, filled or not, with its status and, when rejected, the reason;
        built when first read (a long run's order table can cost more than its statistics)."""
        return self.order_table()

    def plot(
        self, path: str | Path | None = None, *, title: str | None = None, interactive: bool = False
    ):
        """Price with entries and exits, equity vs buy & hold, drawdown and position.

        Saves a PNG to ``path`` when given; returns the matplotlib Figure. With
        ``interactive=True`` it draws the same panels as a self-contained HTML page instead
        (zoom and pan linked across panels, tooltips on trades; needs ``tradenn[plot]``, see
        :func:`~tradenn.backtest.interactive.interactive_chart`), saves it to ``path`` when
        given and returns its HTML.
        """
        if interactive:
            from tradenn.backtest.interactive import interactive_chart

            return interactive_chart(self, path, title=title)
        from tradenn.backtest.plotting import plot_result

        return plot_result(self, path, title=title)


def _money(value: float) -> str:
    return f"{value:,.2f}".removesuffix(".00")


def _costs(value: Any, text) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{asset} {text(v)}" for asset, v in value.items())
    return text(value)


def describe_setup(
    settings: Any,
    data: pd.DataFrame,
    *,
    source: str | None = None,
    risk_free_rate: float = 0.0,
    assets: list[str] | None = None,
) -> dict[str, str]:
    """How a run was set up, as ``{label: text}`` for a report's header and a notebook: the
    data (source, first and last bar, bar count and size), cash, every cost, when orders fill,
    whole or fractional units, margin and leverage, exclusive orders, the risk-free rate and
    the tradenn version. ``settings`` is a :class:`~tradenn.account.Settings`."""
    index = data.index if isinstance(data.index, pd.DatetimeIndex) else pd.DatetimeIndex(data.index)
    source = source or data.attrs.get("source") or "a DataFrame"
    first, last = (str(t).removesuffix(" 00:00:00") for t in (index[0], index[-1]))
    setup = {"Data": f"{source}: {first} .. {last}, {len(index):,} {bar_label(index)} bars"}
    if assets:
        setup["Assets"] = ", ".join(assets)
    setup["Cash"] = _money(settings.cash)
    setup["Commission"] = _costs(
        settings.commission, lambda v: f"{100 * v:g}% of traded value" if v else "none"
    ) + (
        ""
        if not settings.fixed_commission
        else f" + {_costs(settings.fixed_commission, _money)} per fill"
    )
    setup["Spread"] = _costs(
        settings.spread, lambda v: f"{100 * v:g}% (half on each side)" if v else "none"
    )
    setup["Slippage"] = _costs(settings.slippage_bps, lambda v: f"{v:g} bps" if v else "none")
    setup["Fills"] = (
        "market orders at the signal bar's close"
        if settings.trade_on_close
        else "market orders at the next bar's open"
    )
    setup["Units"] = "fractional" if settings.fractional else "whole"
    margin = settings.margin
    setup["Margin"] = f"{margin:g}" + (" (no leverage)" if margin == 1 else f" ({1 / margin:g}x)")
    if getattr(settings, "max_leverage", None) is not None:
        setup["Max. leverage"] = f"{settings.max_leverage:g}x"
    if settings.exclusive_orders:
        setup["Orders"] = "exclusive (a new order cancels pending ones and closes the position)"
    setup["Risk-free rate"] = f"{100 * risk_free_rate:g}% a year"
    setup["tradenn"] = __version__
    return setup


# ------------------------------------------------------------------ tables from the account


def account_path(fills: np.ndarray, cash: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Units and cash held at each of ``n`` bars' closes from the fills' rows of bar, units
    held after and cash after, in order (:attr:`Record.fills <tradenn.account.Record>`): step
    functions that start flat with ``cash``."""
    if not len(fills):
        return np.zeros(n), np.full(n, float(cash))
    bars = fills[:, 0].astype(np.int64)
    # After the last fill of each bar: each value holds from its bar to the next fill's.
    last = np.flatnonzero(np.diff(bars, append=n))
    spans = np.diff(bars[last], append=n)
    counts = np.concatenate(([bars[0]], spans))  # bars before the first fill, then each span
    units = np.repeat(np.concatenate(([0.0], fills[last, 1])), counts)
    money = np.repeat(np.concatenate(([float(cash)], fills[last, 2])), counts)
    return units, money


_TRADE_COLUMNS = (
    "Size",
    "EntryBar",
    "ExitBar",
    "EntryPrice",
    "ExitPrice",
    "SL",
    "TP",
    "EntryTime",
    "ExitTime",
    "PnL",
    "ReturnPct",
    "MAE",
    "MFE",
    "Commission",
    "Duration",
    "Tag",
)


def trade_columns(trades: np.ndarray, tags: list, clock: np.ndarray) -> dict[str, Any]:
    """A run's closed trades (the rows and tags of :attr:`Record.trades
    <tradenn.account.Record>`) as numpy columns named as in ``Result.trades``, the times left
    out: what
    :func:`~tradenn.backtest.stats.compute_stats` reads. ``clock`` is the index's wall-clock
    time per bar (a ``datetime64`` array, :func:`~tradenn.data.timezones.wall_clock`)."""
    if not len(trades):
        return {}
    size, entry_price, exit_price, commission, sl, tp = (trades[:, k] for k in (0, 3, 4, 5, 6, 7))
    entry_bar, exit_bar = trades[:, 1].astype(np.int64), trades[:, 2].astype(np.int64)
    pnl = size * (exit_price - entry_price) - commission
    return {
        "Size": size,
        "EntryBar": entry_bar,
        "ExitBar": exit_bar,
        "EntryPrice": entry_price,
        "ExitPrice": exit_price,
        "SL": sl,
        "TP": tp,
        "PnL": pnl,
        "ReturnPct": pnl / (np.abs(size) * entry_price),
        "Commission": commission,
        # Wall-clock time: a trade held over a DST change is not an hour longer or shorter.
        "Duration": clock[exit_bar] - clock[entry_bar],
        "Tag": tags,
    }


def excursions(
    size: np.ndarray,
    entry_bar: np.ndarray,
    exit_bar: np.ndarray,
    entry_price: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum adverse and favourable excursion (MAE, MFE) of each trade, as fractions of its
    entry price.

    Over the bars ``entry_bar .. exit_bar``, both included, with ``L`` the lowest ``low``,
    ``H`` the highest ``high`` and ``P`` the entry price (the fill price, costs included)::

        long:  MAE = min(0, L / P - 1)    MFE = max(0, H / P - 1)
        short: MAE = min(0, 1 - H / P)    MFE = max(0, 1 - L / P)

    so ``MAE <= 0 <= MFE`` (the entry price is a point of the path: a trade that never moved
    against the position has MAE 0). A trade opened and closed in one bar uses that bar's
    range. A bar's range cannot be split at a fill inside it, so the entry bar's and the exit
    bar's whole ranges count: a move before an entry at the close, or after an exit at the
    open, is included. NaN bars (an asset without a bar on a portfolio date) are skipped.

    Parameters
    ----------
    size, entry_bar, exit_bar, entry_price : ndarray, shape (trades,)
        Signed units (negative short), bar positions and entry prices of the trades.
    high, low : ndarray, shape (bars,)
        The bars' highs and lows.
    """
    if not len(size):
        return np.empty(0), np.empty(0)
    # One reduceat over the interleaved bounds [entry_0, exit_0 + 1, entry_1, ...]: its even
    # results reduce each trade's bars. A bound must be below n, so a trade that lives to the
    # last bar stops before it and takes the last bar in afterwards.
    n = len(low)
    to_end = exit_bar == n - 1
    bounds = np.empty(2 * len(size), dtype=np.int64)
    bounds[0::2], bounds[1::2] = entry_bar, np.where(to_end, n - 1, exit_bar + 1)
    lowest = np.fmin.reduceat(low, bounds)[0::2]
    highest = np.fmax.reduceat(high, bounds)[0::2]
    lowest[to_end] = np.fmin(lowest[to_end], low[-1])
    highest[to_end] = np.fmax(highest[to_end], high[-1])
    long = size > 0
    sign = np.where(long, 1.0, -1.0)
    adverse = sign * (np.where(long, lowest, highest) / entry_price - 1.0)
    favourable = sign * (np.where(long, highest, lowest) / entry_price - 1.0)
    return np.minimum(adverse, 0.0) + 0.0, np.maximum(favourable, 0.0) + 0.0  # + 0.0: no -0.0


def trades_frame(
    columns: dict[str, Any], index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray
) -> pd.DataFrame:
    """Closed trades as the ``Result.trades`` table, from their :func:`trade_columns` (bars
    mapped to ``index`` for the entry and exit times) and the bars' ``high`` and ``low`` (for
    :func:`excursions`)."""
    if not columns:
        return pd.DataFrame(columns=list(_TRADE_COLUMNS))
    times = {"EntryTime": index[columns["EntryBar"]], "ExitTime": index[columns["ExitBar"]]}
    mae, mfe = excursions(
        columns["Size"],
        columns["EntryBar"],
        columns["ExitBar"],
        columns["EntryPrice"],
        np.asarray(high, dtype=np.float64),
        np.asarray(low, dtype=np.float64),
    )
    # One DataFrame from whole columns (column-by-column pandas arithmetic cost milliseconds
    # per backtest, which a sweep pays thousands of times).
    return pd.DataFrame({**columns, **times, "MAE": mae, "MFE": mfe}, columns=list(_TRADE_COLUMNS))


def _times(bars: list, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Timestamps of bar positions in the index's zone, NaT where there is none."""
    return bar_times(index, bars)


def orders_frame(orders: dict[str, Any], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Orders (:attr:`Record.orders <tradenn.account.Record>`, columns named by
    :data:`~tradenn.account.ORDER_FIELDS`) as the ``Result.orders`` table (bars mapped to
    ``index``)."""
    return pd.DataFrame(
        {
            "PlacedTime": _times(orders["placed_bar"], index),
            "Side": np.where(np.asarray(orders["side"]) > 0, "buy", "sell").astype(object),
            "Size": orders["size"],
            "Type": orders["kind"],
            "Limit": orders["limit"],
            "Stop": orders["stop"],
            "SL": orders["sl"],
            "TP": orders["tp"],
            "Status": orders["status"],
            "FillTime": _times(orders["fill_bar"], index),
            "FillPrice": orders["fill_price"],
            "Reason": orders["reason"],
            "Tag": orders["tag"],
        }
    )
