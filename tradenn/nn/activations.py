"""Activation functions with their derivatives.

Each activation ``f`` provides

* ``forward(z, out=None) -> y``: ``y = f(z)``; with ``out=z`` it works in place,
* ``backward(dy, z, y) -> dz``: ``dz = dy * f'(z)`` (softmax: the Jacobian-vector product).

``uses_input`` says which of ``z`` and ``y`` ``backward`` reads: layers keep the
pre-activation ``z`` only for activations that need it (gelu, silu), and otherwise
compute ``f`` in place and keep just ``y``.

Names (usable as ``activation="..."`` in any layer): linear, relu, leaky_relu, elu, gelu,
gelu_tanh, silu (alias swish), sigmoid, tanh, softmax.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import ops
from .registry import Registry

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715
_GELU_TINY = 1e-20  # below it GELU-tanh's y / z is rounding noise; sigmoid(2u) = 1/2


class ActivationFunction:
    """Base class of activation functions."""

    name = "activation"
    uses_input = False  # True if backward needs the pre-activation z, not just y

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.forward(z)

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config() or ''})"


ACTIVATIONS = Registry("activation", base=ActivationFunction)


@ACTIVATIONS.register("linear")
class Linear(ActivationFunction):
    """``y = z``; ``dz = dy``."""

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None or out is z:
            return z
        np.copyto(out, z)
        return out

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        return dy


@ACTIVATIONS.register("relu")
class ReLU(ActivationFunction):
    """``y = max(z, 0)``; ``dz = dy * [y > 0]``."""

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(z, 0.0, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        return np.multiply(dy, y > 0.0)


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(ActivationFunction):
    """``y = z if z > 0 else a z``; ``dz = dy * (1 if y > 0 else a)`` (Keras: a = 0.2)."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        if negative_slope <= 0:
            # the backward pass reads the sign of z off y, which needs a > 0
            raise ValueError(f"leaky_relu needs negative_slope > 0, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(z, self.negative_slope * z, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        slope = np.where(y > 0.0, 1.0, self.negative_slope).astype(y.dtype, copy=False)
        return np.multiply(dy, slope, out=slope)

    def get_config(self) -> dict[str, Any]:
        return {} if self.negative_slope == 0.2 else {"negative_slope": self.negative_slope}


@ACTIVATIONS.register("elu")
class ELU(ActivationFunction):
    """``y = z if z > 0 else a (exp(z) - 1)``; ``dz = dy * (1 if y > 0 else y + a)``."""

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha <= 0:
            raise ValueError(f"elu needs alpha > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # exp of min(z, 0) so large positive inputs cannot overflow the discarded branch
        negative = np.expm1(np.minimum(z, 0.0))
        negative *= self.alpha
        return _into(np.where(z > 0.0, z, negative), out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        slope = np.where(y > 0.0, 1.0, y + self.alpha)
        return np.multiply(dy, slope, out=slope)

    def get_config(self) -> dict[str, Any]:
        return {} if self.alpha == 1.0 else {"alpha": self.alpha}


@ACTIVATIONS.register("gelu")
class GELU(ActivationFunction):
    """Gaussian error linear unit ``y = z * Phi(z)``, Phi the standard normal CDF.

    Exact: ``Phi(z) = (1 + erf(z / sqrt 2)) / 2`` and ``dz = dy * (Phi(z) + z * phi(z))``.
    ``approximate=True`` (name ``gelu_tanh``) uses
    ``y = z/2 * (1 + tanh(u))``, ``u = sqrt(2/pi) (z + 0.044715 z^3)``, and
    ``dz = dy * (0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) sqrt(2/pi) (1 + 3*0.044715 z^2))``.
    The code evaluates ``(1 + tanh u) / 2`` as ``sigmoid(2u)``, the same function with one
    ``exp`` in place of a slower ``tanh``, and the backward pass reads it back as ``y / z``.
    """

    uses_input = True

    def __init__(self, approximate: bool = False) -> None:
        self.approximate = bool(approximate)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self.approximate:
            # z (1 + tanh u) / 2 = z sigmoid(2u) = z / (1 + exp(-2u)): one exp, no tanh
            e = z * z
            e *= -2.0 * _SQRT_2_OVER_PI * _GELU_CUBIC
            e -= 2.0 * _SQRT_2_OVER_PI
            e *= z  # -2u
            with np.errstate(over="ignore"):  # exp -> inf gives z / inf = 0, the limit
                np.exp(e, out=e)
            e += 1.0
            return np.divide(z, e, out=out if out is not None else e)
        half = ops.erf(z * _INV_SQRT_2)
        half += 1.0
        half *= 0.5  # Phi(z)
        return np.multiply(z, half, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        if self.approximate:
            # s = (1 + tanh u) / 2 = y / z (1/2 at z = 0), and (1 - tanh^2 u) / 2 = 2 s (1 - s)
            s = np.full_like(z, 0.5)
            np.divide(y, z, out=s, where=np.abs(z) > _GELU_TINY)
            slope = z * z
            slope *= 3.0 * _GELU_CUBIC
            slope += 1.0
            slope *= z
            slope *= 1.0 - s
            slope *= s
            slope *= 2.0 * _SQRT_2_OVER_PI
            slope += s
        else:
            slope = z * z
            slope *= -0.5
            np.exp(slope, out=slope)
            slope *= z
            slope *= _INV_SQRT_2PI  # z * phi(z)
            cdf = ops.erf(z * _INV_SQRT_2)
            cdf += 1.0
            cdf *= 0.5
            slope += cdf
        return np.multiply(dy, slope, out=slope)

    def get_config(self) -> dict[str, Any]:
        return {"approximate": True} if self.approximate else {}


@ACTIVATIONS.register("gelu_tanh")
class GELUTanh(GELU):
    """GELU with the tanh approximation (``GELU(approximate=True)``), by name."""

    def __init__(self) -> None:
        super().__init__(approximate=True)

    def get_config(self) -> dict[str, Any]:
        return {}


@ACTIVATIONS.register("silu", "swish")
class SiLU(ActivationFunction):
    """``y = z * s``, ``s = sigmoid(z)``; ``dz = dy * s * (1 + z (1 - s))``."""

    uses_input = True

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        s = ops.sigmoid(z)
        return np.multiply(z, s, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        s = ops.sigmoid(z)
        slope = 1.0 - s
        slope *= z
        slope += 1.0
        slope *= s
        return np.multiply(dy, slope, out=slope)


@ACTIVATIONS.register("sigmoid")
class Sigmoid(ActivationFunction):
    """``y = 1 / (1 + exp(-z))``; ``dz = dy * y (1 - y)``."""

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return ops.sigmoid(z, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        slope = 1.0 - y
        slope *= y
        return np.multiply(dy, slope, out=slope)


@ACTIVATIONS.register("tanh")
class Tanh(ActivationFunction):
    """``y = tanh(z)``; ``dz = dy * (1 - y^2)``."""

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.tanh(z, out=out)

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        slope = y * y
        np.subtract(1.0, slope, out=slope)
        return np.multiply(dy, slope, out=slope)


@ACTIVATIONS.register("softmax")
class Softmax(ActivationFunction):
    """``y_i = exp(z_i - max z) / sum_j exp(z_j - max z)`` along ``axis``.

    Subtracting the maximum leaves y unchanged and keeps exp from overflowing.
    Backward is the Jacobian-vector product ``dz = y * (dy - sum_j dy_j y_j)``.
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = int(axis)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.subtract(z, z.max(axis=self.axis, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=self.axis, keepdims=True)
        return out

    def backward(self, dy: np.ndarray, z: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        dz = dy * y
        dz -= y * dz.sum(axis=self.axis, keepdims=True)
        return dz

    def get_config(self) -> dict[str, Any]:
        return {} if self.axis == -1 else {"axis": self.axis}


def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return result
    np.copyto(out, result)
    return out


def get(identifier: Any) -> ActivationFunction:
    """An activation from a name, a serialized dict, an instance or ``None`` (linear)."""
    return Linear() if identifier is None else ACTIVATIONS.get(identifier)


def serialize(activation: ActivationFunction) -> Any:
    """The JSON-ready form: the name (``"relu"``) or ``{"class_name", "config"}``."""
    return ACTIVATIONS.serialize(activation)
