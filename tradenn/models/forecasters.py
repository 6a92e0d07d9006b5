"""Neural point forecasters on windows of features: LSTM, GRU, attention and temporal convolution.

Every model maps a window ``X (N, T, F)`` of the last ``T`` bars' features to one number per
sample (``(N,)``, typically the next bar's log return) and shares one training recipe, owned by
:class:`NeuralForecaster`::

    fit(X, y):  split off the validation TAIL (the last ``validation_fraction`` of the samples,
                in the order given, which must be time order; never shuffled into training)
                standardize X per feature and y with statistics of the training part only
                build the network (subclass hook ``_build(n_features, n_timesteps)``)
                Adam on the mean squared error in standardized units, shuffled mini-batches,
                early stopping on the validation loss, best epoch's weights restored
    predict(X): the same standardization, the network, and y back in original units

Targets such as daily log returns (~1e-2) are standardized because the networks' initial
weights and Adam's step size are set for unit-scale signals; so are the inputs (``scale_inputs``).
With a ``seed`` every random choice (weights, dropout masks, batch order) is reproducible: the
same seed on the same data gives bit-identical predictions. ``fit`` reseeds the package
generator of :mod:`tradenn.nn` (as ``Sequential.fit(seed=...)`` does).

The fitted network, its scaling statistics, hyperparameters and training history are saved in
one ``.npz`` file (JSON and arrays, no pickle).
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import numpy as np

from .. import checks, nn
from ..nn import serialization

__all__ = [
    "AttentionForecaster",
    "ConvForecaster",
    "GRUForecaster",
    "LSTMForecaster",
    "NeuralForecaster",
]

# Training settings shared by every forecaster, in constructor order after the architecture.
_TRAINING = (
    "epochs",
    "batch_size",
    "learning_rate",
    "clipnorm",
    "validation_fraction",
    "patience",
    "scale_inputs",
    "seed",
    "verbose",
)
_PREDICT_BATCH = 1024  # rows per forward pass at inference: large batches amortize the T loop


class NeuralForecaster:
    """Base of the neural forecasters: checks, scaling, training, prediction, files.

    A subclass lists its architecture arguments in ``_architecture``, stores them in its
    constructor, and builds its network in ``_build(n_features, n_timesteps)`` returning an
    ``nn.Sequential`` that maps ``(N, T, F)`` to ``(N, 1)``.

    Parameters
    ----------
    epochs : int
        Most passes over the training part; early stopping may end training sooner.
    batch_size : int
        Samples per Adam step.
    learning_rate : float
        Adam step size.
    clipnorm : float, optional
        Clip the global gradient norm of every step to this value.
    validation_fraction : float
        Share of the samples, taken from the end, held out to choose the epoch (in
        ``[0, 1)``; at least one sample when positive). 0 trains for ``epochs`` epochs
        without early stopping.
    patience : int
        Epochs without a lower validation loss before training stops; the weights of the
        best epoch are then restored.
    scale_inputs : bool
        Standardize every feature with its training mean and standard deviation (over
        samples and time steps).
    seed : int
        Seeds the weights, dropout masks and batch order.
    verbose : int
        0 silent, 1 a progress bar per epoch, 2 one line per epoch.

    Attributes
    ----------
    network_ : nn.Sequential
        The fitted network (standardized inputs to standardized target).
    history_ : dict[str, list[float]]
        ``"loss"`` and (with validation) ``"val_loss"`` per epoch, in standardized units
        (1.0 is the error of always predicting the training mean).
    best_epoch_ : int
        0-based epoch whose weights were kept.
    n_timesteps_, n_features_ : int
        ``T`` and ``F`` seen in ``fit``; ``predict`` requires the same.
    """

    input_kind: ClassVar[str] = "sequence"
    _architecture: ClassVar[tuple[str, ...]] = ()
    _classes: ClassVar[dict[str, type[NeuralForecaster]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        NeuralForecaster._classes[cls.__name__] = cls

    def __init__(
        self,
        *,
        epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        clipnorm: float | None = None,
        validation_fraction: float = 0.15,
        patience: int = 10,
        scale_inputs: bool = True,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        owner = self._name()
        self.epochs = checks.positive_int(epochs, "epochs", owner)
        self.batch_size = checks.positive_int(batch_size, "batch_size", owner)
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate", owner)
        self.clipnorm = checks.positive_number(clipnorm, "clipnorm", owner, allow_none=True)
        self.validation_fraction = checks.number(
            validation_fraction, "validation_fraction", owner, low=0, high=1, high_open=True
        )
        self.patience = checks.non_negative_int(patience, "patience", owner)
        self.scale_inputs = bool(scale_inputs)
        self.seed = checks.non_negative_int(seed, "seed", owner)
        self.verbose = checks.integer(verbose, "verbose", owner, low=0, high=2)
        self.network_: nn.Sequential | None = None
        self.history_: dict[str, list[float]] = {}
        self.best_epoch_: int | None = None
        self.n_timesteps_: int | None = None
        self.n_features_: int | None = None
        self._input_mean = self._input_scale = np.zeros(0)
        self._target_mean, self._target_scale = 0.0, 1.0

    # ------------------------------------------------------------------ the subclass hook

    def _build(self, n_features: int, n_timesteps: int) -> nn.Sequential:
        """The network for windows of ``n_timesteps`` x ``n_features``, output ``(N, 1)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training

    def fit(self, X: Any, y: Any) -> NeuralForecaster:
        """Train on windows ``X (N, T, F)`` and targets ``y (N,)``, samples in time order.

        The last ``ceil(N * validation_fraction)`` samples only choose the epoch: they are
        never trained on and the scaling statistics come from the samples before them.
        """
        X = self._windows(X, "X")
        y = self._targets(y, len(X))
        n_validation = math.ceil(len(X) * self.validation_fraction)
        cut = len(X) - n_validation
        if cut < 1:
            raise ValueError(
                f"{self._name()}: fit needs at least one training sample besides the "
                f"{n_validation} validation sample(s), got {len(X)} samples"
            )
        _, n_timesteps, n_features = X.shape
        if self.scale_inputs:
            input_mean = X[:cut].mean(axis=(0, 1))
            input_scale = _nonzero(X[:cut].std(axis=(0, 1)))
        else:
            input_mean, input_scale = np.zeros(n_features), np.ones(n_features)
        target_mean, target_scale = float(y[:cut].mean()), float(_nonzero(y[:cut].std()))
        inputs = (X - input_mean) / input_scale
        targets = ((y - target_mean) / target_scale)[:, None]

        network = self._build(n_features, n_timesteps)
        callbacks: list[nn.Callback] = []
        validation = None
        if n_validation:
            validation = (inputs[cut:], targets[cut:])
            callbacks.append(nn.EarlyStopping(patience=self.patience, restore_best_weights=True))
        history = network.fit(
            inputs[:cut],
            targets[:cut],
            loss="mse",
            optimizer=nn.Adam(self.learning_rate, global_clipnorm=self.clipnorm),
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_data=validation,
            shuffle=True,
            callbacks=callbacks,
            verbose=self.verbose,
            seed=self.seed,
        )
        if not all(math.isfinite(value) for value in history.history["loss"]):
            raise ValueError(
                f"{self._name()}: training diverged (the loss is not finite); "
                f"lower learning_rate or set clipnorm"
            )
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.best_epoch_ = callbacks[0].best_epoch if callbacks else self.epochs - 1
        self.n_timesteps_, self.n_features_ = n_timesteps, n_features
        self._input_mean, self._input_scale = input_mean, input_scale
        self._target_mean, self._target_scale = target_mean, target_scale
        self.network_ = network
        return self

    # ------------------------------------------------------------------ prediction

    def predict(self, X: Any) -> np.ndarray:
        """Forecasts ``(N,)`` for ``X (N, T, F)``: float64, in the units of the training targets."""
        if self.network_ is None:
            raise ValueError(f"{self._name()}: call fit(X, y) before predict")
        X = self._windows(X, "X")
        if X.shape[1:] != (self.n_timesteps_, self.n_features_):
            raise ValueError(
                f"{self._name()}: X must have T={self.n_timesteps_} time steps and "
                f"F={self.n_features_} features as in fit, got shape {X.shape}"
            )
        standardized = self.network_.predict(self._scaled(X), batch_size=_PREDICT_BATCH)
        return standardized[:, 0].astype(np.float64) * self._target_scale + self._target_mean

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable): architecture, then training settings."""
        return {name: _plain(getattr(self, name)) for name in (*self._architecture, *_TRAINING)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the network, scaling, hyperparameters and history to one file
        (:func:`~tradenn.nn.serialization.write_file`, no pickle)."""
        if self.network_ is None:
            raise ValueError(f"{self._name()}: call fit(X, y) before save")
        network, arrays = serialization.network_state(self.network_)
        config = {
            "arguments": self.get_config(),
            "n_timesteps": self.n_timesteps_,
            "n_features": self.n_features_,
            "input_mean": self._input_mean.tolist(),
            "input_scale": self._input_scale.tolist(),
            "target_mean": self._target_mean,
            "target_scale": self._target_scale,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "network": network,
        }
        serialization.write_file(path, serialization.format_name(type(self)), config, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NeuralForecaster:
        """Read a forecaster written by :meth:`save` (``NeuralForecaster.load`` reads any)."""
        formats = {
            serialization.format_name(c): c for c in cls._classes.values() if issubclass(c, cls)
        }
        saved = serialization.read_file(path, formats, cls.__name__)
        config = saved.config
        with serialization.invalid_content(path, cls.__name__):
            forecaster = formats[saved.format](**config["arguments"])
            forecaster.n_timesteps_ = int(config["n_timesteps"])
            forecaster.n_features_ = int(config["n_features"])
            forecaster._input_mean = np.array(config["input_mean"], dtype=np.float64)
            forecaster._input_scale = np.array(config["input_scale"], dtype=np.float64)
            forecaster._target_mean = float(config["target_mean"])
            forecaster._target_scale = float(config["target_scale"])
            forecaster.history_ = {k: list(v) for k, v in config["history"].items()}
            forecaster.best_epoch_ = config["best_epoch"]
            network_config = config["network"]
        forecaster.network_ = serialization.restore_network(network_config, saved.arrays, path)
        return forecaster

    # ------------------------------------------------------------------ helpers

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return (X - self._input_mean) / self._input_scale

    def _windows(self, X: Any, name: str) -> np.ndarray:
        """``X`` as a finite float64 array ``(N, T, F)`` with N, T, F >= 1."""
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self._name()}: {name} must be a numeric array") from None
        if X.ndim != 3 or 0 in X.shape:
            raise ValueError(
                f"{self._name()}: {name} must have shape (N, T, F) with N, T, F >= 1, "
                f"got shape {X.shape}"
            )
        return checks.finite_array(X, name, self._name())

    def _targets(self, y: Any, n_samples: int) -> np.ndarray:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self._name()}: y must be a numeric array") from None
        if y.shape != (n_samples,):
            raise ValueError(
                f"{self._name()}: y must have shape ({n_samples},) to match X, got {y.shape}"
            )
        return checks.finite_array(y, "y", self._name())

    @classmethod
    def _name(cls) -> str:
        return cls.__name__

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._architecture)
        state = "fitted" if self.network_ is not None else "not fitted"
        return f"{type(self).__name__}({arguments}, seed={self.seed}, {state})"


