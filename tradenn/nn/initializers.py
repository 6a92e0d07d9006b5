"""Weight initializers (Keras 3 names and formulas).

An initializer is called as ``init(shape, dtype) -> ndarray``. Fans follow Keras: for a
kernel of shape ``(..., fan_in_channels, fan_out_channels)`` the leading axes form the
receptive field, so ``fan_in = shape[-2] * prod(shape[:-2])`` and
``fan_out = shape[-1] * prod(shape[:-2])``; a vector has ``fan_in = fan_out = shape[0]``.

Without a ``seed``, values come from the package generator (:func:`tradenn.nn.set_seed`);
with one, the initializer owns a generator seeded once, so it is reproducible on its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .registry import Registry

INITIALIZERS = Registry("initializer")

# Keras draws "normal" variance-scaling weights from a normal truncated at two standard
# deviations; dividing by this constant (the std of a unit normal truncated at +-2)
# restores the requested variance.
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (Keras convention)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: ``__call__(shape, dtype)`` returns a new array."""

    name = "initializer"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _generator(self) -> np.random.Generator:
        if self._rng is not None:
            return self._rng
        from .base import get_rng  # the base module imports this one

        return get_rng()

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {} if self.seed is None else {"seed": self.seed}


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)


@INITIALIZERS.register("ones")
class Ones(Initializer):
    """All ones."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        return np.ones(shape, dtype=dtype)


@INITIALIZERS.register("random_uniform", "uniform")
class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``; Keras' default for embeddings (+-0.05)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        values = self._generator().uniform(self.minval, self.maxval, size=shape)
        return values.astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


@INITIALIZERS.register("random_normal", "normal")
class RandomNormal(Initializer):
    """Normal with the given ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        values = self._generator().normal(self.mean, self.stddev, size=shape)
        return values.astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


@INITIALIZERS.register("variance_scaling")
class VarianceScaling(Initializer):
    """Weights with variance ``scale / n`` where n is fan_in, fan_out or their mean.

    ``distribution="uniform"`` draws from U(-limit, limit), ``limit = sqrt(3 scale / n)``;
    ``"truncated_normal"`` from a normal truncated at two standard deviations whose
    variance is ``scale / n``.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("uniform", "truncated_normal"):
            raise ValueError(
                f"distribution must be uniform or truncated_normal, got {distribution!r}"
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, size=shape)
        else:
            values = _truncated_normal(rng, shape) * (math.sqrt(variance) / _TRUNCATED_STD)
        return values.astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            **super().get_config(),
        }


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal draws redrawn until all lie within two standard deviations."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():  # each round redraws ~5% of the remaining entries
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


class _VarianceScalingPreset(VarianceScaling):
    """A :class:`VarianceScaling` with fixed ``preset = (scale, mode, distribution)``.

    Only ``seed`` is an argument, so the config holds only the seed (as in Keras).
    """

    preset: tuple[float, str, str]

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(*self.preset, seed)

    def get_config(self) -> dict[str, Any]:
        return Initializer.get_config(self)


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(_VarianceScalingPreset):
    """U(-limit, limit), ``limit = sqrt(6 / (fan_in + fan_out))``; Keras' default kernel init."""

    preset = (1.0, "fan_avg", "uniform")


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(_VarianceScalingPreset):
    """Truncated normal with variance ``2 / (fan_in + fan_out)``."""

    preset = (1.0, "fan_avg", "truncated_normal")


@INITIALIZERS.register("he_uniform")
class HeUniform(_VarianceScalingPreset):
    """U(-limit, limit), ``limit = sqrt(6 / fan_in)``; suits ReLU networks."""

    preset = (2.0, "fan_in", "uniform")


@INITIALIZERS.register("he_normal")
class HeNormal(_VarianceScalingPreset):
    """Truncated normal with variance ``2 / fan_in``."""

    preset = (2.0, "fan_in", "truncated_normal")


@INITIALIZERS.register("orthogonal")
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain``; Keras' default recurrent kernel init.

    The weight is viewed as a matrix ``(prod(shape[:-1]), shape[-1])``; its columns (or
    rows, whichever are fewer) are orthonormal. Built from the QR decomposition of a
    Gaussian matrix with the signs of R's diagonal folded into Q, which makes the result
    uniformly distributed over orthogonal matrices.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        gaussian = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype, order="C")

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, **super().get_config()}


def get(identifier: Any) -> Initializer:
    """An initializer from a name (``"he_normal"``), a serialized dict or an instance."""
    return INITIALIZERS.get(identifier)


def serialize(initializer: Initializer) -> Any:
    """The JSON-ready form of ``initializer``."""
    return INITIALIZERS.serialize(initializer)
