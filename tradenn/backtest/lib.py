"""Small helpers for writing strategies: crossings, bar counting, parameter rules."""

from __future__ import annotations

import itertools

import numpy as np

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
