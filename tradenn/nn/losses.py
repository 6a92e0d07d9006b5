"""Loss functions returning the mean loss and its gradient with respect to ``y_pred``.

``loss(y_true, y_pred)`` gives the mean loss (a float); ``loss.value_and_grad(y_true,
y_pred)`` gives ``(mean loss, dL/dy_pred)``, the gradient a model's ``backward`` starts from.

Reductions follow Keras: elementwise losses (MSE, MAE, Huber, binary cross-entropy) are
averaged over every element; categorical cross-entropies sum over the class axis (last)
and average over the rest. Names: mse, mae, huber, binary_crossentropy,
categorical_crossentropy, sparse_categorical_crossentropy (and Keras' long names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .registry import Registry

# Keras clips probabilities to [eps, 1 - eps] before taking logarithms.
_PROBABILITY_EPSILON = 1e-7


class Loss:
    """Base class. Subclasses implement ``_compute(y_true, y_pred, need_grad)``."""

    name = "loss"

    def __call__(self, y_true: Any, y_pred: np.ndarray) -> float:
        return self._compute(*self._prepare(y_true, y_pred), need_grad=False)[0]

    def value_and_grad(self, y_true: Any, y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean loss and ``dL/dy_pred`` (same shape and dtype as ``y_pred``)."""
        return self._compute(*self._prepare(y_true, y_pred), need_grad=True)

    def _compute(
        self, y_true: np.ndarray, y_pred: np.ndarray, need_grad: bool
    ) -> tuple[float, Any]:
        raise NotImplementedError

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float64)
        y_true = np.asarray(y_true, dtype=y_pred.dtype)
        if y_true.shape != y_pred.shape:
            # (N,) targets against (N, 1) predictions would silently broadcast to (N, N)
            if y_true.size != y_pred.size:
                raise ValueError(
                    f"{type(self).__name__}: y_true of shape {y_true.shape} does not match "
                    f"y_pred of shape {y_pred.shape}"
                )
            y_true = y_true.reshape(y_pred.shape)
        return y_true, y_pred

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config() or ''})"


LOSSES = Registry("loss", base=Loss)


@LOSSES.register("mse", "mean_squared_error")
class MeanSquaredError(Loss):
    """``L = mean (y_pred - y_true)^2``; ``dL/dy_pred = 2 (y_pred - y_true) / n``."""

    def _compute(self, y_true, y_pred, need_grad):
        error = y_pred - y_true
        flat = error.ravel()
        value = float(flat @ flat) / error.size
        if need_grad:
            error *= 2.0 / error.size
        return value, error if need_grad else None


@LOSSES.register("mae", "mean_absolute_error")
class MeanAbsoluteError(Loss):
    """``L = mean |y_pred - y_true|``; ``dL/dy_pred = sign(y_pred - y_true) / n``."""

    def _compute(self, y_true, y_pred, need_grad):
        error = y_pred - y_true
        value = float(np.abs(error).mean())
        grad = None
        if need_grad:
            grad = np.sign(error, out=error)
            grad *= 1.0 / error.size
        return value, grad


@LOSSES.register("huber")
class Huber(Loss):
    """Quadratic near zero, linear beyond ``delta``; robust to outliers.

    With ``e = y_pred - y_true``: ``l(e) = e^2 / 2`` if ``|e| <= delta`` else
    ``delta (|e| - delta / 2)``; ``L = mean l(e)``; ``dL/dy_pred = clip(e, -delta, delta) / n``.
    """

    def __init__(self, delta: float = 1.0) -> None:
        if delta <= 0:
            raise ValueError(f"Huber needs delta > 0, got {delta}")
        self.delta = float(delta)

    def _compute(self, y_true, y_pred, need_grad):
        error = y_pred - y_true
        magnitude = np.abs(error)
        quadratic = np.minimum(magnitude, self.delta)
        # 0.5 q^2 + delta (|e| - q) equals both branches of the piecewise definition
        losses = 0.5 * quadratic * quadratic + self.delta * (magnitude - quadratic)
        value = float(losses.mean())
        grad = None
        if need_grad:
            grad = np.clip(error, -self.delta, self.delta, out=error)
            grad *= 1.0 / error.size
        return value, grad

    def get_config(self) -> dict[str, Any]:
        return {} if self.delta == 1.0 else {"delta": self.delta}