def _nonzero(scale: Any) -> Any:
    """Standard deviations with zeros (constant columns) replaced by 1: no division by 0."""
    return np.where(scale > 0, scale, 1.0)


def _plain(value: Any) -> Any:
    """Tuples as lists, so a config is plain JSON."""
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- recurrent


class _RecurrentForecaster(NeuralForecaster):
    """Stacked recurrent layers; the last hidden state feeds ``Dense(1)``."""

    _architecture = ("units", "num_layers", "dropout")
    _cell: ClassVar[type[nn.Layer]]

    def __init__(
        self, units: int = 32, num_layers: int = 1, dropout: float = 0.0, **training: Any
    ) -> None:
        super().__init__(**training)
        self.units = checks.positive_int(units, "units", self._name())
        self.num_layers = checks.positive_int(num_layers, "num_layers", self._name())
        self.dropout = checks.number(
            dropout, "dropout", self._name(), low=0, high=1, high_open=True
        )

    def _build(self, n_features: int, n_timesteps: int) -> nn.Sequential:
        layers: list[nn.Layer] = []
        for index in range(self.num_layers):
            layers.append(self._cell(self.units, return_sequences=index < self.num_layers - 1))
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
        return nn.Sequential([*layers, nn.Dense(1)])


class LSTMForecaster(_RecurrentForecaster):
    """LSTM encoder over the window; its last hidden state -> ``Dense(1)``.

    ``X (N, T, F) -> LSTM(units) x num_layers -> h_T (N, units) -> Dense(1) -> (N,)``; layers
    below the top return their whole sequence to the next, and ``dropout`` (if positive)
    follows every recurrent layer.

    Parameters
    ----------
    units : int
        Hidden size of every LSTM layer.
    num_layers : int
        Stacked LSTM layers.
    dropout : float
        Dropout rate after each LSTM layer while training.
    **training
        ``epochs``, ``batch_size``, ``learning_rate``, ``clipnorm``,
        ``validation_fraction``, ``patience``, ``scale_inputs``, ``seed``, ``verbose``:
        see :class:`NeuralForecaster`.
    """

    _cell = nn.LSTM


