"""Causal, vectorized technical indicators.

Conventions shared by every function:

* **Input**: a 1-D numpy array or pandas Series of floats or ints. Multi-input indicators (ATR,
  Donchian) take equally long inputs; Series among them must share one index.
* **Output follows the input** (the first input for multi-input indicators): an array gives float64
  arrays, a Series gives Series on the same index; multi-output indicators return a tuple.
* **Causal**: the value at bar ``t`` uses bars ``<= t`` only. Bars without a full window are NaN.
* **Leading NaNs** (e.g. an indicator of an indicator) are skipped: the indicator starts at the
  first valid value. Interior NaNs make every window containing them NaN; the recursive smoothers
  (EMA, Wilder) carry their last value across them, as ``pandas.Series.ewm`` does.
* **Windows** ``n`` are ints ``>= 1`` (``ValueError`` otherwise); input shorter than the window
  gives all-NaN output, not an error.
* **Vectorized**: rolling windows use pandas' rolling aggregations (compensated sums, no drift
  on long series); the recursive smoothers run ``ewm(adjust=False)`` from their seed. Both are
  C loops, no Python loop over bars.

Seeding and smoothing follow TA-Lib unless stated otherwise in the function's docstring.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from tradenn import checks

if TYPE_CHECKING:
    from pandas.api.typing import Rolling

__all__ = [
    "atr",
    "bollinger",
    "donchian",
    "ema",
    "log_returns",
    "macd",
    "momentum",
    "rolling_std",
    "rolling_zscore",
    "rsi",
    "sma",
]

T = TypeVar("T", np.ndarray, pd.Series)


# ---------------------------------------------------------------------------- shared helpers
def _arrays(*xs: np.ndarray | pd.Series) -> list[np.ndarray]:
    """The inputs as 1-D float64 arrays (not copied when already float64; never modified)."""
    arrays = []
    for x in xs:
        if isinstance(x, pd.Series):
            a = x.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"indicator inputs must be 1-D, got shape {a.shape}")
        arrays.append(a)
    if len({a.size for a in arrays}) > 1:
        raise ValueError(f"indicator inputs differ in length: {[a.size for a in arrays]}")
    indexes = [x.index for x in xs if isinstance(x, pd.Series)]
    if any(not ix.equals(indexes[0]) for ix in indexes[1:]):
        raise ValueError("indicator inputs are Series with different indexes; align them first")
    return arrays


def _like(template: T, out: np.ndarray | tuple[np.ndarray, ...]) -> T | tuple[T, ...]:
    """``out`` (an array or tuple of arrays) in the type of ``template``."""
    if isinstance(out, tuple):
        return tuple(_like(template, o) for o in out)
    if isinstance(template, pd.Series):
        return pd.Series(out, index=template.index, copy=False)
    return out


def _rolling(a: np.ndarray, n: int) -> Rolling:
    return pd.Series(a, copy=False).rolling(n)


def _values(s: pd.Series) -> np.ndarray:
    # pandas 3 hands out read-only views; callers get arrays they own.
    return s.to_numpy(dtype=np.float64, copy=True)


def _smooth(a: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """``y[t] = y[t-1] + alpha * (a[t] - y[t-1])`` seeded with the mean of the first ``n`` values.

    The seed sits on the ``n``-th value counted from the first non-NaN one; earlier bars are NaN.
    """
    out = np.full(a.size, np.nan)
    valid = ~np.isnan(a)
    seed = (int(valid.argmax()) if valid.any() else a.size) + n - 1
    if seed < a.size:
        y = a[seed:].copy()
        y[0] = a[seed - n + 1 : seed + 1].mean()
        out[seed:] = pd.Series(y, copy=False).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


# ---------------------------------------------------------------------------- indicators
def sma(x: T, n: int) -> T:
    """Simple moving average.

    ``sma[t] = mean(x[t-n+1 .. t])``.

    Parameters
    ----------
    x : array or Series
    n : int
        Window length in bars, ``>= 1``.

    Returns
    -------
    Same type as ``x``; NaN for the first ``n - 1`` bars.
    """
    (a,) = _arrays(x)
    return _like(x, _values(_rolling(a, checks.positive_int(n, "n")).mean()))


def _sma_latest(x: np.ndarray, n: int) -> float:
    """``sma(x, n)[-1]`` alone: what a live run needs for each new bar (the mean of the last
    ``n`` values; NaN with fewer than ``n`` or any NaN among them, as ``sma``). Agrees with
    ``sma`` to rounding (``sma`` uses pandas' compensated running sums)."""
    window = np.asarray(x, dtype=np.float64)[-checks.positive_int(n, "n") :]
    return float(window.mean()) if window.size == n else math.nan


sma.latest = _sma_latest


def ema(x: T, n: int) -> T:
    """Exponential moving average, TA-Lib convention.

    ``ema[t] = alpha * x[t] + (1 - alpha) * ema[t-1]`` with ``alpha = 2 / (n + 1)``, seeded at bar
    ``n - 1`` (counted from the first valid value) with the SMA of the first ``n`` values.

    Parameters
    ----------
    x : array or Series
    n : int
        Span in bars, ``>= 1``.

    Returns
    -------
    Same type as ``x``; NaN before the seed.
    """
    (a,) = _arrays(x)
    n = checks.positive_int(n, "n")
    return _like(x, _smooth(a, n, 2.0 / (n + 1)))


def rsi(close: T, n: int = 14) -> T:
    """Relative strength index with Wilder's smoothing, TA-Lib convention.

    With ``gain[t] = max(close[t] - close[t-1], 0)`` and ``loss[t] = max(close[t-1] - close[t],
    0)``, the averages start at bar ``n`` as the simple means of the first ``n`` gains and losses
    and continue ``avg[t] = (avg[t-1] * (n - 1) + value[t]) / n``. Then ``rsi = 100 * avg_gain /
    (avg_gain + avg_loss)``, and 100 whenever ``avg_loss == 0`` -- including a flat stretch, where
    TA-Lib gives 0.

    Parameters
    ----------
    close : array or Series
    n : int
        Smoothing period in bars, ``>= 1``.

    Returns
    -------
    Same type as ``close``, in ``[0, 100]``; NaN for the first ``n`` bars.
    """
    (a,) = _arrays(close)
    n = checks.positive_int(n, "n")
    change = np.diff(a, prepend=np.nan)
    gain = _smooth(np.maximum(change, 0.0), n, 1.0 / n)
    loss = _smooth(np.maximum(-change, 0.0), n, 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(loss == 0, 100.0, 100.0 * gain / (gain + loss))
    return _like(close, out)


def macd(close: T, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[T, T, T]:
    """Moving average convergence/divergence.

    ``macd = ema(close, fast) - ema(close, slow)``, ``signal = ema(macd, signal)``, ``histogram =
    macd - signal``, every EMA seeded as in :func:`ema`. TA-Lib instead seeds the fast EMA on the
    ``fast`` bars ending at bar ``slow - 1``; its first values differ slightly (the difference
    decays geometrically).

    Parameters
    ----------
    close : array or Series
    fast, slow, signal : int
        EMA spans in bars, ``>= 1``.

    Returns
    -------
    (macd, signal, histogram), each the type of ``close``. ``macd`` starts at bar ``slow - 1``
    (when ``fast <= slow``), ``signal`` and ``histogram`` at bar ``slow + signal - 2``.
    """
    (a,) = _arrays(close)
    line = ema(a, checks.positive_int(fast, "fast")) - ema(a, checks.positive_int(slow, "slow"))
    sig = ema(line, checks.positive_int(signal, "signal"))
    return _like(close, (line, sig, line - sig))


def rolling_std(x: T, n: int) -> T:
    """Rolling population standard deviation.

    ``std[t] = sqrt(mean((x[t-n+1 .. t] - sma[t])**2))``, i.e. ``ddof=0`` as TA-Lib.

    Parameters
    ----------
    x : array or Series
    n : int
        Window length in bars, ``>= 1``.

    Returns
    -------
    Same type as ``x``; NaN for the first ``n - 1`` bars.
    """
    (a,) = _arrays(x)
    return _like(x, _values(_rolling(a, checks.positive_int(n, "n")).std(ddof=0)))


def bollinger(close: T, n: int = 20, k: float = 2.0) -> tuple[T, T, T]:
    """Bollinger bands.

    ``middle = sma(close, n)``, ``upper, lower = middle +/- k * rolling_std(close, n)`` with the
    population standard deviation (``ddof=0``, as TA-Lib).

    Parameters
    ----------
    close : array or Series
    n : int
        Window length in bars, ``>= 1``.
    k : float
        Band width in standard deviations.

    Returns
    -------
    (middle, upper, lower), each the type of ``close``; NaN for the first ``n - 1`` bars.
    """
    (a,) = _arrays(close)
    middle, width = sma(a, n), k * rolling_std(a, n)
    return _like(close, (middle, middle + width, middle - width))


def atr(high: T, low: T, close: T, n: int = 14) -> T:
    """Average true range with Wilder's smoothing.

    ``tr[t] = max(high[t] - low[t], |high[t] - close[t-1]|, |low[t] - close[t-1]|)``, and ``high -
    low`` on the first bar (no previous close). ``atr`` starts at bar ``n - 1`` as the mean of the
    first ``n`` true ranges and continues ``atr[t] = (atr[t-1] * (n - 1) + tr[t]) / n``. TA-Lib
    instead leaves out the first bar's true range, so its ATR starts one bar later.

    Parameters
    ----------
    high, low, close : arrays or Series of equal length
    n : int
        Smoothing period in bars, ``>= 1``.

    Returns
    -------
    Same type as ``high``; NaN for the first ``n - 1`` bars.
    """
    h, lo, c = _arrays(high, low, close)
    n = checks.positive_int(n, "n")
    prev = np.concatenate(([np.nan], c[:-1]))
    span = h - lo
    gap = np.maximum(np.abs(h - prev), np.abs(lo - prev))
    tr = np.where(np.isnan(prev), span, np.maximum(span, gap))
    return _like(high, _smooth(tr, n, 1.0 / n))


def rolling_zscore(x: T, n: int) -> T:
    """Rolling z-score.

    ``z[t] = (x[t] - sma(x, n)[t]) / rolling_std(x, n)[t]`` (``ddof=0``).

    Parameters
    ----------
    x : array or Series
    n : int
        Window length in bars, ``>= 1``.

    Returns
    -------
    Same type as ``x``; NaN for the first ``n - 1`` bars and wherever the window is constant.
    """
    (a,) = _arrays(x)
    mean, std = sma(a, n), rolling_std(a, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 0, (a - mean) / std, np.nan)
    return _like(x, out)


def log_returns(x: T) -> T:
    """Logarithmic returns: ``r[t] = log(x[t] / x[t-1])``.

    Parameters
    ----------
    x : array or Series
        Positive prices.

    Returns
    -------
    Same type as ``x``; NaN on the first bar.
    """
    (a,) = _arrays(x)
    out = np.full(a.size, np.nan)
    out[1:] = np.log(a[1:] / a[:-1])
    return _like(x, out)


def momentum(x: T, n: int) -> T:
    """Rate of change over ``n`` bars: ``m[t] = x[t] / x[t-n] - 1``.

    Parameters
    ----------
    x : array or Series
    n : int
        Lag in bars, ``>= 1``.

    Returns
    -------
    Same type as ``x``; NaN for the first ``n`` bars.
    """
    (a,) = _arrays(x)
    n = checks.positive_int(n, "n")
    out = np.full(a.size, np.nan)
    out[n:] = a[n:] / a[:-n] - 1.0
    return _like(x, out)


def donchian(high: T, low: T, n: int) -> tuple[T, T]:
    """Donchian channel.

    ``upper[t] = max(high[t-n+1 .. t])``, ``lower[t] = min(low[t-n+1 .. t])``. The current bar is
    inside its own channel, so a breakout rule compares ``close[t]`` with ``upper[t-1]``.

    Parameters
    ----------
    high, low : arrays or Series of equal length
    n : int
        Window length in bars, ``>= 1``.

    Returns
    -------
    (upper, lower), each the type of ``high``; NaN for the first ``n - 1`` bars.
    """
    h, lo = _arrays(high, low)
    n = checks.positive_int(n, "n")
    return _like(high, (_values(_rolling(h, n).max()), _values(_rolling(lo, n).min())))
