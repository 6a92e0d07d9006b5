"""LMForecaster: a language model of price moves that forecasts by sampling.

The pipeline, every step of it fitted on training prices only::

    prices -> log returns -> PriceTokenizer ids -> TransformerLM (next-token cross-entropy)
    forecast: last ``context_length`` returns -> generate ``horizon`` tokens, ``num_samples``
              times -> decode to log returns -> Forecast (samples, quantiles, mean, P(up))

Sampled tokens decode to a value drawn uniformly inside their bin (``jitter=True``, the
default) rather than to the bin centre, so the samples form a continuous distribution and
quantile / CRPS scores are not distorted by the grid. The model and everything needed to
use it (tokenizer, hyperparameters) are saved in one ``.npz`` file without pickle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..nn.serialization import ModelFileError, read_metadata
from .probabilistic import Forecast, _close, _prices
from .tokenizer import PriceTokenizer
from .transformer import TransformerLM

__all__ = ["LMForecaster"]

_HYPERPARAMETERS = (
    "context_length",
    "d_model",
    "num_heads",
    "num_layers",
    "mlp_ratio",
    "dropout",
    "n_bins",
    "limit",
    "limit_quantile",
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "warmup_steps",
    "stride",
    "temperature",
    "jitter",
    "seed",
)


class LMForecaster:
    """Probabilistic forecaster: a decoder-only transformer over tokenized log returns.

    Parameters
    ----------
    context_length : int
        Returns the model sees before the token it predicts (and its window in training).
    d_model, num_heads, num_layers, mlp_ratio, dropout
        Size of the :class:`~tradenn.models.transformer.TransformerLM`.
    n_bins : int
        Value tokens of the :class:`~tradenn.models.tokenizer.PriceTokenizer`.
    limit : float, optional
        Half-width of the quantized return range; when None it is fitted on the training
        returns as their ``limit_quantile`` absolute quantile (training data only).
    epochs, batch_size, learning_rate, weight_decay, warmup_steps
        Training (AdamW, warmup + cosine schedule, global-norm clipping at 1).
    stride : int
        Step between consecutive training windows (1 uses every window).
    temperature : float
        Sampling temperature of :meth:`forecast` (1 samples the learned distribution).
    jitter : bool
        Decode a sampled token to a uniform draw inside its bin instead of the bin centre.
    seed : int
        Seeds the weights, the batch order and (unless ``forecast`` gets one) sampling.
    verbose : int
        1 shows a progress bar while training.
    """

    def __init__(
        self,
        context_length: int = 64,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        n_bins: int = 61,
        limit: float | None = None,
        limit_quantile: float = 0.995,
        epochs: int = 5,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        stride: int = 1,
        temperature: float = 1.0,
        jitter: bool = True,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        for name in ("context_length", "epochs", "batch_size", "stride", "n_bins"):
            _check_positive_int(locals()[name], name)
        if not 0.5 < limit_quantile <= 1.0:
            raise ValueError(
                f"LMForecaster: limit_quantile must be in (0.5, 1], got {limit_quantile!r}"
            )
        if not temperature > 0:
            raise ValueError(f"LMForecaster: temperature must be positive, got {temperature!r}")
        self.context_length, self.d_model = int(context_length), int(d_model)
        self.num_heads, self.num_layers = int(num_heads), int(num_layers)
        self.mlp_ratio, self.dropout = int(mlp_ratio), float(dropout)
        self.n_bins, self.limit, self.limit_quantile = int(n_bins), limit, float(limit_quantile)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.warmup_steps, self.stride = int(warmup_steps), int(stride)
        self.temperature, self.jitter = float(temperature), bool(jitter)
        self.seed, self.verbose = int(seed), int(verbose)
        self.tokenizer: PriceTokenizer | None = None
        self.lm: TransformerLM | None = None
        self.history: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ training

    def fit(self, prices: Any, validation: Any = None) -> LMForecaster:
        """Train on one price series or a list of them (each a Series, array or OHLC frame).

        ``validation`` (optional, same forms) reports a held-out loss per epoch.
        """
        returns = [_log_returns(series, "prices") for series in _as_list(prices)]
        self.tokenizer = PriceTokenizer(n_bins=self.n_bins, limit=self.limit)
        if self.limit is None:
            self.tokenizer.fit(
                np.concatenate(returns), kind="returns", quantile=self.limit_quantile
            )
        windows = self._windows(returns, "prices")
        validation_windows = None
        if validation is not None:
            held_out = [_log_returns(s, "validation") for s in _as_list(validation)]
            validation_windows = self._windows(held_out, "validation")
        self.lm = TransformerLM(
            vocab_size=self.tokenizer.vocab_size,
            context_length=self.context_length,
            d_model=self.d_model,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            seed=self.seed,
        )
        self.history = self.lm.fit(
            windows,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            warmup_steps=self.warmup_steps,
            clipnorm=1.0,
            validation_data=validation_windows,
            verbose=self.verbose,
        )
        return self

    def _windows(self, returns: Sequence[np.ndarray], name: str) -> np.ndarray:
        """Token windows of ``context_length + 1`` returns, every ``stride``-th, all series."""
        length = self.context_length + 1
        windows = []
        for series in returns:
            if len(series) < length:
                continue
            ids = self.tokenizer.encode(series, kind="returns")
            view = np.lib.stride_tricks.sliding_window_view(ids, length)[:: self.stride]
            windows.append(view)
        if not windows:
            raise ValueError(
                f"LMForecaster: {name} needs a series of at least {length + 1} prices "
                f"(context_length={self.context_length} returns plus the next one)"
            )
        return np.ascontiguousarray(np.concatenate(windows))

    # ------------------------------------------------------------------ forecasting

    def forecast(
        self, history: Any, horizon: int, num_samples: int = 100, seed: int | None = None
    ) -> Forecast:
        """Sample ``num_samples`` paths of the next ``horizon`` log returns after ``history``.

        ``history`` holds prices up to and including the forecast origin; only its last
        ``context_length - horizon + 1`` returns (at least one) are read, so that the whole
        sampled path fits in the model's context.
        """
        self._check_fitted()
        _check_positive_int(horizon, "horizon")
        _check_positive_int(num_samples, "num_samples")
        returns = _log_returns(history, "history")
        if len(returns) == 0:
            raise ValueError("LMForecaster: history needs at least two prices")
        # leave room for the horizon inside the context, so the key/value cache serves every
        # step (past context_length the window slides and each step recomputes it)
        keep = max(self.context_length - horizon + 1, 1)
        prompt = self.tokenizer.encode(returns[-keep:], kind="returns")
        seed = self.seed if seed is None else seed
        ids = self.lm.generate(
            np.tile(prompt, (num_samples, 1)),
            steps=horizon,
            temperature=self.temperature,
            seed=seed,
            suppress_tokens=list(range(self.tokenizer.num_special_tokens)),
        )[:, -horizon:]
        values = self.tokenizer.decode(ids)
        if self.jitter:
            width = self.tokenizer.bin_width
            noise = np.random.default_rng([seed, 1]).uniform(-0.5, 0.5, values.shape)
            values = values + width * noise
        return Forecast.from_samples(values)

    def predict(self, history: Any, horizon: int = 1, num_samples: int = 100) -> np.ndarray:
        """Mean forecast log return for each of the next ``horizon`` bars."""
        return self.forecast(history, horizon, num_samples).mean

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        config = {name: getattr(self, name) for name in _HYPERPARAMETERS}
        return {**config, "verbose": self.verbose}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model, tokenizer and hyperparameters to one ``.npz`` file (no pickle)."""
        self._check_fitted()
        metadata = {
            "class_name": type(self).__name__,
            "config": self.get_config(),
            "tokenizer": self.tokenizer.get_config(),
        }
        self.lm.save(path, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LMForecaster:
        """Read a forecaster written by :meth:`save`."""
        metadata = read_metadata(path)
        if metadata.get("class_name") != cls.__name__:
            raise ModelFileError(f"{path} holds no {cls.__name__} (a plain model file?)")
        forecaster = cls(**metadata["config"])
        forecaster.tokenizer = PriceTokenizer.from_config(metadata["tokenizer"])
        forecaster.lm = TransformerLM.load(path)
        return forecaster

    def _check_fitted(self) -> None:
        if self.lm is None or self.tokenizer is None:
            raise ValueError("LMForecaster: call fit(prices) before forecast or save")

    def __repr__(self) -> str:
        state = "fitted" if self.lm is not None else "not fitted"
        return (
            f"LMForecaster(context_length={self.context_length}, d_model={self.d_model}, "
            f"num_layers={self.num_layers}, n_bins={self.n_bins}, {state})"
        )


def _as_list(prices: Any) -> list[Any]:
    if isinstance(prices, (list, tuple)):
        return list(prices)
    return [prices]


def _log_returns(prices: Any, name: str) -> np.ndarray:
    """Log returns of a price Series/array, or of the Close column of an OHLC frame."""
    series = _close(prices)
    values = _prices(prices if series is None else series, f"LMForecaster: {name}")
    return np.diff(np.log(values))


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"LMForecaster: {name} must be a positive integer, got {value!r}")
