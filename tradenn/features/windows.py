"""Targets and windowing: from per-bar feature rows to ``(samples, time, features)`` arrays.

Two kinds of series meet here, and both are **causal** (their value at bar ``t`` uses bars
``<= t`` only):

* features, one row per bar (e.g. :func:`tradenn.features.pipeline.build_features`);
* a target, one value per bar, indexed by the bar at which it is *realized*:
  :func:`return_target` is ``log(Close[t] / Close[t-h])``, known at the close of bar ``t``.

The only step that looks forward is the pairing in :func:`make_windows`, and it is explicit: the
window that ends at the **decision bar** ``t`` is paired with the target realized at bar
``t + horizon``. Each sample therefore carries two timestamps: ``index`` (when the forecast is
made; everything in ``X`` is known then) and ``target_index`` (when its ``y`` becomes known). A
training set for a decision at bar ``s`` may only hold samples whose ``target_index <= s``;
:func:`tradenn.models.walk_forward` enforces that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradenn import checks

__all__ = ["Windows", "direction_target", "make_windows", "return_target"]


def _close(prices: pd.Series | pd.DataFrame, name: str) -> pd.Series:
    if isinstance(prices, pd.DataFrame):
        if "Close" not in prices.columns:
            raise ValueError(f"{name}: the price frame has no 'Close' column")
        prices = prices["Close"]
    if not isinstance(prices, pd.Series):
        raise TypeError(f"{name}: expected a price Series or frame, got {type(prices).__name__}")
    return prices.astype(np.float64)


def return_target(prices: pd.Series | pd.DataFrame, horizon: int = 1) -> pd.Series:
    """The ``horizon``-bar log return realized at each bar: ``log(Close[t] / Close[t-h])``.

    Causal: the value at bar ``t`` is known at ``t``'s close (NaN on the first ``h`` bars). Pair
    it with ``make_windows(..., horizon=h)`` to predict the return from a decision bar ``t`` to
    ``t + h``.
    """
    close = _close(prices, "return_target")
    h = checks.positive_int(horizon, "horizon")
    if (close <= 0).any():
        raise ValueError("return_target: prices must be positive")
    values = close.to_numpy()
    out = np.full(len(values), np.nan)
    out[h:] = np.log(values[h:] / values[:-h])  # the ratio first: exact for small moves
    return pd.Series(out, index=close.index, name=f"ret_{h}")


def direction_target(prices: pd.Series | pd.DataFrame, horizon: int = 1) -> pd.Series:
    """The sign of :func:`return_target`: 1.0 up, -1.0 down, 0.0 unchanged (NaN in warm-up)."""
    ret = return_target(prices, horizon)
    # return_target has checked horizon
    return pd.Series(np.sign(ret.to_numpy()), index=ret.index, name=f"dir_{int(horizon)}")


@dataclass(frozen=True)
class Windows:
    """Samples for a forecaster: windows of feature rows and the target each one predicts.

    Attributes
    ----------
    X : ndarray (N, lookback, F)
        ``X[i, -1]`` is the feature row of the decision bar ``index[i]``; ``X[i, 0]`` the row
        ``lookback - 1`` bars earlier. float64.
    y : ndarray (N,)
        The target realized ``horizon`` bars after the decision bar; NaN where that bar lies
        beyond the data (the most recent decisions, still waiting for their outcome).
    index : DatetimeIndex (N,)
        Decision bar of each sample.
    target_index : DatetimeIndex (N,)
        Bar at which ``y`` is realized (NaT beyond the data).
    position : ndarray (N,) of int
        Row number of the decision bar in the feature frame.
    feature_names : tuple of str
    horizon : int
    """

    X: np.ndarray
    y: np.ndarray
    index: pd.DatetimeIndex
    target_index: pd.DatetimeIndex
    position: np.ndarray
    feature_names: tuple[str, ...]
    horizon: int

    def __len__(self) -> int:
        return len(self.y)

    @property
    def lookback(self) -> int:
        """Bars per window."""
        return self.X.shape[1]

    @property
    def labeled(self) -> np.ndarray:
        """Boolean mask of the samples whose target is known (``y`` finite)."""
        return np.isfinite(self.y)

    def take(self, rows: np.ndarray | slice) -> Windows:
        """The samples selected by ``rows`` (integer positions, a boolean mask or a slice)."""
        return Windows(
            X=self.X[rows],
            y=self.y[rows],
            index=self.index[rows],
            target_index=self.target_index[rows],
            position=self.position[rows],
            feature_names=self.feature_names,
            horizon=self.horizon,
        )

    def flat(self) -> np.ndarray:
        """``X`` as a table ``(N, lookback * F)``, time-major: lag ``lookback-1`` first."""
        return self.X.reshape(len(self.X), -1)


def make_windows(
    features: pd.DataFrame | pd.Series,
    target: pd.Series | None,
    lookback: int,
    horizon: int = 1,
) -> Windows:
    """Slice per-bar features into windows ending at each decision bar, paired with the target.

    Parameters
    ----------
    features : DataFrame or Series
        One row per bar (DatetimeIndex), causal. Warm-up rows with NaN are allowed: a window is
        kept only if all its rows are finite.
    target : Series or None
        Causal target indexed like ``features`` (value at a bar = realized at that bar). The
        sample deciding at bar ``t`` gets ``target[t + horizon]``. None gives ``y`` all NaN
        (windows to predict on).
    lookback : int
        Bars per window, ``>= 1``.
    horizon : int
        Bars between the decision and the target, ``>= 1``.

    Returns
    -------
    Windows
        Samples in time order, including the most recent decisions (``y`` NaN) so a model can
        forecast them.
    """
    if isinstance(features, pd.Series):
        features = features.to_frame()
    if not isinstance(features, pd.DataFrame):
        kind = type(features).__name__
        raise TypeError(f"make_windows: features must be a DataFrame, got {kind}")
    if not isinstance(features.index, pd.DatetimeIndex):
        raise ValueError("make_windows: features need a DatetimeIndex")
    if features.shape[1] == 0:
        raise ValueError("make_windows: features have no columns")
    lookback = checks.positive_int(lookback, "lookback")
    horizon = checks.positive_int(horizon, "horizon")
    values = features.to_numpy(dtype=np.float64)
    n = len(values)
    if target is None:
        target_values = np.full(n, np.nan)
    else:
        if not isinstance(target, pd.Series):
            raise TypeError(f"make_windows: target must be a Series, got {type(target).__name__}")
        if not target.index.equals(features.index):
            raise ValueError("make_windows: target and features must share one index")
        target_values = target.to_numpy(dtype=np.float64)

    # a window ending at row p is usable when rows p-lookback+1 .. p are all finite
    finite_rows = np.isfinite(values).all(axis=1).astype(np.int64)
    run = np.concatenate([[0], np.cumsum(finite_rows)])
    ends = np.arange(lookback - 1, n)
    ok = run[ends + 1] - run[ends + 1 - lookback] == lookback
    position = ends[ok]
    if len(position):
        view = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)
        # view[k] is rows k .. k+lookback-1 with time on the last axis
        X = np.ascontiguousarray(view[position - lookback + 1].transpose(0, 2, 1))
    else:
        X = np.empty((0, lookback, values.shape[1]))
    realized = position + horizon
    inside = realized < n
    y = np.full(len(position), np.nan)
    y[inside] = target_values[realized[inside]]
    stamps = features.index
    target_stamps = np.full(len(position), np.datetime64("NaT"), dtype=stamps.dtype)
    target_stamps[inside] = stamps.to_numpy()[realized[inside]]
    return Windows(
        X=X,
        y=y,
        index=stamps[position],
        target_index=pd.DatetimeIndex(target_stamps),
        position=position,
        feature_names=tuple(str(c) for c in features.columns),
        horizon=horizon,
    )
