"""LMForecaster: a language model of price moves that forecasts by sampling.

The pipeline, every step of it fitted on training prices only::

    prices -> log returns r[t] -> z[t] = r[t] / sigma[t-1] -> PriceTokenizer ids
           -> TransformerLM (next-token cross-entropy, early stopping on the last 10%)
    forecast: last ``context_length`` values of z -> generate ``horizon`` tokens,
              ``num_samples`` times -> decode, times the volatility at the origin (updated
              along each path) -> Forecast (samples, quantiles, mean, P(up))

``sigma`` is a causal EWMA volatility (``scaling="volatility"``, the default; ``"none"``
tokenizes the log returns themselves). :meth:`LMForecaster.next_quantiles` reads one-step
quantiles off the next-token distribution exactly, without sampling.

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

from .. import checks
from ..nn import serialization
from ..nn.callbacks import EarlyStopping, History
from .common import as_prices, close_series
from .probabilistic import QUANTILE_LEVELS, Forecast
from .tokenizer import PriceTokenizer, volatility_scaled
from .transformer import TransformerLM

__all__ = ["LMForecaster", "LMReturnModel"]

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
    "validation_split",
    "patience",
    "temperature",
    "jitter",
    "scaling",
    "volatility_decay",
    "seed",
)
_SCALINGS = ("none", "volatility")
_WARMUP = 20  # returns that seed the EWMA volatility of ``scaling="volatility"``


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
    validation_split : float
        Fraction of each training series (its last bars) that :meth:`fit` holds out for early
        stopping when it gets no ``validation``; 0 holds out nothing.
    patience : int or None
        Stop after ``patience`` epochs without a lower loss on the held-out bars and keep the
        weights of the best epoch; None trains every epoch.
    temperature : float
        Sampling temperature of :meth:`forecast` (1 samples the learned distribution).
    jitter : bool
        Decode a sampled token to a uniform draw inside its bin instead of the bin centre.
    scaling : {"none", "volatility"}
        What the tokens quantize: the log returns themselves, or the log returns divided by a
        causal EWMA volatility (:func:`~tradenn.models.tokenizer.volatility_scaled`, the
        first 20 returns of a series seed it), so that a token means "so many usual moves"
        in calm and turbulent years alike; forecasts are scaled back by the volatility known
        at the origin.
    volatility_decay : float
        The EWMA's ``decay`` (0.94: RiskMetrics' daily value).
    seed : int
        Seeds the weights, the batch order and (unless ``forecast`` gets one) sampling.
    verbose : int
        1 shows a progress bar while training.

    Attributes
    ----------
    tokenizer : PriceTokenizer or None
        Fitted by :meth:`fit`.
    lm : TransformerLM or None
        The trained language model.
    history : History
        The per-epoch logs of the last :meth:`fit` (``history.history["loss"]``,
        ``"val_loss"`` with validation windows), as ``TransformerLM.fit`` returns them.
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
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        stride: int = 1,
        validation_split: float = 0.1,
        patience: int | None = 1,
        temperature: float = 1.0,
        jitter: bool = True,
        scaling: str = "volatility",
        volatility_decay: float = 0.94,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        owner = "LMForecaster"
        for name in ("context_length", "epochs", "batch_size", "stride", "n_bins"):
            checks.positive_int(locals()[name], name, owner)
        checks.number(limit_quantile, "limit_quantile", owner, low=0.5, high=1, low_open=True)
        checks.number(validation_split, "validation_split", owner, low=0, high=1, high_open=True)
        checks.positive_int(patience, "patience", owner, allow_none=True)
        checks.choice(scaling, "scaling", _SCALINGS, owner)
        checks.number(
            volatility_decay,
            "volatility_decay",
            owner,
            low=0,
            high=1,
            low_open=True,
            high_open=True,
        )
        checks.positive_number(temperature, "temperature", owner)
        self.context_length, self.d_model = int(context_length), int(d_model)
        self.num_heads, self.num_layers = int(num_heads), int(num_layers)
        self.mlp_ratio, self.dropout = int(mlp_ratio), float(dropout)
        self.n_bins, self.limit, self.limit_quantile = int(n_bins), limit, float(limit_quantile)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.warmup_steps, self.stride = int(warmup_steps), int(stride)
        self.validation_split = float(validation_split)
        self.patience = None if patience is None else int(patience)
        self.temperature, self.jitter = float(temperature), bool(jitter)
        self.scaling, self.volatility_decay = scaling, float(volatility_decay)
        self.seed, self.verbose = int(seed), int(verbose)
        self.tokenizer: PriceTokenizer | None = None
        self.lm: TransformerLM | None = None
        self.history = History()

    # ------------------------------------------------------------------ training

    def fit(self, prices: Any, validation: Any = None) -> LMForecaster:
        """Train on one price series or a list of them (each a Series, array or OHLC frame).

        Without ``validation``, the last ``validation_split`` of each series is held out
        (series too short to give a validation window are not split): training stops after
        ``patience`` epochs without a lower loss on it and keeps the weights of the best epoch.
        ``validation`` (optional, same forms) replaces that hold-out and only reports its loss
        per epoch (every epoch is trained).
        """
        values = [self._values(_log_returns(series, "prices"))[0] for series in _as_list(prices)]
        values = [v for v in values if v is not None]
        if not values:
            raise ValueError(
                f"LMForecaster: prices need a series of at least {self._min_prices()} prices"
            )
        self._fit_tokenizer(np.concatenate(values))
        held_out: list[np.ndarray] = []
        if validation is None and self.validation_split > 0:
            values, held_out = self._split(values)
        windows = self._windows(values, "prices")
        validation_windows = self._windows(held_out, "validation") if held_out else None
        if validation is not None:
            held_out = [_log_returns(s, "validation") for s in _as_list(validation)]
            held_out = [v for v in (self._values(r)[0] for r in held_out) if v is not None]
            validation_windows = self._windows(held_out, "validation")
        return self._train(windows, validation_windows, early_stopping=validation is None)

    def fit_windows(self, windows: Any) -> LMForecaster:
        """Train on given windows of log returns, one per row, ``(N, context_length + 1)``.

        For callers that cut the windows themselves (e.g. walk-forward training sets, where
        the last return of each row is a target realized before the test period). ``stride``
        does not apply; the tokenizer range is fitted on these returns when ``limit`` is None.
        With ``scaling="volatility"`` each row is scaled on its own (its first 20 returns seed
        the volatility and are not tokens), as :meth:`next_distribution` scales a context.
        """
        w = np.asarray(windows, dtype=np.float64)
        length = self.context_length + 1
        if w.ndim != 2 or w.shape[1] != length or len(w) == 0:
            raise ValueError(
                f"LMForecaster.fit_windows: expected (N, {length}) log returns "
                f"(context_length + 1 per row), got shape {w.shape}"
            )
        if not np.isfinite(w).all():
            raise ValueError("LMForecaster.fit_windows: windows must be finite")
        if self.scaling == "volatility" and length <= _WARMUP + 1:
            raise ValueError(
                f"LMForecaster.fit_windows: scaling='volatility' needs context_length > "
                f"{_WARMUP} (the first {_WARMUP} returns of a row seed the volatility)"
            )
        values = w if self.scaling == "none" else self._values(w)[0]
        self._fit_tokenizer(values.ravel())
        return self._train(self.tokenizer.encode(values, kind="returns"), None)

    def _split(self, values: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each series' last ``validation_split`` of values held out, when that gives at
        least one validation window and leaves at least one training window."""
        length = self.context_length + 1
        train, held_out = [], []
        for series in values:
            cut = len(series) - round(self.validation_split * len(series))
            if len(series) - cut >= length and cut >= length:
                train.append(series[:cut])
                held_out.append(series[cut:])
            else:
                train.append(series)
        return train, held_out

    def _values(self, returns: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """What gets tokenized (log returns or their volatility-scaled values, last axis time)
        and the scale of the return after the last one (ones without scaling). None when a
        row is too short to seed the volatility."""
        if self.scaling == "none":
            return returns, np.ones(returns.shape[:-1])
        if returns.shape[-1] <= _WARMUP:
            return None, np.ones(returns.shape[:-1])
        return volatility_scaled(returns, decay=self.volatility_decay, warmup=_WARMUP)

    def _min_prices(self) -> int:
        return self.context_length + 2 + (_WARMUP if self.scaling == "volatility" else 0)

    def _fit_tokenizer(self, returns: np.ndarray) -> None:
        self.tokenizer = PriceTokenizer(n_bins=self.n_bins, limit=self.limit)
        if self.limit is None:
            self.tokenizer.fit(returns, kind="returns", quantile=self.limit_quantile)

    def _train(
        self,
        windows: np.ndarray,
        validation_windows: np.ndarray | None,
        early_stopping: bool = False,
    ) -> LMForecaster:
        callbacks = []
        if early_stopping and validation_windows is not None and self.patience is not None:
            callbacks.append(EarlyStopping(patience=self.patience, restore_best_weights=True))
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
            np.ascontiguousarray(windows),
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            warmup_steps=self.warmup_steps,
            clipnorm=1.0,
            validation_data=validation_windows,
            verbose=self.verbose,
            callbacks=callbacks,
        )
        return self

    def _windows(self, returns: Sequence[np.ndarray], name: str) -> np.ndarray:
        """Token windows of ``context_length + 1`` values, every ``stride``-th, all series."""
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
                f"LMForecaster: {name} needs a series of at least {self._min_prices()} prices "
                f"(context_length={self.context_length} returns plus the next one"
                + (f", plus {_WARMUP} to seed the volatility)" if self.scaling != "none" else ")")
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
        checks.positive_int(horizon, "horizon", "LMForecaster")
        checks.positive_int(num_samples, "num_samples", "LMForecaster")
        returns = _log_returns(history, "history")
        values, scale = self._values(returns)
        if values is None or len(values) == 0:
            needed = 2 + (_WARMUP if self.scaling == "volatility" else 0)
            raise ValueError(f"LMForecaster: history needs at least {needed} prices")
        # leave room for the horizon inside the context, so the key/value cache serves every
        # step (past context_length the window slides and each step recomputes it)
        keep = max(self.context_length - horizon + 1, 1)
        prompt = self.tokenizer.encode(values[-keep:], kind="returns")
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
        if self.scaling == "volatility":
            # each sampled scaled return z_k moves the EWMA: v_{k+1} = v_k (d + (1 - d) z_k^2)
            d = self.volatility_decay
            growth = np.cumprod(d + (1.0 - d) * values**2, axis=1)
            variance = float(scale) ** 2 * np.concatenate(
                [np.ones((num_samples, 1)), growth[:, :-1]], axis=1
            )
            values = values * np.sqrt(variance)
        return Forecast.from_samples(values)

    def next_distribution(self, contexts: Any, batch_size: int = 256) -> np.ndarray:
        """Probabilities of each return bin for the next bar after each row of ``contexts``.

        ``contexts``: log returns ``(N, T)``, one context per row (the last ``context_length``
        are read; with ``scaling="volatility"`` the returns before them warm up the
        volatility, so pass at least 20 more). Exact (one forward pass, no sampling); the
        temperature applies. Returns ``(N, n_bins)``, rows summing to 1, columns in the order
        of ``tokenizer.bin_centers`` (in units of :meth:`next_scale` with volatility scaling).
        """
        return self._next(contexts)[0]

    def next_scale(self, contexts: Any) -> np.ndarray:
        """``(N,)``: what a bin centre of :meth:`next_distribution` is multiplied by to give a
        log return (the EWMA volatility at the origin; ones with ``scaling="none"``)."""
        return self._next(contexts, probabilities=False)[1]

    def _next(
        self, contexts: Any, batch_size: int = 256, probabilities: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        c = np.asarray(contexts, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] == 0:
            raise ValueError(
                f"LMForecaster.next_distribution: contexts must be (N, T) returns, got {c.shape}"
            )
        values, scale = self._values(c)
        if values is None:
            raise ValueError(
                f"LMForecaster.next_distribution: scaling='volatility' needs contexts of "
                f"more than {_WARMUP} returns, got {c.shape[1]}"
            )
        if not probabilities:
            return np.empty((len(c), 0)), scale
        ids = self.tokenizer.encode(values[:, -self.context_length :], kind="returns")
        special = self.tokenizer.num_special_tokens
        out = np.empty((len(ids), self.n_bins))
        for start in range(0, len(ids), batch_size):
            logits = self.lm._last_logits(ids[start : start + batch_size])[:, special:]
            z = logits.astype(np.float64) / self.temperature
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            out[start : start + batch_size] = p / p.sum(axis=1, keepdims=True)
        return out, scale

    def next_quantiles(
        self, contexts: Any, levels: Sequence[float] = QUANTILE_LEVELS
    ) -> np.ndarray:
        """Exact quantiles of the next log return after each row of ``contexts``.

        The distribution is :meth:`next_distribution` with each bin's mass spread uniformly
        over the bin (what a jittered sample of :meth:`forecast` draws from), so its CDF is
        piecewise linear between the bin edges and a quantile is read off it without
        sampling. Returns ``(N, len(levels))`` log returns.
        """
        tau = np.asarray(levels, dtype=np.float64)
        if tau.ndim != 1 or not ((tau > 0) & (tau < 1)).all():
            raise ValueError(f"LMForecaster: levels must be floats in (0, 1), got {levels!r}")
        probs, scale = self._next(contexts)
        edges = self.tokenizer.bin_edges
        cdf = np.concatenate([np.zeros((len(probs), 1)), np.cumsum(probs, axis=1)], axis=1)
        cdf[:, -1] = 1.0
        # loop over rows: np.interp is 1-D (N forecasts, each a few dozen bins)
        return np.stack([np.interp(tau, row, edges) for row in cdf]) * scale[:, None]

    def predict(self, history: Any, horizon: int = 1, num_samples: int = 100) -> np.ndarray:
        """Mean forecast log return for each of the next ``horizon`` bars."""
        return self.forecast(history, horizon, num_samples).mean

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        config = {name: getattr(self, name) for name in _HYPERPARAMETERS}
        return {**config, "verbose": self.verbose}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model, tokenizer and hyperparameters to one file
        (:func:`~tradenn.nn.serialization.write_file`, no pickle)."""
        self._check_fitted()
        network, arrays = serialization.network_state(self.lm)
        config = {
            "arguments": self.get_config(),
            "tokenizer": self.tokenizer.get_config(),
            "network": network,
        }
        serialization.write_file(path, serialization.format_name(type(self)), config, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LMForecaster:
        """Read a forecaster written by :meth:`save`."""
        saved = serialization.read_file(path, serialization.format_name(cls), cls.__name__)
        with serialization.invalid_content(path, cls.__name__):
            forecaster = cls(**saved.config["arguments"])
            forecaster.tokenizer = PriceTokenizer.from_config(saved.config["tokenizer"])
            network_config = saved.config["network"]
        lm = serialization.restore_network(network_config, saved.arrays, path)
        if not isinstance(lm, TransformerLM):
            raise serialization.ModelFileError(
                f"{path} holds a {type(lm).__name__}, not a TransformerLM"
            )
        forecaster.lm = lm
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


class LMReturnModel:
    """:class:`LMForecaster` as a point forecaster of the next log return, for walk-forward.

    Follows the models contract (``fit(X, y)``, ``predict(X)``, ``save``/``load``):
    ``X`` is ``(N, context_length, 1)`` windows of past 1-bar log returns (unscaled) and ``y``
    the return that followed each, so each training row ``[X_i, y_i]`` is one token window.
    ``predict`` is the mean of the model's next-return distribution (bin centres weighted by
    their probabilities, exact, no sampling) and ``p_up`` the probability mass above zero
    (the bin straddling zero, if any, counts half). Constructor arguments are
    :class:`LMForecaster`'s.

    Unlike :class:`LMForecaster`, ``scaling`` defaults to ``"none"``: each row of ``X`` is a
    short window of its own, too short to seed a volatility estimate and still leave a context
    (``scaling="volatility"`` spends the first 20 returns of every row on it).

    ``raw_inputs = True``: the tokenizer quantizes log returns on a range fitted to the
    training returns, so :func:`~tradenn.models.walk_forward.walk_forward` never standardizes
    this model's inputs (whatever its ``scale``).
    """

    input_kind = "sequence"
    raw_inputs = True

    def __init__(self, **kwargs: Any) -> None:
        self.forecaster = LMForecaster(**{"scaling": "none", **kwargs})

    def get_config(self) -> dict[str, Any]:
        """The wrapped forecaster's hyperparameters."""
        return self.forecaster.get_config()

    def fit(self, X: Any, y: Any) -> LMReturnModel:
        """Train on the windows ``[X_i, y_i]``."""
        X, y = self._inputs(X), np.asarray(y, dtype=np.float64)
        if y.shape != (len(X),):
            raise ValueError(f"LMReturnModel: y must have shape ({len(X)},), got {y.shape}")
        self.forecaster.fit_windows(np.concatenate([X, y[:, None]], axis=1))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Expected next log return after each window."""
        probs, scale = self.forecaster._next(self._inputs(X))
        return (probs @ self._centres()) * scale

    def p_up(self, X: Any) -> np.ndarray:
        """Probability that the next log return is positive."""
        centres = self._centres()
        weight = np.where(centres > 0, 1.0, 0.0)
        edges = self.forecaster.tokenizer.bin_edges
        weight[(edges[:-1] < 0) & (edges[1:] > 0)] = 0.5
        return self.forecaster.next_distribution(self._inputs(X)) @ weight

    def save(self, path: str | os.PathLike) -> None:
        """Write the wrapped forecaster (see :meth:`LMForecaster.save`)."""
        self.forecaster.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LMReturnModel:
        """Read a file written by :meth:`save`."""
        model = cls.__new__(cls)
        model.forecaster = LMForecaster.load(path)
        return model

    def _centres(self) -> np.ndarray:
        self.forecaster._check_fitted()
        return self.forecaster.tokenizer.bin_centers

    def _inputs(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 3 and X.shape[2] == 1:
            X = X[:, :, 0]
        length = self.forecaster.context_length
        if X.ndim != 2 or X.shape[1] != length:
            raise ValueError(
                f"LMReturnModel: X must be (N, {length}, 1) windows of log returns "
                f"(lookback = context_length), got shape {np.shape(X)}"
            )
        return X


def _as_list(prices: Any) -> list[Any]:
    if isinstance(prices, (list, tuple)):
        return list(prices)
    return [prices]


def _log_returns(prices: Any, name: str) -> np.ndarray:
    """Log returns of a price Series/array, or of the Close column of an OHLC frame."""
    series = close_series(prices)
    values = as_prices(prices if series is None else series, f"LMForecaster: {name}")
    return np.diff(np.log(values))