class GRUForecaster(_RecurrentForecaster):
    """GRU encoder over the window; its last hidden state -> ``Dense(1)``.

    As :class:`LSTMForecaster` with ``nn.GRU`` (Keras ``reset_after=True`` layout) layers;
    the same parameters.
    """

    _cell = nn.GRU


# --------------------------------------------------------------------------- attention


class AttentionForecaster(NeuralForecaster):
    """Sequence encoder, attention pooling over time (a learned query), ``Dense(1)``.

    ``encoder="lstm"``::

        X -> LSTM(units, return_sequences) x num_layers -> AttentionPooling1D -> Dense(1)

    ``encoder="transformer"`` (pre-LayerNorm, causal, so every step sees only the past)::

        X -> Dense(units) -> + learned position embedding
          -> TransformerBlock(units, num_heads, causal=True) x num_layers -> LayerNorm
          -> AttentionPooling1D -> Dense(1)

    :class:`~tradenn.nn.AttentionPooling1D` scores every step with a learned query, turns
    the scores into weights with a softmax over time and takes the weighted mean, so the
    model learns which part of the window matters.

    Parameters
    ----------
    units : int
        LSTM hidden size, or the transformer's ``d_model`` (divisible by ``num_heads``).
    encoder : {"lstm", "transformer"}
        The sequence encoder.
    num_heads : int
        Attention heads of the transformer blocks (unused by the LSTM encoder).
    num_layers : int
        Stacked LSTM layers or transformer blocks.
    dropout : float
        Dropout after each LSTM layer, or inside the transformer blocks, while training.
    **training
        See :class:`NeuralForecaster`.
    """

    _architecture = ("units", "encoder", "num_heads", "num_layers", "dropout")

    def __init__(
        self,
        units: int = 32,
        encoder: str = "lstm",
        num_heads: int = 2,
        num_layers: int = 1,
        dropout: float = 0.0,
        **training: Any,
    ) -> None:
        super().__init__(**training)
        checks.choice(encoder, "encoder", ("lstm", "transformer"), self._name())
        self.units = checks.positive_int(units, "units", self._name())
        self.encoder = encoder
        self.num_heads = checks.positive_int(num_heads, "num_heads", self._name())
        self.num_layers = checks.positive_int(num_layers, "num_layers", self._name())
        self.dropout = checks.number(
            dropout, "dropout", self._name(), low=0, high=1, high_open=True
        )
        if encoder == "transformer" and self.units % self.num_heads:
            raise ValueError(
                f"{self._name()}: units={self.units} must be divisible by "
                f"num_heads={self.num_heads} for the transformer encoder"
            )

    def _build(self, n_features: int, n_timesteps: int) -> nn.Sequential:
        layers: list[nn.Layer] = []
        if self.encoder == "lstm":
            for _ in range(self.num_layers):
                layers.append(nn.LSTM(self.units, return_sequences=True))
                if self.dropout:
                    layers.append(nn.Dropout(self.dropout))
        else:
            layers += [nn.Dense(self.units), nn.PositionEmbedding(n_timesteps)]
            layers += [
                nn.TransformerBlock(self.units, self.num_heads, dropout=self.dropout, causal=True)
                for _ in range(self.num_layers)
            ]
            layers.append(nn.LayerNormalization())
        return nn.Sequential([*layers, nn.AttentionPooling1D(), nn.Dense(1)])


