"""Model strategies: a walk-forward forecast turned into target positions.

A :class:`ForecastStrategy` names a model (:meth:`~ForecastStrategy.make_model`) and the inputs
it sees; :meth:`~ForecastStrategy.positions` runs :func:`tradenn.models.walk_forward` over the
data handed to it, so every position at bar ``t`` comes from a model fitted on samples whose
targets were known by ``t``, refitted every ``retrain`` bars on a schedule anchored at the first
bar. The backtester's look-ahead check reruns ``positions()`` on truncated data; fitted models
are cached by a digest of their training data, so those reruns reuse them instead of refitting.

Live (the paper loop), :meth:`~ForecastStrategy.target_now` answers for the newest bar only,
through :class:`tradenn.models.walk_forward.LiveWalkForward`: the same folds, fitted at the
same bars on the same samples, so a replayed paper run trades exactly as the backtest. Each
fitted model is saved through the loop's artifact store (``LEDGER.models/fold-NNNN.npz``)
and a restart loads the last one instead of refitting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.strategy import Strategy
from tradenn.live.artifacts import (
    ArtifactError,
    check_artifact,
    data_digest,
    load_artifact,
    read_artifact,
)

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

    history_bars = "all"  # live: refits see every bar, as in the backtest
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
        self._live: Any = None  # LiveWalkForward, in the paper loop
        self._record: dict[str, Any] | None = None  # artifact of the live model

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
            self.make_model, data, target="return", cache=self._models, **self._fold_settings()
        )

    def _fold_settings(self) -> dict[str, Any]:
        """The walk-forward keywords these parameters set, the same in backtest and live."""
        return {
            "features": self.make_features,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "train_size": self.train_size,
            "test_size": self.retrain,
            "mode": self.mode,
            "scale": self.scale_inputs,
        }

    def size(self, result: Any) -> pd.Series:
        """Target exposures in [-1, 1] from a :class:`~tradenn.models.WalkForwardResult`."""
        p_up = None if result.p_up is None else result.p_up.to_numpy()
        target = self.size_values(
            result.predictions.to_numpy(), result.target_scale.to_numpy(), p_up
        )
        return pd.Series(target, index=result.predictions.index, name="target")

    def size_values(
        self, forecast: np.ndarray, scale: np.ndarray, p_up: np.ndarray | None
    ) -> np.ndarray:
        """Target exposures in [-1, 1] from forecasts, their folds' target standard deviations
        and (for models with one) probabilities of a rise, by the ``sizing`` parameter."""
        if self.sizing == "sign":
            target = np.sign(forecast)
        elif self.sizing == "threshold":
            target = np.sign(forecast) * (np.abs(forecast) > self.threshold * scale)
        else:
            if p_up is None:
                p_up = 0.5 * np.vectorize(math.erfc)(-forecast / (scale * math.sqrt(2.0)))
            target = np.clip(2.0 * p_up - 1.0, -1.0, 1.0)
        if self.long_only:
            target = np.maximum(target, 0.0)
        return np.nan_to_num(target)

    # ------------------------------------------------------------------- live

    def live_model(self) -> Any:
        """The :class:`~tradenn.models.walk_forward.LiveWalkForward` of these parameters."""
        if self._live is None:
            from tradenn.models.walk_forward import LiveWalkForward

            self._live = LiveWalkForward(
                self.make_model, progress=self.progress, **self._fold_settings()
            )
        return self._live

    def target_now(self, data: pd.DataFrame) -> float:
        """The target at ``data``'s last bar (live): the forecast of the current fold's
        model, fitted (and saved to :attr:`store`) when the fold begins."""
        self._check_parameters()
        live = self.live_model()
        forecast = live.update(data)
        if live.fitted is not None:
            self._save_model(data)
        if forecast is None and live.model is not None:
            self.waiting = f"{type(self).__name__} is flat until its features have warmed up"
            return 0.0
        if forecast is None:
            self.waiting = (
                f"{type(self).__name__} is flat until its first model: "
                f"at least {live.needs} more bars before it trains (train_size="
                f"{self.train_size} samples after the features' warm-up)"
            )
            return 0.0
        self.waiting = None
        p_up = None if forecast.p_up is None else np.array([forecast.p_up])
        target = self.size_values(np.array([forecast.prediction]), np.array([forecast.scale]), p_up)
        return float(target[0])

    def train(self, data: pd.DataFrame) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
        """Fit the model of the fold that would begin after ``data`` (``tradenn train``):
        returns the model, its artifact header and arrays."""
        from tradenn.models.walk_forward import NotEnoughData

        self._check_parameters()
        live = self.live_model()
        windows = live.windows(data)
        if len(windows) <= 1:
            raise NotEnoughData(f"{type(self).__name__}: {len(data)} bars give no sample")
        live.fit(windows, len(windows), -1)
        header, arrays = self._artifact(data)
        return live.model, header, arrays

    def _artifact(self, data: pd.DataFrame) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        live = self._live
        info = live.fitted
        header = {
            "strategy": type(self).__name__,
            "params": self.parameters_now(),
            "fold": info["fold"],
            "samples": info["samples"],
            "train_first": str(info["first"]),
            "train_last": str(info["last"]),
            "target_mean": live.target_mean,
            "target_scale": live.target_scale,
            "data": {
                "first": str(data.index[0]),
                "last": str(data.index[-1]),
                "bars": len(data),
                "sha256": data_digest(data),
            },
        }
        arrays = {}
        if live.scaler is not None:
            arrays = {"center": live.scaler.center, "scale": live.scaler.scale}
        return header, arrays

    def _save_model(self, data: pd.DataFrame) -> None:
        if self.store is not None:
            header, arrays = self._artifact(data)
            name = f"fold-{self._live.fold:04d}"
            seconds = self._live.fitted["seconds"]
            self._record = self.store.save(name, self._live.model, header, arrays, seconds=seconds)

    def use_model(self, path: str) -> dict[str, Any]:
        """Start from a model ``tradenn train`` saved (same strategy and parameters, or an
        :class:`~tradenn.live.artifacts.ArtifactError`); returns its header."""
        check_owner(self, read_artifact(path)[0], path)
        model, header, arrays = load_artifact(path, type(self.make_model()))
        self.live_model().adopt(
            model, _scaler(arrays), header["target_mean"], header["target_scale"]
        )
        if self.store is not None:
            self._record = self.store.adopt(path, header)
        return header

    def state(self) -> dict[str, Any]:
        """The live model's place in the schedule and the artifact that holds it."""
        live = self._live
        if live is None or live.model is None:
            return {}
        return {"fold": live.fold, "until": live.until, "model": self._record}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Load the model a :meth:`state` snapshot names (no refit)."""
        if not state:
            return
        if state["model"] is None or self.store is None:
            raise ArtifactError(f"{type(self).__name__}: the snapshot names no model file")
        model, header, arrays = self.store.load(state["model"], type(self.make_model()))
        self._record = state["model"]
        self.live_model().adopt(
            model,
            _scaler(arrays),
            header["target_mean"],
            header["target_scale"],
            fold=state["fold"],
            until=state["until"],
        )

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


def _scaler(arrays: dict[str, np.ndarray]) -> Any:
    """The input scaler an artifact's arrays hold (None when the model had none)."""
    if "center" not in arrays:
        return None
    from tradenn.features.scaling import StandardScaler

    scaler = StandardScaler()
    scaler.center, scaler.scale = arrays["center"], arrays["scale"]
    return scaler


def check_owner(strategy: Strategy, header: dict[str, Any], path: Any) -> None:
    """An artifact must come from this strategy with these parameters (else a one-line
    :class:`~tradenn.live.artifacts.ArtifactError`)."""
    check_artifact(header, type(strategy).__name__, strategy.parameters_now(), path)


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