@LOSSES.register("binary_crossentropy", "bce")
class BinaryCrossentropy(Loss):
    """Binary cross-entropy for targets in [0, 1].

    From probabilities ``p`` (clipped to ``[1e-7, 1 - 1e-7]``)::

        L = -mean(y log p + (1 - y) log(1 - p))      dL/dp = (p - y) / (p (1 - p)) / n

    From logits ``z`` (``from_logits=True``), in the overflow-free form::

        L = mean(max(z, 0) - z y + log(1 + exp(-|z|)))      dL/dz = (sigmoid(z) - y) / n
    """

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def _compute(self, y_true, y_pred, need_grad):
        n = y_pred.size
        if self.from_logits:
            z = y_pred
            losses = np.maximum(z, 0.0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
            grad = None
            if need_grad:
                grad = ops.sigmoid(z)
                grad -= y_true
                grad *= 1.0 / n
            return float(losses.mean()), grad
        p = np.clip(y_pred, _PROBABILITY_EPSILON, 1.0 - _PROBABILITY_EPSILON)
        losses = y_true * np.log(p) + (1.0 - y_true) * np.log1p(-p)
        grad = None
        if need_grad:
            grad = (p - y_true) / (p * (1.0 - p))
            grad *= 1.0 / n
            grad[p != y_pred] = 0.0  # clipping is flat outside the range
        return -float(losses.mean()), grad

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": True} if self.from_logits else {}


def _log_softmax(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log softmax(z), softmax(z))`` over the last axis, from one ``exp``.

    ``log p = s - log sum exp(s)`` with ``s = z - max z`` (nothing overflows), and
    ``p = exp(s) / sum exp(s)``.
    """
    shifted = z - z.max(axis=-1, keepdims=True)
    p = np.exp(shifted)
    total = ops.sum_last_axis(p)
    p /= total
    shifted -= np.log(total, out=total)
    return shifted, p


@LOSSES.register("categorical_crossentropy", "cce")
class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or soft) targets over the last axis.

    From probabilities ``p`` (clipped to ``[1e-7, 1 - 1e-7]``; rows are used as given)::

        L = -mean_rows sum_k y_k log p_k             dL/dp = -y / p / rows

    From logits ``z`` (``from_logits=True``), softmax and cross-entropy fused::

        log p = z - logsumexp(z)                     L = -mean_rows sum_k y_k log p_k
        dL/dz = (softmax(z) sum_k y_k - y) / rows    (= (softmax(z) - y) / rows for one-hot y)

    The fused form never takes the log of a rounded-to-zero probability and its gradient
    skips the softmax Jacobian entirely.
    """

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def _compute(self, y_true, y_pred, need_grad):
        rows = y_pred.size // y_pred.shape[-1]
        grad = None
        if self.from_logits:
            log_p, grad = _log_softmax(y_pred)
            value = -float(np.vdot(y_true, log_p)) / rows
            if need_grad:
                grad *= y_true.sum(axis=-1, keepdims=True)
                grad -= y_true
                grad *= 1.0 / rows
            return value, grad
        p = np.clip(y_pred, _PROBABILITY_EPSILON, 1.0 - _PROBABILITY_EPSILON)
        value = -float(np.vdot(y_true, np.log(p))) / rows
        if need_grad:
            grad = -y_true / p
            grad *= 1.0 / rows
            grad[p != y_pred] = 0.0
        return value, grad

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": True} if self.from_logits else {}


@LOSSES.register("sparse_categorical_crossentropy", "scce")
class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class ids as targets.

    ``y_true (N, ...)`` holds ids in ``[0, K)``, ``y_pred (N, ..., K)``. Same formulas as
    :class:`CategoricalCrossentropy` with ``y`` the one-hot encoding of the ids; the
    one-hot matrix is never built: from logits ``dL/dz = (softmax(z) - onehot) / rows``.
    """

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float64)
        labels = np.asarray(y_true)
        lead = y_pred.shape[:-1]
        if labels.shape != lead:
            if labels.size != int(np.prod(lead)):
                raise ValueError(
                    f"{type(self).__name__}: y_true of shape {labels.shape} needs one class id "
                    f"per row of y_pred {y_pred.shape}, i.e. shape {lead}"
                )
            labels = labels.reshape(lead)
        if labels.dtype.kind == "f":
            if np.any(labels != np.round(labels)):
                raise ValueError(f"{type(self).__name__}: class ids must be whole numbers")
        elif labels.dtype.kind not in "iu":
            raise ValueError(
                f"{type(self).__name__}: class ids must be integers, got {labels.dtype}"
            )
        labels = labels.astype(np.intp, copy=False)
        classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(
                f"{type(self).__name__}: class ids must lie in [0, {classes}); "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        return labels, y_pred

    def _compute(self, y_true, y_pred, need_grad):
        classes = y_pred.shape[-1]
        rows = y_pred.reshape(-1, classes)
        labels = y_true.ravel()
        picked = (np.arange(rows.shape[0]), labels)
        grad = None
        if self.from_logits:
            log_p, p = _log_softmax(rows)
            value = -float(log_p[picked].mean())
            if need_grad:
                grad = p
                grad[picked] -= 1.0
                grad *= 1.0 / rows.shape[0]
        else:
            p = np.clip(rows[picked], _PROBABILITY_EPSILON, 1.0 - _PROBABILITY_EPSILON)
            value = -float(np.log(p).mean())
            if need_grad:
                grad = np.zeros_like(rows)
                inside = p == rows[picked]
                grad[picked] = np.where(inside, -1.0 / p, 0.0) / rows.shape[0]
        return value, None if grad is None else grad.reshape(y_pred.shape)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": True} if self.from_logits else {}


def get(identifier: Any) -> Loss:
    """A loss from a name (``"mse"``), a serialized dict or an instance."""
    return LOSSES.get(identifier)


def serialize(loss: Loss) -> Any:
    """The JSON-ready form of ``loss``."""
    return LOSSES.serialize(loss)
