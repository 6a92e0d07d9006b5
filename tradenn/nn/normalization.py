"""Normalization layers: BatchNormalization and LayerNormalization (channels last)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import initializers as init_lib
from . import ops
from .base import InputSpec, Layer, Shape


class _ScaleShiftNormalization(Layer, register=False):
    """What both normalizations share: ``gamma``, ``beta`` ``(C,)`` and ``y = gamma xhat + beta``.

    A subclass computes the centred rows ``x - mu (M, C)`` and the variance (per channel or
    per row) and hands them to :meth:`_scale_and_shift`, which keeps ``xhat`` and
    ``s = 1 / sqrt(var + eps)`` for the backward pass; there :meth:`_affine_gradients`
    gives ``dbeta = sum_rows dy`` and ``dgamma = sum_rows dy xhat``.
    """

    def __init__(self, gamma_initializer: Any, beta_initializer: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gamma_initializer = init_lib.get(gamma_initializer)
        self.beta_initializer = init_lib.get(beta_initializer)
        self.input_spec = InputSpec(min_ndim=2)
        self._xhat: np.ndarray | None = None  # normalized rows (M, C)
        self._scale: np.ndarray | None = None  # s: (C,) per channel or (M, 1) per row
        self._shape: Shape = ()

    def build(self, input_shape: Shape) -> None:
        channels = (input_shape[-1],)
        self.add_weight("gamma", channels, self.gamma_initializer)
        self.add_weight("beta", channels, self.beta_initializer)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_shape[-1]})
        super().build(input_shape)

    def _scale_and_shift(self, centred: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """``y = gamma (x - mu) s + beta`` in the input's shape; ``centred`` becomes xhat."""
        scale = variance + self.epsilon
        np.sqrt(scale, out=scale)
        np.divide(1.0, scale, out=scale)
        centred *= scale
        self._xhat, self._scale = centred, scale
        y = centred * self.params["gamma"]
        y += self.params["beta"]
        return y.reshape(self._shape)

    def _gradient_rows(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` checked against the last output and viewed as rows ``(M, C)``."""
        self._require_forward(self._xhat)
        return ops.as_matrix(self._check_gradient_shape(dy, self._shape))

    def _affine_gradients(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dbeta, dgamma)`` from rows ``dy``, written into ``grads``."""
        dbeta = ops.sum_rows(dy, out=self.grads["beta"])
        dgamma = ops.sum_rows(dy * self._xhat, out=self.grads["gamma"])
        return dbeta, dgamma


class BatchNormalization(_ScaleShiftNormalization):
    """Normalizes each channel (last axis) over the batch and all other axes.

    Shapes: ``x (N, ..., C)`` viewed as ``M`` rows of ``C`` channels; ``gamma``, ``beta``,
    ``moving_mean``, ``moving_variance`` are ``(C,)``.

    Training forward (statistics of this batch, biased variance as in Keras)::

        mu = mean_rows x        var = mean_rows (x - mu)^2        s = 1 / sqrt(var + eps)
        xhat = (x - mu) s       y = gamma xhat + beta
        moving_mean <- momentum moving_mean + (1 - momentum) mu      (same for variance)

    Training backward::

        dbeta = sum_rows dy     dgamma = sum_rows dy xhat
        dx = gamma s / M * (M dy - dbeta - xhat dgamma)

    Inference (``training=False``, or the layer is not trainable) uses the moving
    statistics as constants: ``y = gamma (x - moving_mean) s + beta`` with
    ``s = 1 / sqrt(moving_variance + eps)``, so ``dx = gamma s dy``.

    Parameters
    ----------
    momentum : float
        Weight of the old value in the moving averages (Keras default 0.99).
    epsilon : float
        Added to the variance before the square root (Keras default 1e-3).
    """

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        gamma_initializer: Any = "ones",
        beta_initializer: Any = "zeros",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(gamma_initializer, beta_initializer, **kwargs)
        if not 0.0 <= momentum <= 1.0 or epsilon <= 0.0:
            raise ValueError(
                f"{self._label()}: need 0 <= momentum <= 1 and epsilon > 0, "
                f"got momentum={momentum}, epsilon={epsilon}"
            )
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.moving_mean_initializer = init_lib.get(moving_mean_initializer)
        self.moving_variance_initializer = init_lib.get(moving_variance_initializer)
        self._batch_stats = False  # whether the last forward used batch statistics

    def build(self, input_shape: Shape) -> None:
        channels = (input_shape[-1],)
        self.add_state("moving_mean", channels, self.moving_mean_initializer)
        self.add_state("moving_variance", channels, self.moving_variance_initializer)
        super().build(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        rows = ops.as_matrix(x)
        self._shape = x.shape
        self._batch_stats = training and self.trainable
        if self._batch_stats:
            count = rows.shape[0]
            mean = ops.sum_rows(rows)
            mean *= 1.0 / count
            xhat = rows - mean
            variance = ops.sum_rows(xhat * xhat)
            variance *= 1.0 / count
            self._update_moving_statistics(mean, variance)
        else:
            xhat = rows - self.state["moving_mean"]
            variance = self.state["moving_variance"]
        return self._scale_and_shift(xhat, variance)

    def _update_moving_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        for key, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving *= self.momentum
            moving += (1.0 - self.momentum) * batch_value

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy = self._gradient_rows(dy)
        xhat, scale, gamma = self._xhat, self._scale, self.params["gamma"]
        dbeta, dgamma = self._affine_gradients(dy)
        if self._batch_stats:
            count = dy.shape[0]
            dx = xhat * dgamma
            np.subtract(dy * float(count), dx, out=dx)
            dx -= dbeta
            dx *= gamma * scale * (1.0 / count)
        else:
            dx = dy * (gamma * scale)
        return dx.reshape(self._shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "gamma_initializer": init_lib.serialize(self.gamma_initializer),
            "beta_initializer": init_lib.serialize(self.beta_initializer),
            "moving_mean_initializer": init_lib.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": init_lib.serialize(self.moving_variance_initializer),
        }


class LayerNormalization(_ScaleShiftNormalization):
    """Normalizes each sample over its last axis (features), then scales and shifts.

    Each position is normalized alone, so an incoming mask passes through.

    Shapes: ``x (N, ..., C)``; ``gamma``, ``beta`` are ``(C,)``. Statistics are per row,
    so training and inference behave the same.

    Forward, for each row ``x`` of ``C`` values::

        mu = mean x        var = mean (x - mu)^2        s = 1 / sqrt(var + eps)
        xhat = (x - mu) s  y = gamma xhat + beta

    Backward, with ``g = gamma dy`` per row and sums over all rows for the parameters::

        dbeta = sum dy     dgamma = sum dy xhat
        dx = s * (g - mean g - xhat * mean(g xhat))

    Parameters
    ----------
    epsilon : float
        Added to the variance (Keras default 1e-3).
    """

    supports_masking = True

    def __init__(
        self,
        epsilon: float = 1e-3,
        gamma_initializer: Any = "ones",
        beta_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(gamma_initializer, beta_initializer, **kwargs)
        if epsilon <= 0.0:
            raise ValueError(f"{self._label()}: epsilon must be positive, got {epsilon}")
        self.epsilon = float(epsilon)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        rows = ops.as_matrix(x)
        self._shape = x.shape
        xhat = rows - ops.mean_last_axis(rows)
        return self._scale_and_shift(xhat, ops.mean_last_axis(np.square(xhat)))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy = self._gradient_rows(dy)
        xhat = self._xhat
        self._affine_gradients(dy)
        g = dy * self.params["gamma"]
        projection = ops.mean_last_axis(g * xhat)
        dx = g - ops.mean_last_axis(g)
        dx -= xhat * projection
        dx *= self._scale
        return dx.reshape(self._shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "gamma_initializer": init_lib.serialize(self.gamma_initializer),
            "beta_initializer": init_lib.serialize(self.beta_initializer),
        }
