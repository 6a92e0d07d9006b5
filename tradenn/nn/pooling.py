"""Pooling layers: max and average pooling over windows, and their global forms.

Layout is batch first, channels last, ``x (N, *spatial, C)``; pooling acts on each channel
separately. Window ``o`` (a multi-index over output positions) covers the padded input
cells ``o * s + a`` for offsets ``a`` in ``[0, pool_size)``. Padding follows TF/Keras
``same`` (``out = ceil(size / s)``, the extra cell after); padded cells never win a max
and are left out of an average's count.

Max pooling sends each output's gradient to the arg-max of its window; with ties, to the
first maximal element in window order (row-major over the window offsets). Overlapping
windows (``strides < pool_size``) add their contributions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .base import InputSpec, Layer, Shape
from .conv import axis_geometry, normalize_padding, normalize_tuple


class _Pooling(Layer, register=False):
    """Shared implementation of windowed max and average pooling (see MaxPooling2D)."""

    rank = 0
    mode = ""  # "max" or "average"

    def __init__(
        self, pool_size: Any = 2, strides: Any = None, padding: str = "valid", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        label = self._label()
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size", label)
        self.strides = (
            self.pool_size
            if strides is None
            else normalize_tuple(strides, self.rank, "strides", label)
        )
        self.padding = normalize_padding(padding, ("valid", "same"), label)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self._x_shape: Shape | None = None
        self._argmax: np.ndarray | None = None  # (N, *out, C) window offset of each max
        self._count: np.ndarray | float = 1.0  # real cells per window (average pooling)

    # ------------------------------------------------------------------ geometry

    def _geometry(self, spatial: Shape) -> list[tuple[int, int, int]]:
        """``(before, after, output)`` of every spatial axis."""
        return [self._axis(axis, size) for axis, size in enumerate(spatial)]

    def _axis(self, axis: int, size: int) -> tuple[int, int, int]:
        pool = self.pool_size[axis]
        geometry = axis_geometry(size, pool, self.strides[axis], 1, self.padding)
        if geometry[2] <= 0:
            raise ValueError(
                f"{self._label()}: input size {size} on spatial axis {axis} is smaller than "
                f"pool_size {pool} ('valid' padding leaves no output)"
            )
        return geometry

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        out = [
            None if size is None else self._axis(axis, size)[2]
            for axis, size in enumerate(input_shape[1:-1])
        ]
        return (input_shape[0], *out, input_shape[-1])

    def _windows(self, padded: np.ndarray, out: list[int], writeable: bool = False) -> np.ndarray:
        """Strided view ``(N, *out, *pool_size, C)`` of the windows of ``padded``.

        Windows overlap when ``strides < pool_size``: never write through the whole view.
        """
        batch_stride, *axis_strides, channel_stride = padded.strides
        return as_strided(
            padded,
            (padded.shape[0], *out, *self.pool_size, padded.shape[-1]),
            (
                batch_stride,
                *(s * t for s, t in zip(self.strides, axis_strides, strict=True)),
                *axis_strides,
                channel_stride,
            ),
            writeable=writeable,
        )

    # ------------------------------------------------------------------ forward / backward

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        geometry = self._geometry(x.shape[1:-1])
        out = [g[2] for g in geometry]
        fill = -np.inf if self.mode == "max" else 0.0
        padded = _pad(x, [g[:2] for g in geometry], fill)
        windows = self._windows(padded, out)
        self._x_shape = x.shape
        if self.mode == "max":
            # flatten each window in row-major offset order; argmax keeps the first maximum
            flat = windows.reshape(*windows.shape[: self.rank + 1], -1, x.shape[-1])
            self._argmax = flat.argmax(axis=-2)
            return np.take_along_axis(flat, self._argmax[..., None, :], axis=-2)[..., 0, :]
        window_axes = tuple(range(self.rank + 1, 2 * self.rank + 1))
        self._count = self._cell_count(x.shape[1:-1], geometry)
        y = windows.sum(axis=window_axes)
        y /= self._count
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._x_shape)
        x_shape = self._x_shape
        geometry = self._geometry(x_shape[1:-1])
        out = [g[2] for g in geometry]
        dy = self._check_gradient_shape(dy, (x_shape[0], *out, x_shape[-1]))
        padded_shape = (
            x_shape[0],
            *(s + b + a for s, (b, a, _) in zip(x_shape[1:-1], geometry, strict=True)),
            x_shape[-1],
        )
        dx_padded = np.zeros(padded_shape, dtype=self.dtype)
        windows = self._windows(dx_padded, out, writeable=True)
        lead = (slice(None),) * (self.rank + 1)
        if self.mode == "max":
            for index, offset in enumerate(np.ndindex(*self.pool_size)):
                # one offset's view never overlaps itself, so += is safe; offsets add up
                windows[(*lead, *offset)] += np.multiply(dy, self._argmax == index)
        else:
            share = dy / self._count
            for offset in np.ndindex(*self.pool_size):
                windows[(*lead, *offset)] += share
        if dx_padded.shape == x_shape:
            return dx_padded
        crop = tuple(slice(b, b + s) for (b, _, _), s in zip(geometry, x_shape[1:-1], strict=True))
        return np.ascontiguousarray(dx_padded[(slice(None), *crop)])

    def _cell_count(self, spatial: Shape, geometry: list[tuple[int, int, int]]) -> Any:
        """Real (unpadded) cells per window: a number, or ``(1, *out, 1)`` with padding."""
        if all(before == after == 0 for before, after, _ in geometry):
            return float(math.prod(self.pool_size))
        # per axis, how many of the window's cells o*s - before + a fall inside [0, size)
        per_axis = []
        for size, pool, stride, (before, _, out) in zip(
            spatial, self.pool_size, self.strides, geometry, strict=True
        ):
            start = np.arange(out) * stride - before
            per_axis.append(np.minimum(start + pool, size) - np.maximum(start, 0))
        count = per_axis[0]
        for axis_count in per_axis[1:]:
            count = np.multiply.outer(count, axis_count)
        return count.reshape(1, *count.shape, 1).astype(self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


def _pad(x: np.ndarray, amounts: list[tuple[int, int]], fill: float) -> np.ndarray:
    """``x`` with ``amounts`` cells of ``fill`` around its spatial axes (no copy if none)."""
    if all(before == after == 0 for before, after in amounts):
        return x
    return np.pad(x, [(0, 0), *amounts, (0, 0)], constant_values=fill)


class MaxPooling1D(_Pooling):
    """Max over windows of a sequence, ``(N, L, C) -> (N, L_out, C)``.

    ``y[n, l, c] = max_{a < p} x_pad[n, l*s + a, c]`` (padding is -inf); backward
    ``dx[n, l*s + a*, c] += dy[n, l, c]`` at the first arg-max ``a*`` of each window.
    Parameters as for :class:`MaxPooling2D`.
    """

    rank, mode = 1, "max"


class MaxPooling2D(_Pooling):
    """Max over windows of an image, ``(N, H, W, C) -> (N, H_out, W_out, C)``.

    Forward, windows of ``pool_size`` cells every ``strides`` cells, ``x_pad`` the input
    padded with -inf::

        y[n, i, j, c] = max_{a, b} x_pad[n, i*s0 + a, j*s1 + b, c]

    Backward: ``y`` depends only on the arg-max ``(a*, b*)`` of each window, so
    ``dx[n, i*s0 + a*, j*s1 + b*, c] += dy[n, i, j, c]``; ``dx`` is zero elsewhere.
    With ties the first maximal cell in row-major window order gets the gradient, and
    overlapping windows (``strides < pool_size``) add up.

    Parameters
    ----------
    pool_size : int or tuple of 2 ints
        Window size (Keras default 2).
    strides : int or tuple of 2 ints, optional
        Step between windows; ``None`` means ``pool_size``.
    padding : {"valid", "same"}
        ``valid``: ``out = floor((size - p) / s) + 1``; ``same`` (TF/Keras):
        ``out = ceil(size / s)``, the extra padding after.
    """

    rank, mode = 2, "max"


class MaxPooling3D(_Pooling):
    """Max over windows of a volume, ``(N, D, H, W, C) -> (N, D_out, H_out, W_out, C)``.

    ``y[n, o, c] = max_a x_pad[n, o*s + a, c]`` over 3-d window offsets ``a``; backward
    sends ``dy`` to the first arg-max (row-major window order). Parameters as for
    :class:`MaxPooling2D`, with 3-tuples.
    """

    rank, mode = 3, "max"


class AveragePooling1D(_Pooling):
    """Mean over windows of a sequence, ``(N, L, C) -> (N, L_out, C)``.

    ``y[n, l, c] = sum_a x_pad[n, l*s + a, c] / count[l]``, ``count`` the real cells of
    the window; backward ``dx[n, l*s + a, c] += dy[n, l, c] / count[l]``. Parameters as
    for :class:`AveragePooling2D`.
    """

    rank, mode = 1, "average"


class AveragePooling2D(_Pooling):
    """Mean over windows of an image, ``(N, H, W, C) -> (N, H_out, W_out, C)``.

    Forward, ``x_pad`` the zero-padded input and ``count[i, j]`` the number of real
    (unpadded) cells in window ``(i, j)`` (``p0 * p1`` without padding)::

        y[n, i, j, c] = sum_{a, b} x_pad[n, i*s0 + a, j*s1 + b, c] / count[i, j]

    Backward: every cell of the window receives an equal share,
    ``dx[n, i*s0 + a, j*s1 + b, c] += dy[n, i, j, c] / count[i, j]`` (padded cells' shares
    are dropped); overlapping windows add up.

    Parameters are those of :class:`MaxPooling2D`.
    """

    rank, mode = 2, "average"


class AveragePooling3D(_Pooling):
    """Mean over windows of a volume, ``(N, D, H, W, C) -> (N, D_out, H_out, W_out, C)``.

    ``y[n, o, c] = sum_a x_pad[n, o*s + a, c] / count[o]``; backward
    ``dx[n, o*s + a, c] += dy[n, o, c] / count[o]``. Parameters as for
    :class:`MaxPooling2D`, with 3-tuples.
    """

    rank, mode = 3, "average"


# --------------------------------------------------------------------------- global pooling


class _GlobalPooling(Layer, register=False):
    """Shared implementation of global max and average pooling."""

    rank = 0
    mode = ""

    def __init__(self, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self._x_shape: Shape | None = None
        self._argmax: np.ndarray | None = None  # (N, 1, C) flat position of each max

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.keepdims:
            return (input_shape[0], *(1,) * self.rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        self._x_shape = x.shape
        batch, channels = x.shape[0], x.shape[-1]
        cells = x.reshape(batch, -1, channels)  # (N, S, C), S = prod(spatial)
        if self.mode == "max":
            self._argmax = cells.argmax(axis=1)[:, None, :]  # first maximum, row-major
            y = np.take_along_axis(cells, self._argmax, axis=1)[:, 0, :]
        else:
            # (S,) @ (N, S, C): one BLAS product per sample, several times faster than
            # a numpy reduction over the middle axis of a channels-last array
            y = np.matmul(np.ones(cells.shape[1], dtype=self.dtype), cells)
            y *= 1.0 / cells.shape[1]
        return y.reshape(self.compute_output_shape(x.shape))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._require_forward(self._x_shape)
        x_shape = self._x_shape
        dy = self._check_gradient_shape(dy, self.compute_output_shape(x_shape))
        batch, channels = x_shape[0], x_shape[-1]
        cells = math.prod(x_shape[1:-1])
        dy = dy.reshape(batch, 1, channels)
        if self.mode == "max":
            dx = np.zeros((batch, cells, channels), dtype=self.dtype)
            np.put_along_axis(dx, self._argmax, dy, axis=1)
        else:
            dx = np.repeat(dy * (1.0 / cells), cells, axis=1)  # contiguous, unlike a broadcast
        return dx.reshape(x_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the time axis, ``(N, L, C) -> (N, C)`` (``(N, 1, C)`` with keepdims).

    ``y[n, c] = sum_l x[n, l, c] / L``; backward ``dx[n, l, c] = dy[n, c] / L``.
    """

    rank, mode = 1, "average"


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over both spatial axes, ``(N, H, W, C) -> (N, C)`` (``(N, 1, 1, C)`` with keepdims).

    ``y[n, c] = sum_{i, j} x[n, i, j, c] / (H W)``; backward ``dx[n, i, j, c] = dy[n, c] / (H W)``.

    Parameters
    ----------
    keepdims : bool
        Keep the spatial axes with size 1 (Keras argument).
    """

    rank, mode = 2, "average"


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over the three spatial axes, ``(N, D, H, W, C) -> (N, C)``.

    ``y[n, c] = sum_o x[n, o, c] / (D H W)``; backward ``dx[n, o, c] = dy[n, c] / (D H W)``.
    """

    rank, mode = 3, "average"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the time axis, ``(N, L, C) -> (N, C)``.

    ``y[n, c] = max_l x[n, l, c]``; backward sends ``dy[n, c]`` to the first arg-max.
    """

    rank, mode = 1, "max"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over both spatial axes, ``(N, H, W, C) -> (N, C)``.

    ``y[n, c] = max_{i, j} x[n, i, j, c]``; backward ``dx[n, i*, j*, c] = dy[n, c]`` at the
    first arg-max in row-major order, zero elsewhere.

    Parameters
    ----------
    keepdims : bool
        Keep the spatial axes with size 1 (Keras argument).
    """

    rank, mode = 2, "max"


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over the three spatial axes, ``(N, D, H, W, C) -> (N, C)``.

    ``y[n, c] = max_o x[n, o, c]``; backward sends ``dy[n, c]`` to the first arg-max.
    """

    rank, mode = 3, "max"
