"""Weight penalties added to the loss and, in ``backward``, to the parameter gradient.

* ``l1``: R(w) = l1 * sum |w|, dR/dw = l1 * sign(w)
* ``l2``: R(w) = l2 * sum w^2, dR/dw = 2 * l2 * w
* ``l1_l2``: the sum of both
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import Registry

REGULARIZERS = Registry("regularizer")


class Regularizer:
    """Base class: ``reg(w) -> float`` penalty and ``reg.add_gradient(w, grad)`` in place."""

    name = "regularizer"

    def __call__(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def add_gradient(self, w: np.ndarray, grad: np.ndarray) -> None:
        """Add dR/dw to ``grad`` in place."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError


@REGULARIZERS.register("l1_l2")
class L1L2(Regularizer):
    """``l1 * sum|w| + l2 * sum w^2``."""

    _factors: tuple[str, ...] = ("l1", "l2")  # what the constructor takes and the config holds

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        if l1 < 0 or l2 < 0:
            raise ValueError(f"Regularization factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: np.ndarray) -> float:
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(w).sum())
        if self.l2:
            flat = w.ravel()
            penalty += self.l2 * float(flat @ flat)
        return penalty

    def add_gradient(self, w: np.ndarray, grad: np.ndarray) -> None:
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2.0 * self.l2) * w

    def get_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._factors}


@REGULARIZERS.register("l1")
class L1(L1L2):
    """``l1 * sum|w|`` (Keras default factor 0.01)."""

    _factors = ("l1",)

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)


@REGULARIZERS.register("l2")
class L2(L1L2):
    """``l2 * sum w^2`` (Keras default factor 0.01)."""

    _factors = ("l2",)

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)


def get(identifier: Any) -> Regularizer | None:
    """A regularizer from a name, a serialized dict, an instance or ``None``."""
    return REGULARIZERS.get(identifier)


def serialize(regularizer: Regularizer | None) -> Any:
    """The JSON-ready form of ``regularizer``."""
    return REGULARIZERS.serialize(regularizer)
