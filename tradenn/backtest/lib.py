"""Small helpers for writing strategies: crossings, bar counting, parameter rules and position
sizing."""

from __future__ import annotations

import itertools
import math

import numpy as np

from tradenn.account import FLAT
from tradenn.backtest.series import BarSeries


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
    equity = _positive("equity", equity)
    entry = _positive("entry", entry)
    stop = _positive("stop", stop)
    if stop == entry:
        raise ValueError(f"stop must differ from entry, got both {entry:g}")
    return _units(equity, abs(entry - stop), _fraction("risk", risk), fractional)


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
    equity : float
        Money the risk is a fraction of (``self.equity``), > 0.
    atr : float
        Average true range in price units (:func:`tradenn.features.atr`), > 0.
    multiple : float
        Stop distance in ATRs, > 0.
    risk : float
        Fraction of ``equity`` lost at the stop, in (0, 1].
    fractional : bool
        Return fractional units (at least 1) instead of whole ones.

    Returns
    -------
    float
        Units to order: 0.0 (do not trade) or >= 1.
    """
    equity = _positive("equity", equity)
    distance = _positive("atr", atr) * _positive("multiple", multiple)
    return _units(equity, distance, _fraction("risk", risk), fractional)


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


def _positive(name: str, value: float) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _fraction(name: str, value: float) -> float:
    number = float(value)
    if not 0 < number <= 1:
        raise ValueError(f"{name} must be a fraction of equity in (0, 1], got {value!r}")
    return number
