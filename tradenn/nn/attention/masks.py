"""Softmax over attention scores with boolean and causal masks, and its backward pass.

Masks are boolean, ``True`` = may attend. A masked position gets a weight of exactly 0 (its
score is set to ``-inf`` before the softmax); a row whose entries are all masked comes out
all zero.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .. import ops
from ..base import Shape, format_shape


@lru_cache(maxsize=64)
def causal_bias(query_length: int, key_length: int, offset: int, dtype: np.dtype) -> np.ndarray:
    """Additive mask ``(Tq, Tk)``: 0 where key ``j <= i + offset`` is visible, else ``-inf``.

    ``offset = 0`` is Keras' lower-triangular causal mask; in cached decoding the queries
    are the last ``Tq`` of ``Tk`` positions, ``offset = Tk - Tq``.
    """
    rows = np.arange(query_length)[:, None] + offset
    bias = np.where(np.arange(key_length)[None, :] <= rows, 0.0, -np.inf).astype(dtype)
    bias.flags.writeable = False  # shared between callers
    return bias


def causal_mask(query_length: int, key_length: int, offset: int = 0) -> np.ndarray:
    """Boolean ``(Tq, Tk)`` mask with ``True`` where query ``i`` may see key ``j <= i + offset``."""
    return np.arange(key_length)[None, :] <= np.arange(query_length)[:, None] + offset


def masked_softmax(
    scores: np.ndarray, allowed: np.ndarray | None = None, bias: np.ndarray | None = None
) -> np.ndarray:
    """Softmax over the last axis, **in place**, with masked entries given weight 0.

    ``allowed`` (boolean, broadcast to ``scores``) marks the entries that may receive
    weight; ``bias`` is an additive 0 / -inf mask (the fast path for the causal mask).
    The row maximum is subtracted before ``exp``, so nothing overflows; a masked score is
    ``-inf`` and ``exp(-inf) = 0`` exactly. Rows with no allowed entry come out all zero.
    """
    if bias is not None:
        scores += bias
    if allowed is not None:
        np.copyto(scores, -np.inf, where=np.logical_not(allowed))
    row_max = scores.max(axis=-1, keepdims=True)
    if allowed is not None:
        row_max[np.isneginf(row_max)] = 0.0  # fully masked rows: exp(-inf - 0) = 0
    scores -= row_max
    np.exp(scores, out=scores)
    total = ops.sum_last_axis(scores)
    if allowed is not None:
        np.divide(1.0, total, out=total, where=total > 0.0)  # a zero total stays 0
    else:
        np.divide(1.0, total, out=total)
    scores *= total
    return scores


def softmax_backward(
    weights: np.ndarray, d_weights: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Softmax Jacobian-vector product along the last axis, **in place** on ``d_weights``.

    With ``P = softmax(S)`` row by row, ``dS = P * (dP - sum_j P_j dP_j)``. Masked entries
    (``P = 0``) get ``dS = 0``.
    """
    product = np.multiply(weights, d_weights, out=scratch)
    d_weights -= ops.sum_last_axis(product)
    d_weights *= weights
    return d_weights


def boolean_mask(mask: Any, shape: Shape, owner: str, what: str) -> np.ndarray:
    """``mask`` as a boolean array broadcastable to ``shape``, or a one-line ValueError."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "biuf":
            raise ValueError(f"{owner}: {what} must be boolean (True = attend), got {mask.dtype}")
        mask = mask != 0
    try:
        np.broadcast_shapes(mask.shape, tuple(shape))
    except ValueError:
        raise ValueError(
            f"{owner}: {what} of shape {format_shape(mask.shape)} does not fit "
            f"{format_shape(tuple(shape))}"
        ) from None
    return mask
