"""Input checks shared by the attention layers: sequence shapes, lists of shapes, score gradients.

Their scalar arguments are checked with :mod:`tradenn.checks`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import format_shape


def as_sequence(x: Any, dtype: np.dtype, owner: str, what: str) -> np.ndarray:
    """``x`` as a ``(N, T, features)`` array of ``dtype``, or a one-line ValueError."""
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 3:
        raise ValueError(
            f"{owner}: {what} must have shape (N, T, features), got {format_shape(x.shape)}"
        )
    return x


def is_shape_list(shape: Any) -> bool:
    """Whether ``shape`` is a list of shapes rather than one shape."""
    return (
        isinstance(shape, (list, tuple))
        and len(shape) > 0
        and all(isinstance(s, (list, tuple)) for s in shape)
    )


def split_scores_gradient(dy: Any, scores_returned: bool, owner: str) -> tuple[Any, Any]:
    """``(dy, d_weights)`` from a backward argument (``d_weights`` None when absent)."""
    if not scores_returned:
        return dy, None
    if isinstance(dy, (list, tuple)):
        if len(dy) != 2:
            raise ValueError(
                f"{owner}: with return_attention_scores, backward takes dy or (dy, d_weights)"
            )
        return dy[0], dy[1]
    return dy, None
