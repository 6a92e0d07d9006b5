"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Embedding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import checks
from . import activations as act_lib
from . import initializers as init_lib
from . import ops
from . import regularizers as reg_lib
from .base import InputSpec, Layer, Shape, extends_constructor, format_shape, get_rng


class KernelLayer(Layer, register=False):
    """Base of the layers ``y = f(x * kernel + bias)``: Dense and Conv1D/2D/3D.

    It holds the arguments they share, creates ``kernel`` and ``bias`` and applies ``f``;
    ``*`` is the subclass's map (a matrix product, a convolution).

    Parameters
    ----------
    activation : str or ActivationFunction, optional
        ``f``, applied to ``z = x * kernel + bias``; linear when ``None``.
    use_bias : bool
        Whether to add ``bias``.
    kernel_initializer, bias_initializer
        Keras defaults: ``glorot_uniform`` and ``zeros``.
    kernel_regularizer
        Optional penalty on the kernel, e.g. ``nn.regularizers.L2(1e-4)``.
    **kwargs
        ``name``, ``trainable``, ``dtype``, as for :class:`~tradenn.nn.base.Layer`.

    A subclass's constructor takes its own leading arguments (``units``; ``filters`` and
    the convolution's) and passes the rest on, so ``Dense(8, "relu")`` works as in Keras.
    """

    def __init__(
        self,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.activation = act_lib.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = init_lib.get(kernel_initializer)
        self.bias_initializer = init_lib.get(bias_initializer)
        self.kernel_regularizer = reg_lib.get(kernel_regularizer)
        self._z: np.ndarray | None = None  # pre-activation, kept only if f' needs it

    def _add_kernel_and_bias(self, kernel_shape: Shape) -> None:
        """``kernel`` of ``kernel_shape`` and, with ``use_bias``, ``bias (kernel_shape[-1],)``."""
        self.add_weight("kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (kernel_shape[-1],), self.bias_initializer)

    def _activate(self, z: np.ndarray) -> np.ndarray:
        """``f(z)``, keeping ``z`` only if ``f'`` reads it (else ``z`` is overwritten)."""
        if self.activation.uses_input:
            self._z = z
            return self.activation.forward(z)
        self._z = None
        return self.activation.forward(z, out=z)  # in place: z is ours

    def _leading_config(self) -> dict[str, Any]:
        """The subclass's own leading arguments, saved right after the Layer's."""
        return {}

    def get_config(self) -> dict[str, Any]:
        # the key order is part of a model file's bytes (and its SHA-256 in paper ledgers)
        return {
            **super().get_config(),
            **self._leading_config(),
            "activation": act_lib.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": init_lib.serialize(self.kernel_initializer),
            "bias_initializer": init_lib.serialize(self.bias_initializer),
            "kernel_regularizer": reg_lib.serialize(self.kernel_regularizer),
        }


@extends_constructor()
class Dense(KernelLayer):
    """Fully connected layer ``y = f(x @ kernel + bias)`` on the last axis.

    Shapes: ``x (N, ..., F)``, ``kernel (F, units)``, ``bias (units,)``,
    ``y (N, ..., units)``; leading axes are flattened into one batch of rows ``M``.

    Forward::

        z = x W + b            y = f(z)

    Backward, with ``dz = f'(z) * dy`` (see :mod:`.activations`)::

        dW = x^T dz            db = sum_rows dz            dx = dz W^T

    Parameters
    ----------
    units : int
        Output features.
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer
        As for :class:`KernelLayer` (Keras' names and defaults: linear, with a bias,
        ``glorot_uniform``, ``zeros``, no penalty).

    Works on each row alone, so an incoming mask passes through (``supports_masking``).
    """

    supports_masking = True

    def __init__(self, units: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if int(units) <= 0:
            raise ValueError(f"{self._label()}: units must be positive, got {units}")
        self.units = int(units)
        self.input_spec = InputSpec(min_ndim=2)
        self._x: np.ndarray | None = None  # input rows (M, F), a view of the caller's x
        self._y: np.ndarray | None = None  # output rows (M, units)
        self._x_shape: Shape = ()

    def build(self, input_shape: Shape) -> None:
        features = input_shape[-1]
        self._add_kernel_and_bias((features, self.units))
        self.input_spec = InputSpec(min_ndim=2, axes={-1: features})
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        rows = ops.as_matrix(x)
        z = ops.matmul(rows, self.params["kernel"])
        if self.use_bias:
            z += self.params["bias"]
        y = self._activate(z)
        self._x, self._y, self._x_shape = rows, y, x.shape
        return y.reshape(*x.shape[:-1], self.units)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._x)
        x, x_shape = self._x, self._x_shape
        dy = self._check_gradient_shape(dy, (*x_shape[:-1], self.units))
        dz = self.activation.backward(ops.as_matrix(dy), self._z, self._y)
        np.matmul(x.T, dz, out=self.grads["kernel"])
        if self.use_bias:
            ops.sum_rows(dz, out=self.grads["bias"])
        self._add_regularization_gradients()
        if not self.needs_input_grad:
            return None
        return ops.matmul(dz, self.params["kernel"].T).reshape(x_shape)

    def _leading_config(self) -> dict[str, Any]:
        return {"units": self.units}


class Activation(Layer):
    """Applies an activation function elementwise: ``y = f(x)``, ``dx = f'(x) * dy``.

    Parameters
    ----------
    activation : str or ActivationFunction
        Any name from :mod:`tradenn.nn.activations` (``"relu"``, ``"gelu"``, ...).
    """

    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = act_lib.get(activation)
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        y = self.activation.forward(x)
        self._x = x if self.activation.uses_input else None
        self._y = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._y)
        dy = self._check_gradient_shape(dy, self._y.shape)
        return self.activation.backward(dy, self._x, self._y)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": act_lib.serialize(self.activation)}


class Dropout(Layer):
    """Inverted dropout: zero each input with probability ``rate`` while training.

    Survivors are scaled by ``1 / (1 - rate)`` so the expected output equals the input and
    inference needs no rescaling; at inference the layer is the identity.

    Forward (training), with ``m_i ~ Bernoulli(1 - rate) / (1 - rate)``::

        y = m * x              dx = m * dy

    Parameters
    ----------
    rate : float
        Fraction of inputs to drop, in ``[0, 1)``.
    seed : int, optional
        Seeds this layer's own generator; otherwise masks come from the package generator
        (:func:`tradenn.nn.set_seed`).
    """

    supports_masking = True

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = checks.number(rate, "rate", self._label(), low=0, high=1, high_open=True)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._mask: np.ndarray | None = None  # scaled keep-mask of the last training call
        self._shape: Shape | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        self._shape = x.shape
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        rng = self._rng if self._rng is not None else get_rng()
        keep = rng.random(x.shape, dtype=self.dtype) >= self.rate
        self._mask = np.multiply(keep, 1.0 / (1.0 - self.rate), dtype=self.dtype)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, self._shape)
        return dy if self._mask is None else dy * self._mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """Flattens all but the batch axis: ``(N, d1, ..., dk) -> (N, d1 * ... * dk)``.

    Backward reshapes ``dy`` back to the input shape. No copy when the input is contiguous.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_spec = InputSpec(min_ndim=1)
        self._shape: Shape | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        size = None if None in rest else math.prod(rest)
        return (input_shape[0], size)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, (self._shape[0], math.prod(self._shape[1:])))
        return dy.reshape(self._shape)


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (batch axis excluded; one entry may be -1).

    ``(N, *s) -> (N, *target_shape)``; backward reshapes ``dy`` back to ``(N, *s)``.
    """

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(
            d <= 0 and d != -1 for d in self.target_shape
        ):
            raise ValueError(
                f"{self._label()}: target_shape needs positive sizes and at most one -1, "
                f"got {self.target_shape}"
            )
        self._shape: Shape | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        if None in rest:
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (
            -1 not in self.target_shape and size != known
        ):
            raise ValueError(
                f"{self._label()}: cannot reshape samples of shape {format_shape(rest)} "
                f"({size} values) to {format_shape(self.target_shape)}"
            )
        return (input_shape[0], *(size // known if d == -1 else d for d in self.target_shape))

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)  # validates the sizes
        super().build(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        out_shape = self.compute_output_shape(x.shape)
        self._shape = x.shape
        return x.reshape(out_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, self.compute_output_shape(self._shape))
        return dy.reshape(self._shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Embedding(Layer):
    """Lookup table mapping integer ids to dense vectors.

    Shapes: ids ``(N, ...)`` with values in ``[0, input_dim)``,
    ``embeddings (input_dim, output_dim)``, output ``(N, ..., output_dim)``.

    Forward ``y[n, t] = E[ids[n, t]]``. Backward scatters ``dy`` back onto the rows that
    were looked up, ``dE[i] = sum_{(n, t): ids[n, t] = i} dy[n, t]``; ids are not
    differentiable, so ``backward`` returns ``None``.

    With ``mask_zero=True`` id 0 is padding: :meth:`compute_mask` returns the boolean mask
    ``ids != 0`` (Keras), which :class:`~tradenn.nn.model.Sequential` hands to the layers
    after it (recurrent layers skip the padded steps, attention ignores padded keys). The
    lookup itself is unchanged: id 0 still has a row, as in Keras 3 (the vocabulary keeps
    ``input_dim`` ids), and that row's gradient is whatever ``dy`` reaches it.

    Parameters
    ----------
    input_dim : int
        Vocabulary size.
    output_dim : int
        Embedding width.
    embeddings_initializer
        Keras default: uniform on [-0.05, 0.05].
    embeddings_regularizer
        Optional penalty on the table.
    mask_zero : bool
        Treat id 0 as padding and produce a mask (see above).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        mask_zero: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(input_dim) <= 0 or int(output_dim) <= 0:
            raise ValueError(
                f"{self._label()}: input_dim and output_dim must be positive, "
                f"got {input_dim} and {output_dim}"
            )
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = init_lib.get(embeddings_initializer)
        self.embeddings_regularizer = reg_lib.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self._ids: np.ndarray | None = None

    def build(self, input_shape: Shape) -> None:
        self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            self.embeddings_regularizer,
        )
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        ids = self._as_ids(x)
        if not self.built:
            self.build(ids.shape)
        self._ids = ids
        return np.take(self.params["embeddings"], ids, axis=0)

    def compute_mask(self, x: Any, mask: Any = None) -> np.ndarray | None:
        """``ids != 0`` (boolean, the shape of ``x``) with ``mask_zero``, else None."""
        if not self.mask_zero:
            return None
        return self._as_ids(x) != 0

    def backward(self, dy: np.ndarray) -> None:
        self._require_forward(self._ids)
        dy = self._check_gradient_shape(dy, (*self._ids.shape, self.output_dim))
        grad = self.grads["embeddings"]
        grad.fill(0.0)
        # dE[v] = sum of dy over the positions holding id v: sort the ids, then one
        # np.add.reduceat over the runs of equal ids (3x faster than np.add.at)
        ids = self._ids.ravel()
        if ids.size:
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            rows = dy.reshape(-1, self.output_dim)[order]
            grad[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)
        self._add_regularization_gradients()

    def _as_ids(self, x: Any) -> np.ndarray:
        ids = np.asarray(x)
        if ids.dtype.kind == "f":
            # float arrays of whole numbers are accepted: data pipelines often produce them
            if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                raise ValueError(f"{self._label()}: expected integer ids, got non-integral floats")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iu":
            raise ValueError(f"{self._label()}: expected integer ids, got dtype {ids.dtype}")
        if ids.ndim == 0:
            raise ValueError(f"{self._label()}: expected ids of shape (N, ...), got a scalar")
        if ids.size:
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.input_dim:
                raise ValueError(
                    f"{self._label()}: ids must lie in [0, {self.input_dim}) "
                    f"(input_dim={self.input_dim}); got values in [{low}, {high}]"
                )
        return ids

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": init_lib.serialize(self.embeddings_initializer),
            "embeddings_regularizer": reg_lib.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        }
