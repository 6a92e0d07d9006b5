"""Sequence pooling: reduce ``(N, T, C)`` to ``(N, C)`` by learned attention or the last step.

A recurrent or convolutional encoder run with ``return_sequences`` (or a transformer) gives
one vector per time step; a forecaster needs one per sample. :class:`LastTimestep` keeps
the final step (what a causal encoder has summarized the whole window into);
:class:`AttentionPooling1D` learns which steps matter and takes their weighted mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from . import initializers as init_lib
from . import regularizers as reg_lib
from .base import InputSpec, Layer, Shape


class LastTimestep(Layer):
    """The last step of a sequence, ``(N, T, C) -> (N, C)``: ``y = x[:, -1, :]``.

    Backward: ``dx[:, -1, :] = dy`` and zero at every other step.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_spec = InputSpec(ndim=3)
        self._x_shape: Shape | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], input_shape[-1])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        self._x_shape = x.shape
        return x[:, -1, :].copy()  # a copy: the caller may reuse x's buffer

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._x_shape)
        batch, _, channels = self._x_shape
        dy = self._check_gradient_shape(dy, (batch, channels))
        if not self.needs_input_grad:
            return None
        dx = np.zeros(self._x_shape, dtype=self.dtype)
        dx[:, -1, :] = dy
        return dx


class AttentionPooling1D(Layer):
    """Attention-weighted mean over time with a learned query, ``(N, T, C) -> (N, C)``.

    Every step gets a score, the scores are turned into weights by a softmax over time and
    the output is the weighted sum of the steps. With ``units=None`` the score is a dot
    product with a learned query vector ``q (C,)``; with ``units=U`` it is additive
    (Bahdanau) attention through a tanh layer ``W (C, U)``, ``b (U,)`` and ``q (U,)``.

    Forward, for sample ``n`` and step ``t``::

        h[n, t] = x[n, t]                            (units=None)
        h[n, t] = tanh(x[n, t] W + b)                (units=U)
        s[n, t] = h[n, t] . q                        score
        a[n, t] = exp(s[n, t]) / sum_u exp(s[n, u])  softmax over time
        y[n]    = sum_t a[n, t] x[n, t]

    Backward, given ``dy (N, C)``: the weights get ``da[n, t] = dy[n] . x[n, t]``; the
    softmax Jacobian gives ``ds[n, t] = a[n, t] (da[n, t] - sum_u a[n, u] da[n, u])``; then::

        dq = sum_{n, t} ds[n, t] h[n, t]
        dh[n, t] = ds[n, t] q
        units=None:  dx[n, t] = a[n, t] dy[n] + dh[n, t]
        units=U:     dz = dh (1 - h^2),  dW = sum_{n, t} x[n, t]^T dz[n, t],
                     db = sum_{n, t} dz[n, t],  dx[n, t] = a[n, t] dy[n] + dz[n, t] W^T

    The weights of the last forward pass are kept in ``attention_weights (N, T)`` for
    inspection.

    Parameters
    ----------
    units : int, optional
        Hidden size of the additive score; ``None`` scores with a plain dot product.
    query_initializer : str or Initializer
        Default ``zeros``: every step starts with the same weight, so the layer begins as
        :class:`~tradenn.nn.GlobalAveragePooling1D` and learns where to look (the query
        still gets a gradient at zero, unlike ``W`` behind it).
    kernel_initializer, bias_initializer
        For ``W`` and ``b`` (``units`` given); Keras defaults ``glorot_uniform``, ``zeros``.
    kernel_regularizer
        Optional penalty on ``W``.
    """

    def __init__(
        self,
        units: int | None = None,
        query_initializer: Any = "zeros",
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = checks.positive_int(units, "units", self._label(), allow_none=True)
        self.query_initializer = init_lib.get(query_initializer)
        self.kernel_initializer = init_lib.get(kernel_initializer)
        self.bias_initializer = init_lib.get(bias_initializer)
        self.kernel_regularizer = reg_lib.get(kernel_regularizer)
        self.input_spec = InputSpec(ndim=3)
        self.attention_weights: np.ndarray | None = None  # a (N, T) of the last forward
        self._x: np.ndarray | None = None
        self._h: np.ndarray | None = None  # tanh features (N, T, U) when units is set

    def build(self, input_shape: Shape) -> None:
        self._check_input_shape(tuple(input_shape))
        channels = input_shape[-1]
        if self.units is not None:
            self.add_weight(
                "kernel", (channels, self.units), self.kernel_initializer, self.kernel_regularizer
            )
            self.add_weight("bias", (self.units,), self.bias_initializer)
        self.add_weight("query", (self.units or channels,), self.query_initializer)
        self.input_spec = InputSpec(ndim=3, axes={-1: channels})
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], input_shape[-1])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        if self.units is None:
            h = x
        else:
            h = np.tanh(x @ self.params["kernel"] + self.params["bias"])
        scores = h @ self.params["query"]  # (N, T)
        scores -= scores.max(axis=1, keepdims=True)  # softmax is shift-invariant; no overflow
        weights = np.exp(scores)
        weights /= weights.sum(axis=1, keepdims=True)
        self._x, self._h, self.attention_weights = x, h, weights
        return np.matmul(weights[:, None, :], x)[:, 0, :]

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._x)
        x, h, a = self._x, self._h, self.attention_weights
        dy = self._check_gradient_shape(dy, (x.shape[0], x.shape[2]))
        da = np.matmul(x, dy[:, :, None])[:, :, 0]  # (N, T)
        ds = a * (da - (a * da).sum(axis=1, keepdims=True))
        rows = ds.reshape(-1)
        self.grads["query"][...] = rows @ h.reshape(-1, h.shape[-1])
        dh = ds[:, :, None] * self.params["query"]  # (N, T, U or C)
        if self.units is not None:
            dz = dh * (1.0 - h * h)
            dz_rows = dz.reshape(-1, self.units)
            np.matmul(x.reshape(-1, x.shape[-1]).T, dz_rows, out=self.grads["kernel"])
            self.grads["bias"][...] = dz_rows.sum(axis=0)
            self._add_regularization_gradients()
            if not self.needs_input_grad:
                return None
            dh = dz @ self.params["kernel"].T
        elif not self.needs_input_grad:
            return None
        dh += a[:, :, None] * dy[:, None, :]
        return dh

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "query_initializer": init_lib.serialize(self.query_initializer),
            "kernel_initializer": init_lib.serialize(self.kernel_initializer),
            "bias_initializer": init_lib.serialize(self.bias_initializer),
            "kernel_regularizer": reg_lib.serialize(self.kernel_regularizer),
        }
