"""Model strategies: a walk-forward forecast turned into target positions.

A :class:`ForecastStrategy` names a model (:meth:`~ForecastStrategy.make_model`) and the inputs
it sees; :meth:`~ForecastStrategy.positions` runs :func:`tradenn.models.walk_forward` over the
data handed to it, so every position at bar ``t`` comes from a model fitted on samples whose
targets were known by ``t``, refitted every ``retrain`` bars on a schedule anchored at the first
bar. The backtester's look-ahead check reruns ``positions()`` on truncated data; fitted models
are cached by a digest of their training data, so those reruns reuse them instead of refitting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.strategy import Strategy

__all__ = ["ForecastStrategy", "NeuralForecastStrategy"]

SIZINGS = ("sign", "threshold", "probability")
FEATURE_SETS = ("returns", "full")


class ForecastStrategy(Strategy):
    """Base class of the model strategies: trade the sign or strength of a forecast.

    Subclasses define :meth:`make_model` (a fresh, unfitted model with ``fit(X, y)`` and
    ``predict(X)``) and may change the parameters below.

    Parameters (class attributes)
    -----------------------------
    features : "returns" or "full"
        "returns": the 1-bar log return only (the window supplies the lags); "full":
        :func:`tradenn.features.pipeline.build_features`.
    lookback : int
        Bars per input window.
    horizon : int
        The forecast is the log return over the next ``horizon`` bars.
    train_size : int
        Samples in the first training window (and the rolling window length).
    retrain : int
        Bars between refits (the walk-forward test block).
    mode : "expanding" or "rolling"
    sizing : "sign", "threshold" or "probability"
        "sign": long when the forecast is positive, short when negative. "threshold": the same,
        but flat unless ``|forecast| > threshold * s`` where ``s`` is the standard deviation of
        the fold's training targets. "probability": ``2 p - 1`` where ``p`` is the model's
        probability of a rise (its ``p_up(X)``), or, for models without one,
        ``Phi(forecast / s)``.
    threshold : float
        For "threshold" sizing, in units of ``s``.
    long_only : bool
        Never short (negative targets become flat).
    scale_inputs : bool
        Standardize model inputs with each fold's training statistics.
    seed : int
        Seeds the model.
    """

    features = "returns"
    lookback = 10
    horizon = 1
    train_size = 1000
    retrain = 250
    mode = "expanding"
    sizing = "sign"
    threshold = 0.0
    long_only = False
    scale_inputs = True
    seed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._models: dict[str, Any] = {}
        self.forecast = None  # the WalkForwardResult of the longest data seen

    # ------------------------------------------------------------------- to override

    def make_model(self) -> Any:
        """A fresh, unfitted model. Subclasses must override."""
        raise NotImplementedError(f"{type(self).__name__} must define make_model()")

    def make_features(self, data: pd.DataFrame) -> pd.DataFrame:
        """Per-bar causal model inputs, by the ``features`` parameter."""
        if self.features not in FEATURE_SETS:
            raise ValueError(
                f"{type(self).__name__}: features must be one of {FEATURE_SETS}, "
                f"got {self.features!r}"
            )
        if self.features == "returns":
            from tradenn.features.windows import return_target

            return return_target(data).to_frame("ret_1")
        from tradenn.features.pipeline import build_features

        return build_features(data)

    # ------------------------------------------------------------------- positions

    def positions(self, data: pd.DataFrame) -> pd.Series:
        """Target exposure per bar from the walk-forward forecast (flat before the first one)."""
        from tradenn.models.walk_forward import NotEnoughData

        self._check_parameters()
        try:
            result = self._walk_forward(data)
        except NotEnoughData:
            if len(data) < len(self.data.frame):  # a prefix (look-ahead check): no view yet
                return pd.Series(0.0, index=data.index, name="target")
            raise
        if self.forecast is None or len(result.predictions) >= len(self.forecast.predictions):
            self.forecast = result
        return self.size(result).reindex(data.index).fillna(0.0)

    def _walk_forward(self, data: pd.DataFrame) -> Any:
        from tradenn.models.walk_forward import walk_forward

        return walk_forward(
            self.make_model,
            data,
            features=self.make_features,
            target="return",
            lookback=self.lookback,
            horizon=self.horizon,
            train_size=self.train_size,
            test_size=self.retrain,
            mode=self.mode,
            scale=self.scale_inputs,
            cache=self._models,
        )

    def size(self, result: Any) -> pd.Series:
        """Target exposures in [-1, 1] from a :class:`~tradenn.models.WalkForwardResult`."""
        forecast = result.predictions.to_numpy()
        scale = result.target_scale.to_numpy()
        if self.sizing == "sign":
            target = np.sign(forecast)
        elif self.sizing == "threshold":
            target = np.sign(forecast) * (np.abs(forecast) > self.threshold * scale)
        else:
            if result.p_up is not None:
                p = result.p_up.to_numpy()
            else:
                p = 0.5 * np.vectorize(math.erfc)(-forecast / (scale * math.sqrt(2.0)))
            target = np.clip(2.0 * p - 1.0, -1.0, 1.0)
        if self.long_only:
            target = np.maximum(target, 0.0)
        return pd.Series(np.nan_to_num(target), index=result.predictions.index, name="target")

    def diagnostics(self) -> dict[str, float]:
        """Out-of-sample forecast quality of the last full run, for reports and leaderboards."""
        if self.forecast is None:
            return {}
        m = self.forecast.metrics
        return {
            "OOS R2": m["OOS R2 (zero)"],
            "OOS R2 vs Mean": m["OOS R2 (mean)"],
            "Directional Accuracy [%]": 100.0 * m["Directional Accuracy"],
            "DM p-value": m["DM p-value"],
            "Forecasts": m["N"],
            "Refits": m["Folds"],
            "Training Time [s]": m["Training Time [s]"],
        }

    def _check_parameters(self) -> None:
        name = type(self).__name__
        if self.sizing not in SIZINGS:
            raise ValueError(f"{name}: sizing must be one of {SIZINGS}, got {self.sizing!r}")
        if not self.threshold >= 0:
            raise ValueError(f"{name}: threshold must be >= 0, got {self.threshold!r}")


class NeuralForecastStrategy(ForecastStrategy):
    """A :class:`ForecastStrategy` whose model is a :mod:`tradenn.models.forecasters` network.

    Adds the training parameters every network shares (see
    :class:`~tradenn.models.forecasters.NeuralForecaster`): ``epochs`` (at most),
    ``patience`` (early stopping on the validation tail), ``learning_rate``, ``batch_size``
    and ``validation_fraction`` (the most recent share of each training set held out).
    """

    features = "full"
    lookback = 20
    epochs = 15
    patience = 3
    learning_rate = 0.003
    batch_size = 64
    validation_fraction = 0.15

    def training_options(self) -> dict[str, Any]:
        """Keyword arguments for the network's constructor."""
        return {
            "epochs": self.epochs,
            "patience": self.patience,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
        }
