"""The picture of a backtest: price and trades, equity against buy & hold, drawdown and position.

:func:`plot_result` draws on a bare :class:`matplotlib.figure.Figure` with the Agg canvas: it
never imports ``pyplot``, never changes the global backend and never opens a window, so it works
the same on a headless server, in a test and in a notebook (which displays the returned figure).

Large backtests stay fast: each line is cut to at most about 5,000 points (the price, drawdown
and position keep each bucket's minimum and maximum so no spike disappears; the equity curves keep
each bucket's last value) and at most about 2,000 trade markers are drawn (an evenly spaced subset
of the trades, said so in the legend).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tradenn.backtest.stats import drawdown
from tradenn.data.calendar import bar_label
from tradenn.data.timezones import wall_clock

__all__ = ["MAX_MARKERS", "MAX_POINTS", "extremes", "plot_result"]

MAX_POINTS = 5_000
"""Most points drawn per line."""
MAX_MARKERS = 2_000
"""Most trade markers drawn (entries plus exits)."""

LOG_SCALE_RATIO = 20.0
"""Price and equity axes go logarithmic when the largest value exceeds the smallest this much."""

FIGSIZE = (12.0, 9.0)
DPI = 110

_GREEN, _RED, _BLUE, _GREY = "#1a9641", "#d7191c", "#2c7bb6", "#7f7f7f"


def time_axis(index: pd.Index) -> np.ndarray:
    """The x values of a time axis: wall-clock time in the data's own zone (matplotlib would
    otherwise draw tz-aware times in UTC)."""
    return wall_clock(pd.DatetimeIndex(index)).to_numpy()


def _bucket_size(n: int, points_per_bucket: int) -> int:
    return max(1, math.ceil(n / (MAX_POINTS // points_per_bucket)))


def extremes(values: np.ndarray) -> np.ndarray:
    """Positions of at most about :data:`MAX_POINTS` of ``values`` that draw the same line at
    screen resolution: the first, the last and each bucket's minimum and maximum.

    Parameters
    ----------
    values : ndarray, shape (n,)
        A line's values; NaN (an indicator's warm-up) is a bucket's extreme only when the whole
        bucket is NaN, which so keeps its gap.

    Returns
    -------
    ndarray of int, shape (m,)
        Increasing positions; all of ``range(n)`` when ``n <= MAX_POINTS``.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n <= MAX_POINTS:
        return np.arange(n)
    size = _bucket_size(n, 2)
    buckets = math.ceil(n / size)
    padded = np.pad(values, (0, buckets * size - n), mode="edge").reshape(buckets, size)
    missing = np.isnan(padded)
    low = np.argmin(np.where(missing, np.inf, padded), axis=1)
    high = np.argmax(np.where(missing, -np.inf, padded), axis=1)
    base = np.arange(buckets) * size
    picked = np.concatenate(([0], low + base, high + base, [n - 1]))
    return np.unique(np.minimum(picked, n - 1))


def _minmax(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """About MAX_POINTS points: the first and last bar and each bucket's minimum and maximum
    (see :func:`extremes`)."""
    if len(y) <= MAX_POINTS:
        return x, y
    idx = extremes(y)
    return x[idx], y[idx]


def thin_last(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_POINTS points: the first bar, then each bucket's last bar."""
    n = len(y)
    if n <= MAX_POINTS:
        return x, y
    size = _bucket_size(n, 1)
    idx = np.unique(np.concatenate(([0], np.arange(size - 1, n, size), [n - 1])))
    return x[idx], y[idx]


def _log_if_wide(ax, *series: np.ndarray) -> bool:
    """Log scale for positive series spanning more than 20x (a century of compounding)."""
    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in series])
    values = values[~np.isnan(values)]
    if len(values) == 0 or values.min() <= 0 or values.max() / values.min() <= LOG_SCALE_RATIO:
        return False
    ax.set_yscale("log")
    return True


def _number(stats: pd.Series, key: str, fmt: str) -> str:
    value = stats.get(key, float("nan")) if stats is not None else float("nan")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1e6 and not fmt.endswith(".0f"):
        return format(value, "+.3g" if fmt.startswith("+") else ".3g")  # no 40-digit titles
    return format(value, fmt)


def _title(result, title: str | None, index: pd.DatetimeIndex) -> str:
    stats = getattr(result, "stats", None)
    name = title if title is not None else str(getattr(result, "strategy_name", "") or "Backtest")
    trades = _number(stats, "# Trades", ",.0f")
    summary = (
        f"Return {_number(stats, 'Return [%]', '+,.1f')}%   ·   "
        f"Sharpe {_number(stats, 'Sharpe Ratio', '.2f')}   ·   "
        f"Max DD {_number(stats, 'Max. Drawdown [%]', '.1f')}%   ·   "
        f"{trades} trade{'' if trades == '1' else 's'}"
    )
    if len(index):
        span = (
            f"{index[0]:%Y-%m-%d} to {index[-1]:%Y-%m-%d}, {len(index):,} {bar_label(index)} bars"
        )
        summary = f"{summary}   ({span})"
    return f"{name}\n{summary}".replace("$", r"\$")  # a "$" must not start mathtext


