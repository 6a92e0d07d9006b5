"""Position information for sequences: fixed sinusoids and learned position embeddings.

Both take an ``offset``, the position of ``x[:, 0]``, for cached generation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ... import checks
from .. import initializers as init_lib
from .. import ops
from ..base import InputSpec, Layer, Shape

_POSITION_MODES = ("add", "encoding")


class SinusoidalPositionalEncoding(Layer):
    """The fixed sine/cosine position signal of Vaswani et al. (2017); no parameters.

    For position ``p`` and feature ``i`` of ``D`` (wavelengths from 2 pi to
    ``max_wavelength`` 2 pi)::

        PE[p, 2j] = sin(p / w^(2j / D))      PE[p, 2j + 1] = cos(p / w^(2j / D))

    ``mode="add"`` returns ``x + PE[offset : offset + T]`` (backward ``dx = dy``);
    ``mode="encoding"`` returns the table broadcast to ``x``'s shape, as Keras-hub's
    ``SinePositionEncoding`` (``x`` only supplies the shape; ``dx = 0``).

    Parameters
    ----------
    max_wavelength : float
        ``w`` above (10000 in the paper).
    mode : {"add", "encoding"}
        Add the encoding to the input, or return it.
    """

    supports_masking = True

    def __init__(self, max_wavelength: float = 10000.0, mode: str = "add", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_wavelength <= 0:
            raise ValueError(
                f"{self._label()}: max_wavelength must be positive, got {max_wavelength}"
            )
        if mode not in _POSITION_MODES:
            raise ValueError(f"{self._label()}: mode must be 'add' or 'encoding', got {mode!r}")
        self.max_wavelength = float(max_wavelength)
        self.mode = mode
        self.input_spec = InputSpec(ndim=3)
        self._shape: Shape | None = None

    def encoding(self, length: int, features: int, offset: int = 0) -> np.ndarray:
        """The table ``PE[offset : offset + length]``, ``(length, features)``, layer dtype."""
        return _sinusoid_table(offset, length, features, self.max_wavelength, self.dtype)

    def forward(self, x: np.ndarray, offset: int = 0, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        offset = checks.non_negative_int(offset, "offset", self._label())
        table = self.encoding(x.shape[1], x.shape[2], offset)
        self._shape = x.shape
        if self.mode == "add":
            return x + table
        return np.broadcast_to(table, x.shape).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, self._shape)
        if not self.needs_input_grad:
            return None
        return dy if self.mode == "add" else np.zeros_like(dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_wavelength": self.max_wavelength, "mode": self.mode}


@lru_cache(maxsize=16)
def _sinusoid_table(
    offset: int, length: int, features: int, max_wavelength: float, dtype: np.dtype
) -> np.ndarray:
    positions = np.arange(offset, offset + length, dtype=np.float64)[:, None]
    exponent = 2.0 * (np.arange(features) // 2) / features
    angles = positions / max_wavelength**exponent
    table = np.where(np.arange(features) % 2 == 0, np.sin(angles), np.cos(angles)).astype(dtype)
    table.flags.writeable = False  # shared between callers
    return table


class PositionEmbedding(Layer):
    """Learned position vectors: one trainable row per position (GPT-style).

    Shapes: ``x (N, T, D)``, ``embeddings (max_length, D)``. With ``E_t =
    embeddings[offset + t]``::

        mode="add":       y = x + E           dx = dy
        mode="encoding":  y = E (broadcast)   dx = 0      (Keras-hub's PositionEmbedding)
        dE[offset + t] = sum_n dy[n, t]       (other rows 0)

    ``offset`` is the position of ``x[:, 0]``: 0 for whole sequences, the number of
    tokens already processed during cached generation.

    Parameters
    ----------
    max_length : int
        Number of positions (the context length).
    embeddings_initializer
        Keras-hub default ``glorot_uniform``.
    mode : {"add", "encoding"}
        Add the embeddings to the input, or return them.
    """

    supports_masking = True

    def __init__(
        self,
        max_length: int,
        embeddings_initializer: Any = "glorot_uniform",
        mode: str = "add",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        checks.positive_int(max_length, "max_length", self._label())
        if mode not in _POSITION_MODES:
            raise ValueError(f"{self._label()}: mode must be 'add' or 'encoding', got {mode!r}")
        self.max_length = int(max_length)
        self.embeddings_initializer = init_lib.get(embeddings_initializer)
        self.mode = mode
        self.input_spec = InputSpec(ndim=3)
        self._window: tuple[int, Shape] | None = None  # (offset, shape) of the last forward

    def build(self, input_shape: Shape) -> None:
        features = input_shape[-1]
        self.add_weight("embeddings", (self.max_length, features), self.embeddings_initializer)
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        super().build(input_shape)

    def forward(self, x: np.ndarray, offset: int = 0, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        offset = checks.non_negative_int(offset, "offset", self._label())
        length = x.shape[1]
        if offset + length > self.max_length:
            raise ValueError(
                f"{self._label()}: positions {offset}..{offset + length - 1} exceed "
                f"max_length={self.max_length}"
            )
        rows = self.params["embeddings"][offset : offset + length]
        self._window = (offset, x.shape)
        if self.mode == "add":
            return x + rows
        return np.broadcast_to(rows, x.shape).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._window)
        offset, shape = self._window
        dy = self._check_gradient_shape(dy, shape)
        grad = self.grads["embeddings"]
        grad.fill(0.0)
        batch, length, features = shape
        ops.sum_rows(  # sum over the batch, as a (N, T D) column sum
            dy.reshape(batch, length * features),
            out=grad[offset : offset + length].reshape(-1),
        )
        if not self.needs_input_grad:
            return None
        return dy if self.mode == "add" else np.zeros_like(dy)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "embeddings_initializer": init_lib.serialize(self.embeddings_initializer),
            "mode": self.mode,
        }