# --------------------------------------------------------------------------- convolution


class ConvForecaster(NeuralForecaster):
    """Temporal convolution network: causal dilated ``Conv1D`` layers, last step, ``Dense(1)``.

    ``X (N, T, F) -> Conv1D(filters, kernel_size, padding="causal", dilation_rate=d, relu)``
    for each ``d`` in ``dilations`` ``-> x[:, -1, :] -> Dense(1)``. Causal padding makes
    step ``t`` depend on steps ``<= t`` only; the last step sees the
    :attr:`receptive_field` = ``1 + (kernel_size - 1) * sum(dilations)`` most recent steps
    (31 with the defaults), so choose dilations that cover the window.

    Parameters
    ----------
    filters : int
        Channels of every convolution.
    kernel_size : int
        Taps per convolution.
    dilations : sequence of int
        Dilation rate of each layer, bottom to top (doubling rates grow the receptive field
        exponentially with depth).
    dropout : float
        Dropout after each convolution while training.
    **training
        See :class:`NeuralForecaster`.
    """

    _architecture = ("filters", "kernel_size", "dilations", "dropout")

    def __init__(
        self,
        filters: int = 16,
        kernel_size: int = 3,
        dilations: Any = (1, 2, 4, 8),
        dropout: float = 0.0,
        **training: Any,
    ) -> None:
        super().__init__(**training)
        self.filters = checks.positive_int(filters, "filters", self._name())
        self.kernel_size = checks.positive_int(kernel_size, "kernel_size", self._name())
        if isinstance(dilations, (str, bytes)) or not hasattr(dilations, "__iter__"):
            raise ValueError(
                f"{self._name()}: dilations must be a sequence of positive integers, "
                f"got {dilations!r}"
            )
        dilations = tuple(dilations)
        if not dilations:
            raise ValueError(f"{self._name()}: dilations must hold at least one rate, got ()")
        self.dilations = tuple(
            checks.positive_int(d, "every dilation", self._name()) for d in dilations
        )
        self.dropout = checks.number(
            dropout, "dropout", self._name(), low=0, high=1, high_open=True
        )

    @property
    def receptive_field(self) -> int:
        """How many of the latest steps the forecast depends on."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def _build(self, n_features: int, n_timesteps: int) -> nn.Sequential:
        layers: list[nn.Layer] = []
        for rate in self.dilations:
            layers.append(
                nn.Conv1D(
                    self.filters,
                    self.kernel_size,
                    padding="causal",
                    dilation_rate=rate,
                    activation="relu",
                )
            )
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
        return nn.Sequential([*layers, nn.LastTimestep(), nn.Dense(1)])
