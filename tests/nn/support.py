"""What the tradenn.nn tests share: the activation names, fresh global defaults, quiet seeded
training and a layer seen through fixed forward options (masks) for gradient checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tradenn import nn

ACTIVATION_NAMES = [
    "linear",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "silu",
    "sigmoid",
    "tanh",
    "softmax",
]


def fresh_defaults() -> Iterator[None]:
    """Body of an autouse fixture: start from float32 and seed 1234, and leave float32.

    Yields
    ------
    None
        Once, while the test runs.
    """
    nn.set_dtype(np.float32)
    nn.set_seed(1234)
    yield
    nn.set_dtype(np.float32)


def train(model, x, y, loss, optimizer, epochs: int, batch_size: int):
    """Fit ``model`` without output and with seed 0, so shuffling and dropout are fixed.

    Parameters
    ----------
    model : tradenn.nn.Model
        The model to fit.
    x, y : ndarray
        Inputs and targets.
    loss, optimizer
        As :meth:`tradenn.nn.Model.fit` takes them.
    epochs, batch_size : int
        As :meth:`tradenn.nn.Model.fit` takes them.

    Returns
    -------
    tradenn.nn.Model
        ``model``, fitted.
    """
    model.fit(
        x,
        y,
        loss=loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        seed=0,
    )
    return model


class WithOptions:
    """A layer whose ``forward`` always gets the same keyword options (masks).

    :func:`tradenn.nn.gradcheck` calls ``forward(*inputs, training=...)`` only; this passes
    the options a test fixes on top.

    Parameters
    ----------
    layer : tradenn.nn.Layer
        The layer to check.
    **options
        Keyword arguments of every ``layer.forward`` call.
    """

    def __init__(self, layer, **options: Any) -> None:
        self.layers = (layer,)
        self.options = options

    def forward(self, *inputs, training: bool = False):
        """``layer.forward(*inputs, **options, training=training)``."""
        return self.layers[0].forward(*inputs, **self.options, training=training)

    def backward(self, dy):
        """``layer.backward(dy)``."""
        return self.layers[0].backward(dy)
