"""Small helpers for writing strategies: crossings, bar counting, parameter rules, position
sizing and indicators on a higher timeframe."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Day, Tick, Week

from tradenn import checks
from tradenn.account import FLAT
from tradenn.backtest.series import BarSeries
from tradenn.data.resample import OHLCV_AGG
from tradenn.data.timezones import wall_clock


def _last_two(x) -> tuple[float, float]:
    if isinstance(x, int | float | np.number):
        return x, x
    return x[-2], x[-1]


def crossover(a, b) -> bool:
    """True when ``a`` crossed above ``b`` on the current bar: ``a[-2] < b[-2]`` and ``a[-1] >
    b[-1]``. Either may be a number (a fixed level). False before the second bar."""
    if a.__class__ is BarSeries and b.__class__ is BarSeries:
        return a.crossed_above(b)  # the hot path of most strategies
    try:
        a_before, a_now = _last_two(a)
        b_before, b_now = _last_two(b)
    except IndexError:
        return False
    return bool(a_before < b_before and a_now > b_now)


def cross(a, b) -> bool:
    """True when ``a`` and ``b`` crossed in either direction on the current bar."""
    return crossover(a, b) or crossover(b, a)


def barssince(condition: BarSeries | np.ndarray, default: float = np.inf) -> float:
    """Bars since ``condition`` (a boolean series) was last true; ``default`` if never."""
    values = np.asarray(condition, dtype=bool)
    hits = np.flatnonzero(values[::-1])
    return float(hits[0]) if len(hits) else default


def increasing(params: dict, *names: str) -> None:
    """Raise ``ValueError`` unless ``0 < params[names[0]] < params[names[1]] < ...`` (for
    ``check_parameters``: ``increasing(params, "fast", "slow")``)."""
    values = [params[name] for name in names]
    if not (0 < values[0] and all(a < b for a, b in itertools.pairwise(values))):
        shown = ", ".join(f"{name}={params[name]}" for name in names)
        raise ValueError(f"need 0 < {' < '.join(names)}, got {shown}")


# ----------------------------------------------------------------------- position sizing


def risk_size(
    equity: float, entry: float, stop: float, risk: float = 0.01, *, fractional: bool = False
) -> float:
    """Units whose loss, should the price go from ``entry`` to ``stop``, is ``risk`` x ``equity``.

    ::

        units = risk x equity / |entry - stop|

    rounded down to whole units unless ``fractional``. The stop may be on either side of the
    entry (below for a long, above for a short). Inside ``next()``::

        close = self.data.Close[-1]
        stop = close - 2 * self.atr[-1]
        units = risk_size(self.equity, close, stop, 0.01)
        if units:
            self.buy(size=units, sl=stop)

    The result is always a size ``buy``/``sell`` read as units: ``0.0`` or at least 1.
    ``buy(size=s)`` reads ``0 < s < 1`` as a fraction of equity, so a budget that pays for less
    than one unit is never returned as such:

    * whole units: ``0.0``, meaning *do not trade*: one unit would risk more than ``risk``;
    * ``fractional=True``: :class:`ValueError`; orders have no way to ask for fewer than one
      unit, so no size can say it.

    Pass ``fractional=True`` only to a ``Backtest(..., fractional=True)``, which accepts
    non-integer units. The loss is counted from ``entry``; the fill (the next open, unless
    ``trade_on_close``), a gap through the stop and costs make the realized loss differ. An
    order the account cannot afford (a tight stop asks for many units) is rejected, not
    resized.

    Parameters
    ----------
    equity : float
        Money the risk is a fraction of (``self.equity``), > 0.
    entry, stop : float
        Entry price (``self.data.Close[-1]``) and stop-loss price, > 0 and different.
    risk : float
        Fraction of ``equity`` lost at the stop, in (0, 1].
    fractional : bool
        Return fractional units (at least 1) instead of whole ones.

    Returns
    -------
    float
        Units to order: 0.0 (do not trade) or >= 1.
    """
    equity = checks.positive_number(equity, "equity")
    entry = checks.positive_number(entry, "entry")
    stop = checks.positive_number(stop, "stop")
    if stop == entry:
        raise ValueError(f"stop must differ from entry, got both {entry:g}")
    return _units(equity, abs(entry - stop), _risk(risk), fractional)


def atr_size(
    equity: float,
    atr: float,
    multiple: float = 2.0,
    risk: float = 0.01,
    *,
    fractional: bool = False,
) -> float:
    """Units whose loss at a stop ``multiple`` ATRs away is ``risk`` x ``equity``: volatility
    sizing, with positions smaller when the market moves more.

    ::

        units = risk x equity / (multiple x atr)

    :func:`risk_size` with ``|entry - stop| = multiple x atr`` (its rules for whole units, sizes
    below one unit and fills apply); place the stop at the same distance::

        close, distance = self.data.Close[-1], 2.0 * self.atr[-1]
        units = atr_size(self.equity, self.atr[-1], 2.0, 0.01)
        if units:
            self.buy(size=units, sl=close - distance)

    Parameters
    ----------
    atr : float
        Average true range in price units (:func:`tradenn.features.atr`), > 0.
    multiple : float
        Stop distance in ATRs, > 0.
    equity, risk, fractional
        As in :func:`risk_size`.

    Returns
    -------
    float
        Units to order, as :func:`risk_size` returns them.
    """
    equity = checks.positive_number(equity, "equity")
    distance = checks.positive_number(atr, "atr") * checks.positive_number(multiple, "multiple")
    return _units(equity, distance, _risk(risk), fractional)


def _risk(risk: float) -> float:
    """The fraction of equity lost at the stop, in (0, 1]."""
    return checks.number(risk, "risk", low=0, high=1, low_open=True)


def _units(equity: float, distance: float, risk: float, fractional: bool) -> float:
    units = risk * equity / distance
    if fractional:
        if units < 1:
            raise ValueError(
                f"the risk budget buys {units:.6g} units, fewer than one, which buy(size=) "
                "would read as a fraction of equity; tradenn orders cannot ask for less than "
                "one unit"
            )
        return units
    whole = math.floor(units + FLAT)  # 100 / (1.1 - 1.0) is 999.9999999999991, meant as 1000
    return float(whole) if whole >= 1 else 0.0


# ----------------------------------------------------------------------- higher timeframes

# OHLCV_AGG (imported from tradenn.data.resample, its one home): how resample_apply aggregates
# a column of that name (any other column: "last").


def resample_apply(
    rule: str,
    func: Callable[..., Any] | None,
    series: pd.Series | pd.DataFrame | np.ndarray,
    *args: Any,
    agg: str | Callable | Mapping[str, str | Callable] | None = None,
    index: BarSeries | pd.DatetimeIndex | np.ndarray | None = None,
    **kwargs: Any,
) -> pd.Series | pd.DataFrame | tuple[pd.Series, ...]:
    """``func`` computed on ``series`` resampled to the period ``rule`` (a weekly SMA on daily
    bars), brought back to the original bars **causally**: each bar shows the value of the
    latest period that is complete at that bar, never one that still has bars to come.

    In a strategy, through :meth:`Strategy.I <tradenn.backtest.Strategy.I>` (the timestamps
    come from ``index``; ``self.data.index`` also follows the paper loop's moving window)::

        self.weekly = self.I(resample_apply, "W-FRI", sma, self.data.Close, 10,
                             index=self.data.index)

    and on pandas data directly: ``resample_apply("W-FRI", sma, frame["Close"], 10)``.

    **When a period is complete.** Bar ``t`` has time ``tau_t``; ``P(tau)`` is the period of
    ``rule`` holding the wall-clock time ``tau`` (in the index's own zone); the bar spacing
    known at ``t`` is ``d_t = min(tau_s - tau_(s-1), 0 < s <= t)`` (none at the first bar).
    At bar ``t`` every period before ``P(tau_t)`` is complete, and so is ``P(tau_t)`` itself if
    ``P(tau_t + d_t) != P(tau_t)``: the next bar, ``d_t`` later at the earliest, cannot fall in
    it. Let ``done_t`` be the latest period complete at ``t`` (a running maximum). So a period's
    value appears from its last bar on when that bar ends the period (daily bars and weeks
    ending Friday, ``"W-FRI"``; 24-hour bars and ``"D"``), and otherwise from the first bar of
    the next period (``"W"`` is weeks ending Sunday: on weekday bars its value appears on
    Monday; a Friday holiday delays a ``"W-FRI"`` week to Monday too). It is never earlier: a
    period that is incomplete at bar ``t`` shows nothing at ``t``, however soon it completes.
    The last, still incomplete period of the data shows nothing.

    **The higher-timeframe bars.** ``H_k`` aggregates the bars of period ``k`` (``agg``; by
    default :data:`OHLCV_AGG`: Open first, High max, Low min, Close last, Volume sum), stamped
    with the time of its last bar; ``y = func(H, *args, **kwargs)`` has one value per period;
    bar ``t`` shows ``y[done_t]`` (NaN before the first complete period). A bar that comes
    after its period was judged complete is left out of ``H`` (it can happen only while the
    spacing seen so far is wider than the data's: in the first bars of a frame or of the paper
    loop's window). So the value shown at ``t`` depends on bars up to ``t`` only, whenever
    ``func`` is causal, and ``Strategy.I``'s look-ahead check passes. ``func`` runs once.

    Parameters
    ----------
    rule : str
        A pandas offset alias: a fixed length (``"4h"``, ``"15min"``, ``"3D"``; periods aligned
        to 1970-01-01 00:00, so to midnight for lengths that divide a day) or one calendar
        period (``"W-FRI"``, ``"W"``, ``"ME"``, ``"BME"``, ``"QE"``, ``"YE"``, ``"MS"``).
    func : callable or None
        ``func(H, *args, **kwargs)``: a Series (or a DataFrame for frame input) of one row per
        period in, one value per period out (an array, a Series, a tuple of them, a 2-D array
        of rows, or a DataFrame). None returns ``H`` itself.
    series : Series, DataFrame or 1-D array
        The bars to resample. A Series or DataFrame carries its timestamps (a DatetimeIndex,
        naive or tz-aware); an array (a ``BarSeries`` inside ``Strategy.I``) takes them from
        ``index``.
    *args, **kwargs
        Passed on to ``func``.
    agg : str, callable or mapping, optional
        How a period's bars are aggregated: for a Series, a pandas aggregation (default: its
        :data:`OHLCV_AGG` entry by name, else ``"last"``; pass ``"max"`` for highs, ``"sum"``
        for volumes); for a DataFrame, one for every column or a mapping of column -> one
        (columns not named keep their :data:`OHLCV_AGG` default).
    index : BarSeries, DatetimeIndex or array, optional
        The timestamps of an array ``series`` (``self.data.index``). ``Strategy.I`` cuts its
        positional arguments for the look-ahead check and passes keywords unchanged, so a
        ``BarSeries`` index gives the first ``len(series)`` of its timestamps.

    Returns
    -------
    Series, DataFrame or tuple of Series
        One value per original bar, on the original timestamps: a DataFrame if ``func``
        returned one, a tuple of Series for several outputs, else a Series.
    """
    offset = _offset(rule)
    data = _timed(series, index)
    period, done = _completed_periods(data.index, offset)
    arrived_in_time = period > np.concatenate(([-1], done[:-1]))
    kept, kept_period = data[arrived_in_time], period[arrived_in_time]
    higher = kept.groupby(kept_period, sort=False).agg(_aggregation(data, agg))
    last = np.flatnonzero(np.append(kept_period[1:] != kept_period[:-1], True))
    higher.index = kept.index[last]
    label = f"{getattr(func, '__name__', 'resample')}[{rule}]"
    result = higher if func is None else func(higher, *args, **kwargs)
    columns, outputs = _per_period(result, len(higher), label)
    shown = [np.where(done >= 0, y[np.maximum(done, 0)], np.nan) for y in outputs]
    if columns is not None:
        return pd.DataFrame(dict(zip(columns, shown, strict=True)), index=data.index)
    if len(shown) == 1:
        return pd.Series(shown[0], index=data.index, name=label)
    return tuple(
        pd.Series(values, index=data.index, name=f"{label}[{k}]") for k, values in enumerate(shown)
    )


def _completed_periods(
    times: pd.DatetimeIndex, offset: pd.DateOffset
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: the number of its period (0, 1, ... in time) and of the latest period complete
    at that bar (-1: none yet), by :func:`resample_apply`'s rule; bars after it are not read."""
    keys = _period_keys(wall_clock(times), offset)
    period = np.concatenate(([0], np.cumsum(keys[1:] != keys[:-1])))
    closes = np.zeros(len(times), dtype=bool)
    if len(times) > 1:
        # The spacing known at bar t (t >= 1): the smallest gap between bars so far.
        gaps = np.diff(times.as_unit("ns").asi8)
        spacing = np.minimum.accumulate(np.where(gaps > 0, gaps, np.iinfo(np.int64).max))
        known = spacing < np.iinfo(np.int64).max
        earliest_next = times[1:] + pd.to_timedelta(np.where(known, spacing, 0), unit="ns")
        closes[1:] = known & (_period_keys(wall_clock(earliest_next), offset) != keys[1:])
    done = np.maximum.accumulate(np.where(closes, period, period - 1))
    return period, done


def _offset(rule: str | pd.DateOffset) -> pd.DateOffset:
    try:
        offset = to_offset(rule)
    except (ValueError, TypeError):
        raise ValueError(
            f"rule {rule!r} is not a pandas offset alias such as 'W-FRI', 'ME' or '4h'"
        ) from None
    if isinstance(offset, Tick | Day):
        if offset.n <= 0:
            raise ValueError(f"rule {rule!r} must be a positive length")
    elif offset.n != 1 or (isinstance(offset, Week) and offset.weekday is None):
        raise ValueError(
            f"rule {rule!r}: use one calendar period ('W-FRI', 'ME', ...) or a fixed length "
            "('14D', '4h')"
        )
    return offset


def _period_keys(wall: pd.DatetimeIndex, offset: pd.DateOffset) -> np.ndarray:
    """One integer per wall-clock time, the same for times in one period of ``offset``."""
    if isinstance(offset, Tick | Day):  # fixed lengths, counted from the epoch
        length = pd.Timedelta(offset).value
        return wall.as_unit("ns").asi8 // length
    days, position = np.unique(wall.normalize().as_unit("ns").asi8, return_inverse=True)
    days = pd.DatetimeIndex(days.view("datetime64[ns]"))
    if type(offset).__name__.endswith("Begin"):  # MonthBegin...: the period's first day
        keys = (days + offset) - offset
    else:  # MonthEnd, Week(weekday=4), ...: the period's last day
        keys = (days - offset) + offset
    return keys.as_unit("ns").asi8[position]


def _timed(series: Any, index: Any) -> pd.Series | pd.DataFrame:
    """``series`` as a pandas object on increasing bar times."""
    if isinstance(series, pd.Series | pd.DataFrame):
        if index is not None:
            raise ValueError("resample_apply: pass index only with an array; a Series has one")
        data = series
    else:
        values = np.asarray(series)
        if values.ndim != 1:
            raise ValueError(
                f"resample_apply: an array series must be 1-D, got shape {values.shape}; "
                "pass a DataFrame for several columns"
            )
        if index is None:
            raise ValueError(
                "resample_apply: an array series needs its timestamps: index=self.data.index"
            )
        if isinstance(index, BarSeries):  # Strategy.I passes keywords uncut: take our bars'
            index = index.full()[: len(values)]
        times = pd.DatetimeIndex(index)
        if len(times) != len(values):
            raise ValueError(
                f"resample_apply: index has {len(times)} timestamps for {len(values)} values"
            )
        data = pd.Series(values, index=times)
    if not isinstance(data.index, pd.DatetimeIndex):
        raise ValueError(
            f"resample_apply: series needs a DatetimeIndex, got {type(data.index).__name__}"
        )
    if len(data) == 0:
        raise ValueError("resample_apply: series has no bars")
    if not data.index.is_monotonic_increasing:
        raise ValueError("resample_apply: the bar times must be increasing")
    return data


def _aggregation(data: pd.Series | pd.DataFrame, agg: Any) -> Any:
    if isinstance(data, pd.Series):
        return OHLCV_AGG.get(str(data.name), "last") if agg is None else agg
    spec = {column: OHLCV_AGG.get(str(column), "last") for column in data.columns}
    if isinstance(agg, Mapping):
        unknown = set(agg) - set(data.columns)
        if unknown:
            raise ValueError(f"resample_apply: agg names no column {sorted(map(str, unknown))}")
        spec.update(agg)
    elif agg is not None:
        spec = dict.fromkeys(data.columns, agg)
    return spec


def _per_period(result: Any, periods: int, label: str) -> tuple[list | None, list[np.ndarray]]:
    """``func``'s result as float arrays of one value per period (and its column names)."""
    columns = None
    if isinstance(result, pd.DataFrame):
        columns, parts = list(result.columns), [result[c] for c in result.columns]
    elif isinstance(result, tuple | list):
        parts = list(result)
    else:
        array = np.asarray(result)
        parts = list(array) if array.ndim == 2 else [array]
    outputs = []
    for part in parts:
        values = np.asarray(part, dtype=np.float64)
        if values.shape != (periods,):
            raise ValueError(
                f"resample_apply: {label} returned shape {values.shape}; expected one value "
                f"per period ({periods},)"
            )
        outputs.append(values)
    return columns, outputs
