"""A causal feature matrix from a price frame: one row per bar, one readable column per feature.

>>> from tradenn import data
>>> from tradenn.features.pipeline import build_features, minimal_features
>>> X = build_features(data.load("SPX"))        # 28 columns with the defaults, NaN warm-up rows
>>> X_ar = minimal_features(data.load("SPX"))   # ret_1 and ret_lag_1..5: an AR(5) design

**Causal.** The value of every column at bar ``t`` uses bars ``<= t`` only (prices, volume and the
timestamp of bar ``t`` itself included), so a row can be fed to a decision made at the close of
bar ``t``. Bars before a feature has a full window are NaN: rows are kept, so the output has the
frame's index, and the windowing step drops rows with NaN. The only thing read from the whole
frame is the *set of columns*: the volume block is left out when ``Volume`` is absent or zero on
every bar (FX quotes often carry no volume).

**Features** (``C, O, H, L, V``: Close, Open, High, Low, Volume at bar ``t``; ``r = ret_1``; ``w``
each of ``windows``; logs are natural). Groups appear in this order, each under its flag:

``returns`` (with ``lags``)
    ``ret_1 = log(C[t] / C[t-1])``, the one-bar log return;
    ``ret_lag_k = r[t-k]`` for ``k = 1 .. lags``.
``windows`` (one set per ``w``; ``windows=()`` leaves the group out)
    ``ret_mean_w = mean(r[t-w+1 .. t])``;
    ``ret_std_w = std(r[t-w+1 .. t])`` (population, ``ddof=0``);
    ``ret_z_w = (r[t] - ret_mean_w) / ret_std_w``, the z-score of the *return* (how unusual this
    bar's move is against the last ``w``), 0 when the window's returns are all equal. The z-score
    of the *price* is not included: for ``w = 20`` it is ``4 * bb_pct_b_20 - 2``;
    ``close_sma_ratio_w = log(C[t] / sma(C, w)[t])``.
``indicators`` (conventional periods; from :mod:`tradenn.features.indicators`)
    ``rsi_14 = (rsi(C, 14) - 50) / 50``, RSI rescaled to ``[-1, 1]``;
    ``macd_hist_12_26_9 = histogram(macd(C, 12, 26, 9)) / C``, the MACD histogram in units of price;
    ``bb_pct_b_20 = (C - lower) / (upper - lower)`` of ``bollinger(C, 20, 2)``: 0 on the lower band,
    1 on the upper, 0.5 when the bands coincide (a flat window);
    ``atr_ratio_14 = atr(H, L, C, 14) / C``;
    ``mom_10 = C[t] / C[t-10] - 1`` (:func:`~tradenn.features.indicators.momentum`);
    ``range_hl = log(H / L)``, the bar's range;
    ``gap = log(O[t] / C[t-1])``, the overnight (between-bar) move.
``volume`` (left out when ``Volume`` is absent or zero on every bar)
    ``vol_change = log((1 + V[t]) / (1 + V[t-1]))``, the log volume ratio, made finite on bars
    with zero volume by the ``1 +`` (which moves it by about ``1 / V``, negligible for traded
    volumes);
    ``vol_z_w = zscore(log(1 + V), w)``, the rolling z-score of log volume (0 on a constant window).
``calendar`` (from the timestamp of bar ``t``: known at ``t``)
    ``dow_sin, dow_cos = sin, cos(2 pi dow / 7)`` with ``dow = 0`` on Monday;
    ``month_sin, month_cos = sin, cos(2 pi (month - 1) / 12)``.
    Meant for daily or coarser bars; on intraday bars they are the same for every bar of a day
    (and there is no hour-of-day feature).

First non-NaN bar (counted from 0): ``range_hl`` and the calendar at 0; ``ret_1``, ``gap`` and
``vol_change`` at 1; ``ret_lag_k`` at ``k + 1``; ``ret_mean/std/z_w`` at ``w``;
``close_sma_ratio_w`` and ``vol_z_w`` at ``w - 1``; ``bb_pct_b_20`` at 19; ``rsi_14`` at 14;
``atr_ratio_14`` at 13; ``mom_10`` at 10; ``macd_hist_12_26_9`` at 33.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.features import indicators as ind

__all__ = ["build_features", "minimal_features"]

# Conventional periods of the indicator group; they are part of the column names.
_RSI, _MACD, _BOLLINGER, _ATR, _MOMENTUM = 14, (12, 26, 9), 20, 14, 10


def build_features(
    frame: pd.DataFrame,
    *,
    returns: bool = True,
    lags: int = 5,
    windows: Iterable[int] = (5, 20),
    indicators: bool = True,
    volume: bool = True,
    calendar: bool = True,
) -> pd.DataFrame:
    """Causal features of a price frame, one row per bar (see the module docstring for formulas).

    Parameters
    ----------
    frame : DataFrame
        A price frame: increasing unique index, positive prices. ``Close`` is always needed;
        ``Open``, ``High``, ``Low`` when ``indicators=True``; a ``DatetimeIndex`` when
        ``calendar=True``. ``Volume`` is optional.
    returns : bool
        Include ``ret_1`` and its ``lags`` lagged copies ``ret_lag_1 .. ret_lag_{lags}``.
    lags : int
        Number of lagged returns, ``>= 0`` (used when ``returns=True``).
    windows : iterable of int
        Rolling windows in bars, each ``>= 2``, no repeats; one set of rolling features per window.
        Empty leaves the rolling group out.
    indicators : bool
        Include RSI, MACD histogram, Bollinger %B, ATR ratio, momentum, ``range_hl`` and ``gap``.
    volume : bool
        Include ``vol_change`` and ``vol_z_w`` when the frame has a non-zero ``Volume``.
    calendar : bool
        Include day-of-week and month as points on the unit circle.

    Returns
    -------
    DataFrame
        float64 columns in the order of the module docstring, on ``frame.index``; warm-up rows NaN.

    Raises
    ------
    ValueError
        Bad arguments, or a frame without the needed columns, with a non-increasing or duplicate
        index, or with non-positive prices.
    """
    lags = checks.non_negative_int(lags, "lags", "build_features")
    windows = _windows(windows)
    needed = ["Close"] + (["Open", "High", "Low"] if indicators else [])
    prices = _prices(frame, needed, calendar)
    close = prices["Close"]
    r = ind.log_returns(close)
    columns: dict[str, np.ndarray] = {}
    if returns:
        columns["ret_1"] = r
        for k in range(1, lags + 1):
            columns[f"ret_lag_{k}"] = _shift(r, k)
    for w in windows:
        mean, std = ind.sma(r, w), ind.rolling_std(r, w)
        columns[f"ret_mean_{w}"] = mean
        columns[f"ret_std_{w}"] = std
        columns[f"ret_z_{w}"] = _zscore(r, w, std)
        columns[f"close_sma_ratio_{w}"] = np.log(close / ind.sma(close, w))
    if indicators:
        columns.update(_indicator_block(prices))
    v = _volume(frame) if volume else None
    if v is not None:
        log_v = np.log1p(v)
        columns["vol_change"] = ind.log_returns(1.0 + v)
        for w in windows:
            columns[f"vol_z_{w}"] = _zscore(log_v, w, ind.rolling_std(log_v, w))
    if calendar:
        columns.update(_calendar_block(frame.index))
    return pd.DataFrame(columns, index=frame.index, dtype=np.float64)


def minimal_features(frame: pd.DataFrame, lags: int = 5) -> pd.DataFrame:
    """The design of a linear autoregression: ``ret_1`` and ``ret_lag_1 .. ret_lag_{lags}``.

    Same as ``build_features(frame, lags=lags, windows=(), indicators=False, volume=False,
    calendar=False)``; the frame needs a ``Close`` column only.
    """
    return build_features(
        frame, lags=lags, windows=(), indicators=False, volume=False, calendar=False
    )


# ---------------------------------------------------------------------------- feature groups
def _indicator_block(prices: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    o, h, lo, c = prices["Open"], prices["High"], prices["Low"], prices["Close"]
    fast, slow, signal = _MACD
    _, upper, lower = ind.bollinger(c, _BOLLINGER, 2.0)
    band = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = np.where(band > 0, (c - lower) / band, 0.5)
    pct_b[np.isnan(band)] = np.nan
    return {
        f"rsi_{_RSI}": (ind.rsi(c, _RSI) - 50.0) / 50.0,
        f"macd_hist_{fast}_{slow}_{signal}": ind.macd(c, fast, slow, signal)[2] / c,
        f"bb_pct_b_{_BOLLINGER}": pct_b,
        f"atr_ratio_{_ATR}": ind.atr(h, lo, c, _ATR) / c,
        f"mom_{_MOMENTUM}": ind.momentum(c, _MOMENTUM),
        "range_hl": np.log(h / lo),
        "gap": np.log(o / _shift(c, 1)),
    }


def _calendar_block(index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    dow = 2.0 * np.pi * index.day_of_week.to_numpy(dtype=np.float64) / 7.0
    month = 2.0 * np.pi * (index.month.to_numpy(dtype=np.float64) - 1.0) / 12.0
    return {
        "dow_sin": np.sin(dow),
        "dow_cos": np.cos(dow),
        "month_sin": np.sin(month),
        "month_cos": np.cos(month),
    }


def _zscore(x: np.ndarray, w: int, std: np.ndarray) -> np.ndarray:
    """:func:`~tradenn.features.indicators.rolling_zscore`, with 0 on full constant windows."""
    z = ind.rolling_zscore(x, w)
    z[std == 0] = 0.0
    return z


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """``x[t - k]`` at bar ``t`` (NaN for the first ``k`` bars)."""
    out = np.full(x.size, np.nan)
    if k < x.size:
        out[k:] = x[: x.size - k]
    return out


# ---------------------------------------------------------------------------- input checks
def _windows(windows: Iterable[int]) -> tuple[int, ...]:
    if isinstance(windows, int | np.integer | str):
        raise ValueError(f"build_features: windows must be a sequence of ints, got {windows!r}")
    windows = tuple(windows)
    for w in windows:
        checks.integer(w, "each of windows", "build_features", low=2)
    if len(set(windows)) != len(windows):
        raise ValueError(f"build_features: windows must not repeat, got {windows!r}")
    return tuple(int(w) for w in windows)


def _prices(frame: pd.DataFrame, needed: list[str], calendar: bool) -> dict[str, np.ndarray]:
    """The ``needed`` columns as float64 arrays, after checking the frame's shape and index."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"build_features: frame must be a DataFrame, got {type(frame).__name__}")
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValueError(f"build_features: frame has no {', '.join(missing)} column")
    if len(frame) == 0:
        raise ValueError("build_features: frame is empty")
    if not (frame.index.is_monotonic_increasing and frame.index.is_unique):
        raise ValueError("build_features: frame index must be increasing without duplicates")
    if calendar and not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError(
            f"build_features: calendar=True needs a DatetimeIndex, got {type(frame.index).__name__}"
        )
    prices = {}
    for name in needed:
        p = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = p <= 0
        if bad.any():
            at = frame.index[int(bad.argmax())]
            raise ValueError(f"build_features: {name} must be positive, got {p[bad][0]} at {at}")
        prices[name] = p
    return prices


def _volume(frame: pd.DataFrame) -> np.ndarray | None:
    """``Volume`` as float64, or None when it is absent or zero (or NaN) on every bar."""
    if "Volume" not in frame.columns:
        return None
    v = frame["Volume"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not (v > 0).any():
        return None
    if (v < 0).any():
        raise ValueError(f"build_features: Volume must be >= 0, got {v[v < 0][0]}")
    return v