def _trade_markers(ax, trades: pd.DataFrame | None) -> None:
    needed = {"Size", "EntryTime", "EntryPrice", "ExitTime", "ExitPrice"}
    if trades is None or len(trades) == 0 or not needed <= set(trades.columns):
        return
    total = len(trades)
    shown = trades
    if 2 * total > MAX_MARKERS:
        keep = np.unique(np.linspace(0, total - 1, MAX_MARKERS // 2).round().astype(np.int64))
        shown = trades.iloc[keep]
    note = f" ({len(shown):,} of {total:,} trades shown)" if len(shown) < total else ""
    size = shown["Size"].to_numpy(dtype=np.float64)
    entry_t, exit_t = time_axis(shown["EntryTime"]), time_axis(shown["ExitTime"])
    entry_p = shown["EntryPrice"].to_numpy(dtype=np.float64)
    exit_p = shown["ExitPrice"].to_numpy(dtype=np.float64)
    marker_size = 36 if len(shown) <= 200 else 14
    # A legend entry only for the sides traded; the note on the first one shown.
    sides = ((size > 0, "^", _GREEN, "Long"), (size < 0, "v", _RED, "Short"))
    for side, marker, color, name in sides:
        if side.any():
            ax.scatter(
                entry_t[side],
                entry_p[side],
                marker=marker,
                s=marker_size,
                color=color,
                edgecolors="none",
                zorder=3,
                label=f"{name} entry{note}",
            )
            note = ""
    ax.scatter(
        exit_t,
        exit_p,
        marker="x",
        s=marker_size * 0.8,
        color="#333333",
        linewidths=1.0,
        zorder=3,
        label="Exit",
    )


def plot_result(result, path: str | Path | None = None, *, title: str | None = None) -> Figure:
    """Draw a backtest result as four stacked panels sharing the time axis.

    1. the close with entry (``^`` green long, ``v`` red short) and exit (``x``) markers,
    2. the equity against buy & hold scaled to the same starting equity,
    3. the drawdown in percent,
    4. the position in units (long above zero, short below).

    ``result`` needs ``data`` (a price frame), ``equity``, ``trades``, ``position``, ``stats`` and
    ``strategy_name``. The title shows ``title`` (default: the strategy name) and Return, Sharpe,
    Max. Drawdown and # Trades from the stats. When ``path`` is given the figure is also saved
    there as a PNG (12 x 9 inches at 110 dpi). Returns the figure.
    """
    data: pd.DataFrame = result.data
    equity = pd.Series(result.equity)
    position = np.asarray(result.position, dtype=np.float64)
    x = time_axis(data.index)
    x_equity = time_axis(equity.index)
    close = data["Close"].to_numpy(dtype=np.float64)
    equity_values = equity.to_numpy(dtype=np.float64)

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2.2, 1.2, 1]})
    ax_price, ax_equity, ax_dd, ax_pos = axes

    # 1. Price and trades
    ax_price.plot(*_minmax(x, close), color="#404040", linewidth=0.8, label="Close")
    _trade_markers(ax_price, getattr(result, "trades", None))
    ax_price.set_ylabel("Price")
    _log_if_wide(ax_price, close)

    # 2. Equity against buy & hold from the same starting equity
    ax_equity.plot(*thin_last(x_equity, equity_values), color=_BLUE, linewidth=1.1, label="Equity")
    hold = np.empty(0)
    if len(close) and len(equity_values) and close[0] > 0:
        hold = close / close[0] * equity_values[0]
        ax_equity.plot(*thin_last(x, hold), color=_GREY, linewidth=0.9, label="Buy & hold")
    ax_equity.set_ylabel("Equity [$]")
    if not _log_if_wide(ax_equity, equity_values, hold):
        if len(equity_values) and 1e3 <= np.nanmax(np.abs(equity_values)) < 1e9:
            ax_equity.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))

    # 3. Drawdown, negative percent
    dd = -100.0 * drawdown(equity).to_numpy()
    dd_x, dd_y = _minmax(x_equity, dd)
    ax_dd.fill_between(dd_x, dd_y, 0.0, color=_RED, alpha=0.35, linewidth=0)
    ax_dd.plot(dd_x, dd_y, color=_RED, linewidth=0.6)
    ax_dd.set_ylabel("Drawdown [%]")
    if len(dd) and np.nanmin(dd) == 0:
        ax_dd.set_ylim(-1, 0.2)  # no drawdown: keep a readable axis instead of a degenerate one

    # 4. Position
    pos_x, pos_y = _minmax(x, position)
    # Long and short as two fills clipped at zero (``where=`` would leave a gap at every flip).
    ax_pos.fill_between(
        pos_x, np.fmax(pos_y, 0.0), 0.0, step="post", color=_GREEN, alpha=0.4, linewidth=0
    )
    ax_pos.fill_between(
        pos_x, np.fmin(pos_y, 0.0), 0.0, step="post", color=_RED, alpha=0.4, linewidth=0
    )
    if len(position) <= MAX_POINTS:  # an outline of thousands of flips is a black smear
        ax_pos.step(pos_x, pos_y, where="post", color="#404040", linewidth=0.6)
    ax_pos.axhline(0.0, color=_GREY, linewidth=0.5)
    ax_pos.set_ylabel("Position")
    if not np.any(np.abs(position) > 0):
        ax_pos.set_ylim(-1, 1)  # never in the market
    ax_pos.yaxis.set_major_locator(ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))

    for ax in axes:
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.margins(x=0.005)
    for ax in (ax_price, ax_equity):
        ax.legend(loc="best", fontsize=8, framealpha=0.85, ncols=4)
    fig.align_ylabels(axes)
    locator = mdates.AutoDateLocator(minticks=5, maxticks=12)
    ax_pos.xaxis.set_major_locator(locator)
    ax_pos.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))

    fig.suptitle(_title(result, title, pd.DatetimeIndex(data.index)), fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return fig
