"""Walk-forward evaluation: refit on the past, forecast the next block, slide, repeat.

The samples are the windows of :func:`tradenn.features.make_windows`, in time order. Fold ``k``
tests the ``test_size`` samples starting at sample ``train_size + k * test_size`` (the schedule
is anchored at the first sample, so the same data truncated later gives the same folds). Its
model is fitted on samples whose **target was realized no later than the first test decision
bar minus** ``embargo`` bars; ``mode="expanding"`` keeps all of them, ``"rolling"`` the last
``train_size``. So no training sample's target lies in a test period, and the last ``horizon``
samples before a test block (whose outcomes are not yet known when it starts) are purged.

Input scaling (``scale=True``) fits a :class:`~tradenn.features.scaling.StandardScaler` on each
fold's training windows only. A model whose class sets ``raw_inputs = True`` (e.g.
:class:`~tradenn.models.LMReturnModel`, which tokenizes log returns on its own fitted range) is
never given scaled inputs: ``scale`` does not apply to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.features.windows import Windows, make_windows, return_target
from tradenn.models.metrics import forecast_metrics

__all__ = [
    "Fold",
    "Forecast",
    "LiveWalkForward",
    "NotEnoughData",
    "WalkForwardResult",
    "training_rows",
    "walk_forward",
    "walk_forward_folds",
    "wants_raw_inputs",
]


class NotEnoughData(ValueError):
    """Too few samples for one training window plus something to test."""


@dataclass(frozen=True)
class Fold:
    """One refit: which samples trained the model and which it forecast (row numbers)."""

    number: int
    train: np.ndarray
    test: np.ndarray


@dataclass
class WalkForwardResult:
    """Out-of-sample forecasts of a walk-forward run.

    Attributes
    ----------
    predictions : Series
        The forecast made at each decision bar of every test block (index = decision bar).
    actuals : Series
        The realized target for each prediction (NaN for the latest ones, still unknown).
    benchmark : Series
        The historical-mean forecast: the mean training target of each prediction's fold.
    target_scale : Series
        The standard deviation of the training targets of each prediction's fold (a causal
        yardstick for sizing positions).
    metrics : dict
        :func:`~tradenn.models.metrics.forecast_metrics` over the predictions with known
        actuals, plus ``"Folds"`` and ``"Training Time [s]"``.
    folds : DataFrame
        Per fold: first/last training decision bar and target bar, first/last test bar, sample
        counts and training seconds.
    train_index : list of DatetimeIndex
        Decision bars of each fold's training samples (for audits).
    train_target_index : list of DatetimeIndex
        Bars at which those training targets were realized.
    p_up : Series or None
        The model's probability that the target is positive, for models with ``p_up(X)``.
    models : list
        Each fold's fitted model, with ``keep_models=True``.
    """

    predictions: pd.Series
    actuals: pd.Series
    benchmark: pd.Series
    target_scale: pd.Series
    metrics: dict[str, float]
    folds: pd.DataFrame
    train_index: list[pd.DatetimeIndex] = field(repr=False)
    train_target_index: list[pd.DatetimeIndex] = field(repr=False)
    p_up: pd.Series | None = None
    models: list[Any] = field(default_factory=list, repr=False)

    @property
    def training_seconds(self) -> float:
        """Total wall time spent fitting models (cache hits cost nothing)."""
        return float(self.folds["Train Seconds"].sum()) if len(self.folds) else 0.0


def walk_forward_folds(
    windows: Windows,
    *,
    train_size: int,
    test_size: int,
    mode: str = "expanding",
    embargo: int = 0,
) -> list[Fold]:
    """The folds of a walk-forward run over ``windows`` (see the module docstring).

    A fold whose training set would be empty (e.g. everything purged) is an error, not a
    silent skip.
    """
    checks.positive_int(train_size, "train_size", "walk_forward")
    checks.positive_int(test_size, "test_size", "walk_forward")
    checks.non_negative_int(embargo, "embargo", "walk_forward")
    if mode not in ("expanding", "rolling"):
        raise ValueError(f"walk_forward: mode must be 'expanding' or 'rolling', got {mode!r}")
    n = len(windows)
    if n <= train_size:
        raise NotEnoughData(
            f"walk_forward: {n} samples leave nothing to test after train_size={train_size}"
        )
    folds = []
    for k, start in enumerate(range(train_size, n, test_size)):
        test = np.arange(start, min(start + test_size, n))
        usable = training_rows(windows, start, train_size=train_size, mode=mode, embargo=embargo)
        if len(usable) == 0:
            raise ValueError(
                f"walk_forward: fold {k} has no training sample (embargo={embargo}, "
                f"horizon={windows.horizon}, train_size={train_size})"
            )
        folds.append(Fold(k, usable, test))
    return folds


def training_rows(
    windows: Windows, start: int, *, train_size: int, mode: str = "expanding", embargo: int = 0
) -> np.ndarray:
    """Rows that train the fold whose first test sample is ``start``: those whose target was
    realized no later than that sample's decision bar minus ``embargo`` (the last
    ``train_size`` of them in ``"rolling"`` mode). ``start == len(windows)`` is the fold that
    would begin at the bar after the data (what ``tradenn train`` fits)."""
    labeled = windows.labeled[:start]
    realized = windows.position[:start] + windows.horizon  # row at which each target is known
    decided = windows.position[start] if start < len(windows) else windows.position[-1] + 1
    usable = np.flatnonzero(labeled & (realized <= decided - embargo))
    return usable[-train_size:] if mode == "rolling" else usable


def walk_forward(
    make_model: Callable[[], Any],
    frame: pd.DataFrame,
    *,
    features: pd.DataFrame | Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    target: pd.Series | str = "return",
    lookback: int = 1,
    horizon: int = 1,
    train_size: int,
    test_size: int,
    mode: str = "expanding",
    embargo: int = 0,
    scale: bool = True,
    cache: MutableMapping[str, Any] | None = None,
    keep_models: bool = False,
) -> WalkForwardResult:
    """Walk-forward out-of-sample forecasts of ``make_model()`` models on ``frame``.

    Parameters
    ----------
    make_model : callable
        Returns a fresh, unfitted model (``fit(X, y)``, ``predict(X)``, optionally
        ``p_up(X)``, the probability of a positive target). Models with
        ``input_kind == "tabular"`` get windows flattened to ``(N, lookback * F)``; others get
        ``(N, lookback, F)``.
    frame : DataFrame
        Price frame (Close needed for the default target and features).
    features : DataFrame, callable or None
        Per-bar causal features; a callable is applied to ``frame``; None uses
        :func:`~tradenn.features.pipeline.build_features`.
    target : Series, "return" or "direction"
        Causal target realized at its index (see :mod:`tradenn.features.windows`); the strings
        use :func:`return_target` / its sign over ``horizon`` bars.
    lookback, horizon
        Window length and forecast distance in bars.
    train_size, test_size, mode, embargo
        The fold schedule (:func:`walk_forward_folds`); sizes count samples (windows).
    scale : bool
        Standardize inputs with statistics from each fold's training windows. Ignored for
        models with ``raw_inputs = True`` (they read the features in their own units, e.g.
        :class:`~tradenn.models.LMReturnModel`'s log returns), which always get them unscaled.
    cache : mapping, optional
        Fitted models by a digest of (model config, training data): a rerun over data that
        agrees on a fold's training set reuses its model instead of refitting (the
        backtester's look-ahead check reruns strategies on truncated data).
    keep_models : bool
        Keep each fold's fitted model in the result.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"walk_forward: frame must be a price DataFrame, got {type(frame)}")
    if features is None:
        from tradenn.features.pipeline import build_features

        features = build_features(frame)
    elif callable(features):
        features = features(frame)
    if isinstance(target, str):
        if target not in ("return", "direction"):
            raise ValueError(
                f"walk_forward: target must be a Series, 'return' or 'direction', got {target!r}"
            )
        series = return_target(frame, horizon)
        target = np.sign(series) if target == "direction" else series
    windows = make_windows(features, target, lookback, horizon)
    folds = walk_forward_folds(
        windows, train_size=train_size, test_size=test_size, mode=mode, embargo=embargo
    )

    n = len(windows)
    predictions = np.full(n, np.nan)
    benchmark = np.full(n, np.nan)
    scale_of = np.full(n, np.nan)
    p_up = np.full(n, np.nan)
    has_p_up = False
    rows, train_index, train_target_index, models = [], [], [], []
    first_test = folds[0].test[0]
    for fold in folds:
        X_train, y_train = windows.X[fold.train], windows.y[fold.train]
        X_test = windows.X[fold.test]
        probe = make_model()
        if scale and not wants_raw_inputs(probe):
            from tradenn.features.scaling import StandardScaler

            scaler = StandardScaler().fit(X_train)
            X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        tabular = getattr(probe, "input_kind", "tabular") == "tabular"
        if tabular:
            X_train, X_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
        key = _digest(probe, X_train, y_train) if cache is not None else None
        seconds = 0.0
        if key is not None and key in cache:
            model = cache[key]
        else:
            began = time.perf_counter()
            model = probe.fit(X_train, y_train) or probe
            seconds = time.perf_counter() - began
            if key is not None:
                cache[key] = model
        predictions[fold.test] = _predict(model.predict, X_test)
        if hasattr(model, "p_up"):
            has_p_up = True
            p_up[fold.test] = _predict(model.p_up, X_test)
        benchmark[fold.test] = y_train.mean()
        scale_of[fold.test] = y_train.std()
        if keep_models:
            models.append(model)
        train_index.append(windows.index[fold.train])
        train_target_index.append(windows.target_index[fold.train])
        rows.append(
            {
                "Fold": fold.number,
                "Train Start": windows.index[fold.train[0]],
                "Train End": windows.index[fold.train[-1]],
                "Last Train Target": windows.target_index[fold.train[-1]],
                "Test Start": windows.index[fold.test[0]],
                "Test End": windows.index[fold.test[-1]],
                "Train Samples": len(fold.train),
                "Test Samples": len(fold.test),
                "Train Seconds": seconds,
            }
        )

    tested = slice(first_test, n)
    stamps = windows.index[tested]
    result = WalkForwardResult(
        predictions=pd.Series(predictions[tested], index=stamps, name="prediction"),
        actuals=pd.Series(windows.y[tested], index=stamps, name="actual"),
        benchmark=pd.Series(benchmark[tested], index=stamps, name="historical_mean"),
        target_scale=pd.Series(scale_of[tested], index=stamps, name="target_scale"),
        metrics={},
        folds=pd.DataFrame(rows),
        train_index=train_index,
        train_target_index=train_target_index,
        p_up=pd.Series(p_up[tested], index=stamps, name="p_up") if has_p_up else None,
        models=models,
    )
    result.metrics = {
        **forecast_metrics(
            result.actuals, result.predictions, result.benchmark, horizon=windows.horizon
        ),
        "Folds": len(folds),
        "Training Time [s]": result.training_seconds,
    }
    return result


def wants_raw_inputs(model: Any) -> bool:
    """Whether ``model`` declares ``raw_inputs = True``: it must get its inputs unscaled."""
    return bool(getattr(model, "raw_inputs", False))


PREDICT_CHUNK = 256
"""Rows per prediction call (see :func:`_predict`)."""


def _predict(method: Callable[[np.ndarray], Any], X: np.ndarray) -> np.ndarray:
    """``method(X)`` in chunks of exactly :data:`PREDICT_CHUNK` rows, the last one padded.

    A matrix product's rounding can depend on its shape (BLAS picks kernels and blockings by
    size), so a float32 network could forecast a bar differently when the same test block is
    cut short (as in the backtester's truncation check). With every call the same shape, the
    forecast for a row depends on that row only.
    """
    out = np.empty(len(X))
    for start in range(0, len(X), PREDICT_CHUNK):
        chunk = X[start : start + PREDICT_CHUNK]
        rows = len(chunk)
        if rows < PREDICT_CHUNK:
            padding = np.repeat(chunk[-1:], PREDICT_CHUNK - rows, axis=0)
            chunk = np.concatenate([chunk, padding])
        out[start : start + rows] = np.asarray(method(chunk), dtype=np.float64).reshape(-1)[:rows]
    return out


def _digest(model: Any, X: np.ndarray, y: np.ndarray) -> str:
    """A key identifying (model class + configuration, training data)."""
    config = model.get_config() if hasattr(model, "get_config") else repr(model)
    h = hashlib.blake2b(digest_size=20)
    h.update(type(model).__qualname__.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for array in (X, y):
        array = np.ascontiguousarray(array)
        h.update(str((array.shape, array.dtype.str)).encode())
        h.update(array.data)
    return h.hexdigest()


@dataclass(frozen=True)
class Forecast:
    """The forecast :class:`LiveWalkForward` makes at the latest bar.

    ``scale`` and ``mean`` are the standard deviation and mean of the training targets of the
    model that made it (the yardsticks :func:`walk_forward` reports as ``target_scale`` and
    ``benchmark``); ``p_up`` the model's probability of a rise, when it has one.
    """

    prediction: float
    scale: float
    mean: float
    p_up: float | None
    fold: int


class LiveWalkForward:
    """:func:`walk_forward` one bar at a time: the forecast at the last bar of the data so far.

    Given the bars up to ``t`` (the first bar of the data anchors the schedule, as in
    :func:`walk_forward`), :meth:`update` returns the forecast :func:`walk_forward` makes at
    ``t`` over any data that starts with these bars: the sample at ``t`` belongs to fold
    ``k = (s - train_size) // test_size`` (``s`` its sample number), whose model is fitted on
    :func:`training_rows` when the first bar of the fold arrives (or, after a restart or with a
    model trained elsewhere, when the fold's first bar has no model yet) and kept until the
    fold ends. Features are computed over all the bars given, so they equal the whole-data ones
    bit for bit; predictions go through the same fixed-shape calls, so the forecast is the one
    the backtest makes, not an approximation of it.

    Parameters are those of :func:`walk_forward` (``features`` a callable or None, the
    target the ``horizon``-bar log return), and ``progress``: models with a ``verbose``
    setting show a progress bar while they train (it is set back before anything else sees
    the model, so a saved model does not depend on it).

    Attributes
    ----------
    model, scaler
        The fitted model of the current fold and its input scaler (None before the first fit).
    fold : int or None
        Fold number of the current model (``-1``: a model given to :meth:`adopt`).
    until : int or None
        Sample number at which the current model's fold ends (None: an adopted model, due at
        the next fold after the first bar it forecasts).
    fitted : dict or None
        Set by :meth:`update` when it fitted a model: fold, training rows and their first and
        last decision bars, seconds.
    """

    def __init__(
        self,
        make_model: Callable[[], Any],
        *,
        features: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        lookback: int,
        horizon: int = 1,
        train_size: int,
        test_size: int,
        mode: str = "expanding",
        embargo: int = 0,
        scale: bool = True,
        progress: bool = False,
    ) -> None:
        self.make_model = make_model
        self.progress = progress
        self.features = features
        self.lookback, self.horizon = lookback, horizon
        self.train_size, self.test_size = train_size, test_size
        self.mode, self.embargo, self.scale = mode, embargo, scale
        self.model: Any = None
        self.scaler: Any = None
        self.target_mean = self.target_scale = math.nan
        self.fold: int | None = None
        self.until: int | None = 0
        self.fitted: dict[str, Any] | None = None
        self.needs = 0  # samples still missing before the first fit (when update returns None)

    def windows(self, frame: pd.DataFrame) -> Windows:
        """The samples of ``frame`` (features and ``horizon``-bar return targets)."""
        if self.features is None:
            from tradenn.features.pipeline import build_features

            features = build_features(frame)
        else:
            features = self.features(frame)
        target = return_target(frame, self.horizon)
        return make_windows(features, target, self.lookback, self.horizon)

    def update(self, frame: pd.DataFrame) -> Forecast | None:
        """The forecast at ``frame``'s last bar, fitting the fold's model first if it has none;
        None while there is no complete input window or no model yet (see :attr:`needs`)."""
        self.fitted = None
        windows = self.windows(frame)
        n = len(windows)
        if n == 0 or windows.position[-1] != len(frame) - 1:
            self.needs = self.train_size - n + 1
            return None
        s = n - 1
        if self.model is not None and self.until is None:  # adopted: due at the next fold
            self.until = self._next_start(s)
        if self.model is None or s >= self.until:
            if s < self.train_size:
                self.needs = self.train_size - s
                return None
            k = (s - self.train_size) // self.test_size
            self.fit(windows, self.train_size + k * self.test_size, k)
        X = windows.X[s : s + 1]
        if self.scaler is not None:
            X = self.scaler.transform(X)
        if getattr(self.model, "input_kind", "tabular") == "tabular":
            X = X.reshape(1, -1)
        prediction = float(_predict(self.model.predict, X)[0])
        p_up = float(_predict(self.model.p_up, X)[0]) if hasattr(self.model, "p_up") else None
        return Forecast(prediction, self.target_scale, self.target_mean, p_up, self.fold)

    def fit(self, windows: Windows, start: int, fold: int) -> None:
        """Fit the model of the fold whose first test sample is ``start`` (``start ==
        len(windows)``: the fold after the data, what ``tradenn train`` fits)."""
        rows = training_rows(
            windows, start, train_size=self.train_size, mode=self.mode, embargo=self.embargo
        )
        if len(rows) == 0:
            raise NotEnoughData(f"walk_forward: fold {fold} has no training sample")
        X_train, y_train = windows.X[rows], windows.y[rows]
        model = self.make_model()
        scaler = None
        if self.scale and not wants_raw_inputs(model):
            from tradenn.features.scaling import StandardScaler

            scaler = StandardScaler().fit(X_train)
            X_train = scaler.transform(X_train)
        if getattr(model, "input_kind", "tabular") == "tabular":
            X_train = X_train.reshape(len(X_train), -1)
        quiet = getattr(model, "verbose", None)
        if self.progress and quiet == 0:
            model.verbose = 1
        began = time.perf_counter()
        try:
            model = model.fit(X_train, y_train) or model
        finally:
            if quiet is not None:
                model.verbose = quiet
        seconds = time.perf_counter() - began
        self.model, self.scaler, self.fold = model, scaler, fold
        self.target_mean, self.target_scale = float(y_train.mean()), float(y_train.std())
        self.until = start + self.test_size
        self.fitted = {
            "fold": fold,
            "samples": len(rows),
            "first": windows.index[rows[0]],
            "last": windows.index[rows[-1]],
            "seconds": seconds,
        }

    def adopt(
        self,
        model: Any,
        scaler: Any,
        target_mean: float,
        target_scale: float,
        *,
        fold: int = -1,
        until: int | None = None,
    ) -> None:
        """Continue with a fitted model: one restored after a restart (its ``fold`` and
        ``until``), or one fitted elsewhere (``tradenn train``), used until the schedule's next
        fold begins after the first bar it forecasts."""
        self.model, self.scaler, self.fold, self.until = model, scaler, fold, until
        self.target_mean, self.target_scale = float(target_mean), float(target_scale)

    def _next_start(self, sample: int) -> int:
        """First sample of the first fold that begins after ``sample``."""
        if sample < self.train_size:
            return self.train_size
        k = (sample - self.train_size) // self.test_size
        return self.train_size + (k + 1) * self.test_size
