"""What kind of bars a price frame holds: spacing and bars per year, inferred from its index."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from tradenn.data.timezones import wall_clock

_DAY = 86_400.0


_MEASURED: dict[tuple[int, str], tuple[weakref.ref, float]] = {}  # (id(index), what) -> answer


def _remembered(index, what: str, measure) -> float:
    """``measure(index)``, remembered for as long as ``index`` lives: an index is immutable, and
    every backtest of the same frame (a sweep, a report, the setup line) asks again."""
    if not isinstance(index, pd.DatetimeIndex):
        return measure(index)
    known = _MEASURED.get((id(index), what))
    if known is not None and known[0]() is index:
        return known[1]
    value = measure(index)
    for key in [k for k, (ref, _) in _MEASURED.items() if ref() is None]:
        del _MEASURED[key]  # indexes that are gone
    _MEASURED[(id(index), what)] = (weakref.ref(index), value)
    return value


def bar_seconds(index: pd.DatetimeIndex) -> float:
    """Median spacing between consecutive bars in seconds (robust to weekends and holidays)."""
    return _remembered(index, "bar seconds", _bar_seconds)


def _bar_seconds(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return _DAY
    index = wall_clock(pd.DatetimeIndex(index))  # a DST change is not a longer or shorter bar
    steps = np.diff(index.to_numpy()) / np.timedelta64(1, "s")  # independent of the index's unit
    return float(np.median(steps))


def bar_label(index: pd.DatetimeIndex) -> str:
    """A human name for the bar spacing: ``daily``, ``hourly``, ``weekly``, ``15-minute``, ..."""
    seconds = bar_seconds(index)
    named = {60: "1-minute", 3600: "hourly", _DAY: "daily", 7 * _DAY: "weekly"}
    for value, name in named.items():
        if abs(seconds - value) < 1:
            return name
    if 28 * _DAY <= seconds <= 31 * _DAY:
        return "monthly"
    if seconds < 3600:
        return f"{seconds / 60:g}-minute"
    if seconds < _DAY:
        return f"{seconds / 3600:g}-hour"
    return f"{seconds / _DAY:g}-day"


def bars_per_year(index: pd.DatetimeIndex) -> float:
    """Bars in a year of this data, for annualizing returns, volatility and Sharpe ratios.

    Measured, not assumed: the number of bars per calendar year over the data's span, rounded to
    the conventions (252 trading days for daily equity data; 52 weekly; 12 monthly). Hourly FX
    (about 24 x 5 bars a week) comes out near 6,200; 24/7 crypto hourly near 8,760. An index is
    immutable, so the answer is remembered for as long as the index lives (every backtest of the
    same frame asks again).
    """
    return _remembered(index, "bars per year", _bars_per_year)


def _bars_per_year(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return 252.0
    index = wall_clock(pd.DatetimeIndex(index))  # the same answer with or without a zone
    seconds = bar_seconds(index)
    span_years = (index[-1] - index[0]).total_seconds() / (365.25 * _DAY)
    observed = (len(index) - 1) / span_years if span_years > 0 else 252.0
    if abs(seconds - _DAY) < 1 and 230 <= observed <= 262:
        return 252.0
    if abs(seconds - 7 * _DAY) < 1:
        return 52.0
    if 28 * _DAY <= seconds <= 31 * _DAY:
        return 12.0
    if abs(seconds - _DAY) < 1 and 340 <= observed <= 370:
        return 365.0
    return float(max(1, round(observed)))  # sparse data (a bar every few years): at least 1
