"""Models: training, inference and files (:class:`Model`) and the layer stack (:class:`Sequential`).

:class:`Model` gives any composition of layers ``fit``, ``train_on_batch``, ``predict``,
``evaluate``, ``summary``, ``save`` and weight access; a subclass only has to provide
``layers``, ``forward`` and ``backward`` (and ``get_config`` to be loadable). ``fit`` runs
the shared training loop of :mod:`tradenn.nn.training` over ``train_on_batch``.
:class:`Sequential` is the chain ``y = f_L(... f_1(x))`` whose backward runs the chain in
reverse.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import numpy as np

from . import losses as loss_lib
from . import optimizers as optimizer_lib
from .base import (
    Layer,
    Shape,
    backward_without_input_grad,
    format_shape,
    parameters,
    regularization_loss,
    set_seed,
    walk,
)
from .callbacks import Callback, History
from .serialization import deserialize_layer, save_model, serialize_layer
from .training import check_fit_arguments, fit_loop


class Model(Layer):
    """Base class of models: training loop, inference, persistence.

    Attributes
    ----------
    layers : list of Layer
        The layers this model is made of (subclasses set it).
    loss, optimizer
        Set by :meth:`fit` (or by loading); reused when ``fit`` is called without them.
    stop_training : bool
        Callbacks set it to end ``fit`` after the current epoch.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layers: list[Layer] = []
        self.loss: loss_lib.Loss | None = None
        self.optimizer: optimizer_lib.Optimizer | None = None
        self.stop_training = False

    # ------------------------------------------------------------------ training

    def fit(
        self,
        x: Any,
        y: Any,
        loss: Any = None,
        optimizer: Any = None,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[Any, Any] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks: Iterable[Callback] = (),
        verbose: int = 1,
        seed: int | None = None,
    ) -> History:
        """Train with mini-batch gradient descent.

        The epochs, batches, validation, callbacks and progress bar are those of
        :func:`tradenn.nn.training.fit_loop`, each step :meth:`train_on_batch`.

        Parameters
        ----------
        x, y : array_like
            Inputs ``(N, ...)`` and targets ``(N, ...)``.
        loss, optimizer : name or instance
            E.g. ``"mse"`` and ``nn.Adam(1e-3)``; default to those of the previous ``fit``.
        epochs, batch_size : int
            Passes over the data and samples per step (the last batch may be smaller).
        validation_data : (x_val, y_val), optional
            Evaluated after every epoch into the ``val_loss`` log.
        validation_split : float
            Fraction of the data, taken from the end before shuffling, to validate on
            instead (ignored when ``validation_data`` is given).
        shuffle : bool
            Shuffle the samples at every epoch.
        callbacks : iterable of Callback
            E.g. :class:`~tradenn.nn.callbacks.EarlyStopping`.
        verbose : int
            0 silent, 1 progress bar per epoch, 2 one line per epoch.
        seed : int, optional
            Reseeds the package generator (:func:`tradenn.nn.set_seed`): weights created
            here, dropout masks and batch order become reproducible.

        Returns
        -------
        History
            ``history.history["loss"]`` (and ``"val_loss"``) per epoch.
        """
        check_fit_arguments(f"{type(self).__name__}.fit", epochs, batch_size, verbose)
        if seed is not None:
            set_seed(seed)
        self.loss = self._resolve_loss(loss)
        self.optimizer = self._resolve_optimizer(optimizer)
        x, y = self._as_inputs(x), self._as_targets(y)
        _check_same_length(x, y)
        x, y, validation = self._validation_split(x, y, validation_data, validation_split)
        return fit_loop(
            self,
            (x, y),
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation,
            shuffle=shuffle,
            callbacks=callbacks,
            verbose=verbose,
        )

    def _validation_split(
        self, x: np.ndarray, y: np.ndarray, validation_data: Any, validation_split: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Training data and the validation pair (given, or the last samples of x, y)."""
        if validation_data is not None:
            x_val, y_val = self._as_inputs(validation_data[0]), self._as_targets(validation_data[1])
            _check_same_length(x_val, y_val)
            return x, y, (x_val, y_val)
        if not validation_split:
            return x, y, None
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        cut = len(x) - math.ceil(len(x) * validation_split)
        if cut <= 0:
            raise ValueError(f"validation_split={validation_split} leaves no training data")
        return x[:cut], y[:cut], (x[cut:], y[cut:])

    def train_on_batch(self, x: Any, y: Any, loss: Any = None, optimizer: Any = None) -> float:
        """One step: forward, loss, backward, optimizer update. Returns the batch loss
        (including weight penalties), measured before the update."""
        if loss is not None or self.loss is None:
            self.loss = self._resolve_loss(loss)
        if optimizer is not None or self.optimizer is None:
            self.optimizer = self._resolve_optimizer(optimizer)
        y_pred = self.forward(x, training=True)
        value, dy = self.loss.value_and_grad(y, y_pred)
        value += regularization_loss(self)
        backward_without_input_grad(self, dy)  # nothing uses dL/dx of the data
        self.optimizer.step(self)
        return value

    # ------------------------------------------------------------------ inference

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray:
        """Outputs for ``x`` in inference mode, computed ``batch_size`` samples at a time."""
        x = self._as_inputs(x)
        if len(x) == 0:
            raise ValueError("predict needs at least one sample")
        out: np.ndarray | None = None
        for start in range(0, len(x), batch_size):
            batch = self.forward(x[start : start + batch_size], training=False)
            if out is None:
                out = np.empty((len(x), *batch.shape[1:]), dtype=batch.dtype)
            out[start : start + len(batch)] = batch
        return out

    def evaluate(self, x: Any, y: Any, loss: Any = None, batch_size: int = 32) -> float:
        """Mean loss (plus weight penalties) over ``(x, y)`` in inference mode."""
        loss = self._resolve_loss(loss)
        x, y = self._as_inputs(x), self._as_targets(y)
        _check_same_length(x, y)
        total = 0.0
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            total += loss(y[rows], self.forward(x[rows], training=False)) * len(x[rows])
        return total / len(x) + regularization_loss(self)

    # ------------------------------------------------------------------ weights and files

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all parameters and state, in ``walk`` order (params before state)."""
        return [value.copy() for value in self._weight_arrays()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy ``weights`` (as from :meth:`get_weights`) into the live arrays."""
        targets = self._weight_arrays()
        if len(weights) != len(targets):
            raise ValueError(f"{self._label()}: expected {len(targets)} arrays, got {len(weights)}")
        for i, (target, value) in enumerate(zip(targets, weights, strict=True)):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{self._label()}: weight {i} has shape {value.shape}, expected {target.shape}"
                )
        for target, value in zip(targets, weights, strict=True):
            np.copyto(target, value, casting="same_kind")

    def _weight_arrays(self) -> list[np.ndarray]:
        return [
            value
            for layer in walk(self)
            for value in (*layer.params.values(), *layer.state.values())
        ]

    def save(self, path: str) -> None:
        """Write config, weights, loss and optimizer state to one ``.npz`` file."""
        save_model(self, path)

    def summary(self, print_fn: Callable[[str], Any] = print) -> str:
        """Print (and return) a table of layers, output shapes and parameter counts."""
        if not self.built:
            raise ValueError(f"{self._label()}: build the model (or run forward) before summary()")
        rows = [
            (
                f"{layer.name} ({type(layer).__name__})",
                format_shape(layer.output_shape) if layer.output_shape is not None else "?",
                f"{layer.count_params():,}",
            )
            for layer in self.layers
        ]
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(row[i]) for row in (header, *rows)) + 3 for i in range(3)]
        rule = "=" * sum(widths)

        def line(row: tuple[str, str, str]) -> str:
            return f"{row[0]:<{widths[0]}}{row[1]:<{widths[1]}}{row[2]:>{widths[2]}}"

        lines = [f'Model: "{self.name}"', line(header), rule, *(line(row) for row in rows)]
        total = self.count_params()
        trainable = sum(
            layer.params[key].size for layer, key, is_trainable in parameters(self) if is_trainable
        )
        lines += [
            rule,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        text = "\n".join(lines)
        print_fn(text)
        return text

    # ------------------------------------------------------------------ helpers

    def _resolve_loss(self, loss: Any) -> loss_lib.Loss:
        if loss is None:
            if self.loss is None:
                raise ValueError(f"{self._label()}: no loss given (pass loss='mse', for example)")
            return self.loss
        return loss_lib.get(loss)

    def _resolve_optimizer(self, optimizer: Any) -> optimizer_lib.Optimizer:
        if optimizer is None:
            if self.optimizer is None:
                raise ValueError(
                    f"{self._label()}: no optimizer given (pass optimizer='adam', for example)"
                )
            return self.optimizer
        return optimizer_lib.get(optimizer)

    def _as_inputs(self, x: Any) -> np.ndarray:
        # cast floating data once here rather than in every batch; integer ids stay integers
        x = np.asarray(x)
        return x.astype(self.dtype) if x.dtype.kind == "f" and x.dtype != self.dtype else x

    def _as_targets(self, y: Any) -> np.ndarray:
        return self._as_inputs(y)


class Sequential(Model):
    """A plain stack of layers, each feeding the next.

    Forward ``h_0 = x, h_l = f_l(h_{l-1})``; backward applies the layers' backward passes in
    reverse, ``dh_{l-1} = f_l.backward(dh_l)``, each storing its parameter gradients.

    Masks propagate as in Keras: each layer's :meth:`~tradenn.nn.base.Layer.compute_mask`
    turns the mask it received into the mask of its output (``Embedding(mask_zero=True)``
    creates one, layers that work per time step pass it on, others drop it), and a layer
    whose ``forward`` takes ``mask`` (RNN, LSTM, GRU, Bidirectional) gets it as ``mask=``.
    Self-attention (``MultiHeadAttention``, ``TransformerBlock``), whose query, key and
    value are the one input, gets it as ``query_mask`` and ``value_mask``: padded positions
    receive no attention, and their own outputs are meaningless (the mask travels on with
    them).

    Parameters
    ----------
    layers : sequence of Layer, optional
        Initial layers; more can be appended with :meth:`add`.
    name, trainable, dtype
        As for :class:`~tradenn.nn.base.Layer` (``dtype`` is the dtype inputs are cast to).
    """

    def __init__(self, layers: Sequence[Layer] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for layer in layers or ():
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append ``layer`` (names must be unique within the model)."""
        if not hasattr(layer, "forward") or not hasattr(layer, "backward"):
            raise ValueError(f"{self._label()}: can only add layers, got {layer!r}")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"{self._label()}: a layer named '{layer.name}' is already in it")
        self.layers.append(layer)
        self.built = False

    def build(self, input_shape: Shape) -> None:
        """Build every layer in turn, feeding each the previous output shape."""
        shape = (None, *tuple(input_shape)[1:])
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            else:
                layer._check_input_shape(shape)
            shape = layer.compute_output_shape(shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        if not self.layers:
            raise ValueError(f"{self._label()}: the model has no layers")
        if not self.built:
            self.build(np.shape(x))
        mask = None
        for layer in self.layers:
            y = layer.forward(x, training=training, **_mask_arguments(layer, mask))
            mask = layer.compute_mask(x, mask)
            x = y
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        for position in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[position]
            if position == 0 and not self.needs_input_grad:
                return backward_without_input_grad(layer, dy)
            dy = layer.backward(dy)
            if dy is None and position > 0:
                raise ValueError(
                    f"{self._label()}: {layer._label()} returns no input gradient, so it can "
                    f"only be the first layer"
                )
        return dy

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layers": [serialize_layer(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        config = dict(config)
        layers = [deserialize_layer(item) for item in config.pop("layers", [])]
        return cls(layers, **config)


@cache
def _forward_parameters(layer_type: type) -> frozenset[str]:
    return frozenset(inspect.signature(layer_type.forward).parameters)


def _mask_arguments(layer: Layer, mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """The keyword arguments through which ``layer.forward`` receives ``mask``."""
    if mask is None:
        return {}
    accepted = _forward_parameters(type(layer))
    if "mask" in accepted:
        return {"mask": mask}
    if "query_mask" in accepted:  # self-attention: the one input is query, key and value
        return {"query_mask": mask, "value_mask": mask}
    return {}


def _check_same_length(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"x and y need the same number of samples, got shapes {x.shape} and {y.shape}"
        )
    if len(x) == 0:
        raise ValueError("x and y hold no samples")
