"""Convolutions: the reusable :class:`ConvOp` and the layers Conv1D, Conv2D and Conv3D.

Layout is batch first, channels last: ``x (N, *spatial, C_in)``, ``kernel (*k, C_in, F)``,
``y (N, *out, F)``. With ``x_pad`` the input padded as ``padding`` says, stride ``s`` and
dilation ``d`` (multi-indices ``o`` over output positions, ``a`` over kernel offsets)::

    y[n, o, f] = sum_{a, c} x_pad[n, o * s + a * d, c] * kernel[a, c, f]

How it is computed (im2col)
---------------------------
The windows are gathered into a column matrix ``X (K, P)``, one row per kernel entry
``(a, c)`` (``K = prod(k) * C_in``), one column per output position ``(n, o)``, so that
the convolution is one matrix product ``Y = X^T W`` with ``W = kernel.reshape(K, F)``.
The backward pass is two more products and a scatter-add::

    dW = X dY                                  (K, P) @ (P, F)
    dX = W dY^T                                (K, F) @ (F, P)
    dx_pad[n, o * s + a * d, c] += dX[(a, c), (n, o)]       (col2im, one add per offset a)

What makes it fast in numpy (measured on ``bench/nn_speed.py``'s shapes; the numbers are
in docs/layers.md, "Convolution layers"):

* ``X`` is copied out of a channels-first, zero-padded copy of the input, so each row of
  ``X`` is a run of contiguous or evenly strided values rather than ``C_in``-element
  pieces, and col2im adds runs of the same kind.
* With unit strides and short rows the column grid is the whole padded input instead of
  the outputs: column ``p`` then reads the flattened input at ``p + offset(a)``, every
  row of ``X`` is one contiguous slice and col2im is ``prod(k)`` contiguous adds. The
  extra positions (``(k - 1) * d`` per row) are computed and dropped in the forward pass
  and get a zero gradient in the backward pass (see :func:`_grid` for when this pays).
* A bias is folded into the product as a row of ones in ``X`` and a last row of ``W``, so
  ``db`` comes out of the same product as ``dW``.
* The padded input, the col2im target and ``dX`` live in buffers kept per input shape,
  and a layer hands its previous column matrix back for reuse; ``dx`` is transposed
  back to channels last by BLAS.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import checks
from .base import InputSpec, Shape, extends_constructor
from .core import KernelLayer

PADDINGS = ("valid", "same", "causal")

# With unit strides the column grid may cover the whole padded input (see _grid), but only
# while that is at most this many times the number of outputs.
_MAX_GRID_OVERHEAD = 2.0
_MAX_PLANS = 8  # input shapes an op keeps buffers for (batch sizes seen in fit/predict)


# --------------------------------------------------------------------------- arguments


def normalize_tuple(value: Any, rank: int, name: str, owner: str) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``rank`` ints, all positive) as a tuple."""
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if (
        len(values) != rank
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
        or min(values) < 1
    ):
        raise ValueError(
            f"{owner}: {name} must be a positive integer or {rank} positive integers, got {value!r}"
        )
    return tuple(int(v) for v in values)


def normalize_padding(padding: Any, allowed: Sequence[str], owner: str) -> str:
    """Lower-cased ``padding``, checked against ``allowed``."""
    mode = padding.lower() if isinstance(padding, str) else padding
    return checks.choice(mode, "padding", allowed, owner)


def axis_geometry(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int, int]:
    """``(pad_before, pad_after, output_size)`` of one spatial axis.

    With the effective kernel extent ``e = (kernel - 1) * dilation + 1``:

    * ``valid``: no padding, ``out = floor((size - e) / stride) + 1`` (0 if ``size < e``);
    * ``same`` (TF/Keras): ``out = ceil(size / stride)``, total padding
      ``max((out - 1) * stride + e - size, 0)``, ``total // 2`` before and the rest after;
    * ``causal``: ``e - 1`` before, none after, ``out = ceil(size / stride)``.
    """
    extent = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0, (size - extent) // stride + 1 if size >= extent else 0
    out = -(-size // stride)
    if padding == "causal":
        return extent - 1, 0, out
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2, out


# --------------------------------------------------------------------------- the operator


@dataclass
class ConvContext:
    """What :meth:`ConvOp.forward` keeps for the gradients of one call.

    Attributes
    ----------
    columns : ndarray, shape (K, P) or (K + 1, P)
        The im2col matrix ``X`` (plus a row of ones when a bias was folded in); ``P``
        counts the column-grid positions of all ``N`` samples, sample-major.
    input_shape : tuple
        Shape of ``x``, ``(N, *spatial, C_in)``.
    has_bias : bool
        Whether the last row of ``columns`` is the ones row of a bias.
    """

    columns: np.ndarray
    input_shape: tuple[int, ...]
    has_bias: bool


class ConvOp:
    """An N-d convolution without bias or activation: ``y = conv(x, kernel)``.

    Used by the Conv layers, and by recurrent convolutions, which call it once per time
    step (and once for all steps folded into the batch). ``forward`` returns the output
    and a :class:`ConvContext`; the gradients take that context back.

    Shapes: ``x (N, *spatial, C_in)``, ``kernel (*k, C_in, F)``, ``y (N, *out, F)``.

    Forward, with ``x_pad`` the padded input and ``X[(a, c), (n, o)] = x_pad[n, o*s + a*d, c]``
    the columns::

        y[n, o, f] = sum_{a, c} x_pad[n, o*s + a*d, c] kernel[a, c, f]      (Y = X^T W)

    Backward, with ``W = kernel.reshape(K, F)`` and ``dY`` the rows of ``dy``::

        dkernel = X dY                     dX = W dY^T
        dx_pad[n, o*s + a*d, c] += dX[(a, c), (n, o)]  (col2im),  dx = dx_pad without padding

    Parameters
    ----------
    rank : int
        Number of spatial axes (1, 2 or 3).
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
    padding : {"valid", "same", "causal"}
        ``causal`` (left padding ``(k - 1) * d``) only for rank 1.
    owner : str
        Named in error messages (the layer using the op).

    Notes
    -----
    Recurrent use: every ``forward`` returns a fresh ``y`` and, unless ``reuse`` is
    given, fresh ``ctx.columns``, so the contexts of all time steps can be kept for the
    backward pass. The recurrent kernel gradient is then either accumulated step by step,
    ``op.gradients(dy_t, kernel, ctx_t, kernel_out=dk, accumulate=True)`` (which also
    returns ``dh``), or formed in one product from the stacked steps,
    ``op.kernel_grad(np.concatenate(dys), ConvOp.stack_contexts(ctxs))`` (samples of all
    steps stacked along the batch axis in the same order). Both cost about the same;
    accumulating copies nothing.

    Internal buffers (the padded channels-first input, the col2im target, ``dX``) are
    kept per input shape and reused across calls; nothing that is returned or kept in a
    context is overwritten later, except the columns of a context passed as ``reuse``.
    """

    def __init__(
        self,
        rank: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        dilation_rate: Any = 1,
        owner: str = "ConvOp",
    ) -> None:
        if rank not in (1, 2, 3):
            raise ValueError(f"{owner}: rank must be 1, 2 or 3, got {rank!r}")
        self.rank = rank
        self.owner = owner
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size", owner)
        self.strides = normalize_tuple(strides, rank, "strides", owner)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate", owner)
        allowed = PADDINGS if rank == 1 else PADDINGS[:2]
        self.padding = normalize_padding(padding, allowed, owner)
        self._plans: OrderedDict[tuple, _Plan] = OrderedDict()

    # ------------------------------------------------------------------ geometry

    def padding_amounts(self, spatial: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` padding of every spatial axis for inputs of ``spatial``."""
        return tuple(g[:2] for g in self._geometry(spatial))

    def output_spatial(self, spatial: Sequence[int | None]) -> tuple[int | None, ...]:
        """Output spatial sizes for input spatial sizes ``spatial`` (None stays None)."""
        self._check_rank(spatial)
        return tuple(None if s is None else self._axis(i, s)[2] for i, s in enumerate(spatial))

    def _geometry(self, spatial: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(before, after, output)`` of every spatial axis."""
        self._check_rank(spatial)
        return [self._axis(i, s) for i, s in enumerate(spatial)]

    def _axis(self, axis: int, size: int) -> tuple[int, int, int]:
        kernel, dilation = self.kernel_size[axis], self.dilation_rate[axis]
        geometry = axis_geometry(int(size), kernel, self.strides[axis], dilation, self.padding)
        if geometry[2] <= 0:
            raise ValueError(
                f"{self.owner}: input size {size} on spatial axis {axis} is smaller than the "
                f"kernel extent {(kernel - 1) * dilation + 1} ('valid' padding leaves no output)"
            )
        return geometry

    def _check_rank(self, spatial: Sequence[Any]) -> None:
        if len(spatial) != self.rank:
            raise ValueError(
                f"{self.owner}: expected {self.rank} spatial sizes, got {tuple(spatial)}"
            )

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray | None = None,
        reuse: ConvContext | None = None,
    ) -> tuple[np.ndarray, ConvContext]:
        """``y = conv(x, kernel) (+ bias)``; returns ``(y, ctx)``.

        ``bias (F,)`` is optional; with it the context also yields ``db``
        (:meth:`gradients`). ``reuse`` may pass a context of an earlier call that is no
        longer needed: its column matrix is overwritten instead of allocating a new one
        (a layer passes its previous step's context; writing into memory that is still
        in cache is about twice as fast as into a fresh allocation).
        """
        self._check_operands(x, kernel)
        plan = self._plan(x.shape, kernel.shape[-1], x.dtype)
        np.copyto(plan.interior, np.moveaxis(x, -1, 0))
        rows = plan.kernel_rows
        shape = (rows + (bias is not None), plan.positions)
        if reuse is not None and reuse.columns.shape == shape and reuse.columns.dtype == x.dtype:
            columns = reuse.columns
        else:
            columns = np.empty(shape, dtype=x.dtype)
        np.copyto(columns[:rows].reshape(plan.windows.shape), plan.windows)
        weights = kernel.reshape(rows, -1)
        if bias is not None:
            columns[rows] = 1.0
            weights = np.concatenate((weights, bias.reshape(1, -1)))
        if plan.grid_is_output:
            y = np.matmul(columns.T, weights).reshape(plan.output_shape)
        else:
            np.matmul(columns.T, weights, out=plan.output_grid)
            y = plan.output_on_grid.copy()
        return y, ConvContext(columns, tuple(x.shape), bias is not None)

    # ------------------------------------------------------------------ backward

    def input_grad(self, dy: np.ndarray, kernel: np.ndarray, ctx: ConvContext) -> np.ndarray:
        """dL/dx for ``dy`` = dL/dy of the call that made ``ctx``; shape of ``x``."""
        plan = self._plan(ctx.input_shape, kernel.shape[-1], ctx.columns.dtype)
        return self._input_grad(plan.gradient_rows(dy), kernel, plan)

    def kernel_grad(
        self,
        dy: np.ndarray,
        ctx: ConvContext,
        out: np.ndarray | None = None,
        accumulate: bool = False,
    ) -> np.ndarray:
        """dL/dkernel ``X dY``, shape ``(*k, C_in, F)``.

        Written into ``out`` if given; with ``accumulate=True`` added to ``out`` instead
        (for sums over time steps). ``dy``/``ctx`` may be several calls stacked along the
        batch axis (:meth:`stack_contexts`).
        """
        plan = self._plan(ctx.input_shape, dy.shape[-1], ctx.columns.dtype)
        return self._weight_grads(plan.gradient_rows(dy), ctx, plan, out, None, accumulate)[0]

    def gradients(
        self,
        dy: np.ndarray,
        kernel: np.ndarray,
        ctx: ConvContext,
        kernel_out: np.ndarray | None = None,
        bias_out: np.ndarray | None = None,
        accumulate: bool = False,
        with_input_grad: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """``(dx, dkernel, dbias)`` in one pass (``dbias`` is None without a bias).

        Same as :meth:`input_grad` plus :meth:`kernel_grad`, but lays ``dy`` out once.
        ``kernel_out``/``bias_out`` receive the parameter gradients (added to them with
        ``accumulate=True``; without ``bias_out`` a fresh ``dbias`` is returned).
        ``with_input_grad=False`` skips ``dx`` (returned as None).
        """
        plan = self._plan(ctx.input_shape, kernel.shape[-1], ctx.columns.dtype)
        rows = plan.gradient_rows(dy)
        dkernel, dbias = self._weight_grads(rows, ctx, plan, kernel_out, bias_out, accumulate)
        dx = self._input_grad(rows, kernel, plan) if with_input_grad else None
        return dx, dkernel, dbias

    @staticmethod
    def stack_contexts(contexts: Sequence[ConvContext]) -> ConvContext:
        """One context for the inputs of several calls concatenated along the batch axis.

        ``kernel_grad(np.concatenate(dys), ConvOp.stack_contexts(ctxs))`` equals the sum
        of ``kernel_grad(dy_i, ctx_i)``, computed as one product (the columns are copied).
        """
        first = contexts[0]
        for ctx in contexts[1:]:
            if ctx.input_shape[1:] != first.input_shape[1:] or ctx.has_bias != first.has_bias:
                raise ValueError(
                    "stack_contexts: contexts must come from inputs of the same sample shape "
                    f"and bias setting, got {first.input_shape} and {ctx.input_shape}"
                )
        columns = np.concatenate([ctx.columns for ctx in contexts], axis=1)
        batch = sum(ctx.input_shape[0] for ctx in contexts)
        return ConvContext(columns, (batch, *first.input_shape[1:]), first.has_bias)

    def _weight_grads(
        self,
        rows: np.ndarray,
        ctx: ConvContext,
        plan: _Plan,
        kernel_out: np.ndarray | None,
        bias_out: np.ndarray | None,
        accumulate: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        product = np.matmul(ctx.columns, rows)  # (K (+1), F): dW, then db in the ones row
        kernel_shape = (*self.kernel_size, ctx.input_shape[-1], rows.shape[1])
        dkernel = _deliver(
            product[: plan.kernel_rows].reshape(kernel_shape), kernel_out, accumulate
        )
        dbias = None
        if ctx.has_bias:  # without bias_out, db is returned even when accumulating dkernel
            dbias = _deliver(
                product[plan.kernel_rows], bias_out, accumulate and bias_out is not None
            )
        return dkernel, dbias

    def _input_grad(self, rows: np.ndarray, kernel: np.ndarray, plan: _Plan) -> np.ndarray:
        weights = kernel.reshape(plan.kernel_rows, -1)
        spread = np.matmul(weights, rows.T, out=plan.spread).reshape(plan.windows.shape)
        plan.gradient.fill(0.0)
        windows = plan.gradient_windows
        for offset in np.ndindex(*self.kernel_size):  # col2im: one add per kernel offset
            windows[offset] += spread[offset]
        padded = _channels_last(plan.gradient[:, : plan.padded_size]).reshape(plan.padded_shape)
        if plan.is_padded:
            return np.ascontiguousarray(padded[plan.unpadded])
        return padded

    # ------------------------------------------------------------------ helpers

    def _check_operands(self, x: np.ndarray, kernel: np.ndarray) -> None:
        if x.ndim != self.rank + 2:
            raise ValueError(
                f"{self.owner}: expected input of rank {self.rank + 2} "
                f"(batch, {self.rank} spatial axes, channels), got shape {x.shape}"
            )
        expected = (*self.kernel_size, x.shape[-1])
        if kernel.ndim != self.rank + 2 or kernel.shape[:-1] != expected:
            raise ValueError(
                f"{self.owner}: kernel of shape {kernel.shape} does not fit kernel_size "
                f"{self.kernel_size} and {x.shape[-1]} input channels; expected "
                f"{(*expected, 'filters')}"
            )
        if kernel.dtype != x.dtype:
            raise ValueError(
                f"{self.owner}: input ({x.dtype}) and kernel ({kernel.dtype}) dtypes differ"
            )

    def _plan(self, input_shape: tuple[int, ...], filters: int, dtype: np.dtype) -> _Plan:
        key = (tuple(input_shape), int(filters), np.dtype(dtype).str)
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan(self, tuple(input_shape), int(filters), np.dtype(dtype))
            self._plans[key] = plan
            if len(self._plans) > _MAX_PLANS:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def __repr__(self) -> str:
        return (
            f"ConvOp(rank={self.rank}, kernel_size={self.kernel_size}, strides={self.strides}, "
            f"padding={self.padding!r}, dilation_rate={self.dilation_rate})"
        )


def _channels_last(a: np.ndarray) -> np.ndarray:
    """``a (C, M)`` as a contiguous ``(M, C)`` array.

    numpy copies a transposed array one ``C``-element row at a time and takes 0.5 ms for
    (16, 32768) float32 here; a product with the identity lets BLAS transpose in blocks,
    2-4x faster for 3 to 128 channels (and exact: each output is ``1.0 * a``, plus zeros).
    """
    channels = a.shape[0]
    if channels == 1 or channels > 128:
        return np.ascontiguousarray(a.T)
    return np.matmul(a.T, np.eye(channels, dtype=a.dtype))


def _deliver(value: np.ndarray, out: np.ndarray | None, accumulate: bool) -> np.ndarray:
    """``value`` written into (or, with ``accumulate``, added to) ``out`` when given."""
    if out is None:
        if accumulate:
            raise ValueError("accumulate=True needs an output array to add to")
        return np.array(value)
    if accumulate:
        out += value
    else:
        np.copyto(out, value)
    return out


def _grid(op: ConvOp, padded: list[int], out: list[int], kernel_rows: int) -> list[int]:
    """Positions the column matrix covers: the outputs, or the whole padded input.

    The exact output grid copies ``kernel_rows`` values per position in runs of
    ``out[-1]``, and numpy pays per run; the padded grid copies one long run per row of
    the column matrix but computes the extra positions and costs two more passes over
    the output (dropping them, then zero-padding ``dy``). Measured on 1-d and 2-d shapes
    from 8 to 128 cells per axis, the padded grid wins (by up to a third) roughly when
    ``kernel_rows > out[-1]``: short rows, many channels (16x16 images with 8 channels,
    3-d volumes, short sequences); the exact grid wins on long sequences (Conv1D over 128
    steps) and the two are within noise on 32x32 RGB images. Strided convolutions always
    use the exact grid.
    """
    if (
        all(s == 1 for s in op.strides)
        and kernel_rows > out[-1]
        and math.prod(padded) <= _MAX_GRID_OVERHEAD * math.prod(out)
    ):
        return list(padded)
    return list(out)


class _Plan:
    """Geometry and reusable buffers of a :class:`ConvOp` for one input shape and dtype.

    The padded input lives channels-first in ``padded (C, length)``: channel ``c`` holds
    the flattened ``(N, *padded_spatial)`` block, then ``slack`` zeros so that windows of
    padded-grid positions past the last sample stay inside the buffer. Border and slack
    are zeroed once; each forward only rewrites the interior.

    ``windows`` is a strided view ``(*k, C, N, *grid)`` of that buffer, entry
    ``[a, c, n, g]`` being ``x_pad[n, g * step + a * d, c]`` (on the padded grid the
    positions ``(n, g)`` are one axis, the flattened buffer itself); a copy of it is the
    column matrix. ``gradient_windows`` is the same view of the gradient buffer; for one
    offset ``a`` it does not overlap itself, so col2im may add to it offset by offset.
    """

    def __init__(
        self, op: ConvOp, input_shape: tuple[int, ...], filters: int, dtype: np.dtype
    ) -> None:
        batch, *spatial, channels = input_shape
        geometry = op._geometry(spatial)
        padded = [
            s + before + after for s, (before, after, _) in zip(spatial, geometry, strict=True)
        ]
        out = [g[2] for g in geometry]
        self.dtype = dtype
        self.owner = op.owner
        self.kernel_rows = math.prod(op.kernel_size) * channels
        self.output_shape = (batch, *out, filters)
        grid = _grid(op, padded, out, self.kernel_rows)
        self.grid_is_output = grid == out
        self.grid_shape = (batch, *grid, filters)
        self.positions = batch * math.prod(grid)
        step = op.strides if self.grid_is_output else (1,) * op.rank

        # element offsets in the flattened padded sample
        pitch = [math.prod(padded[i + 1 :]) for i in range(op.rank)]
        sample = math.prod(padded)
        reach = [d * p for d, p in zip(op.dilation_rate, pitch, strict=True)]
        last_read = sum(  # of the last window of a sample, which the next sample follows
            (g - 1) * s * p + (k - 1) * r
            for g, s, k, r, p in zip(grid, step, op.kernel_size, reach, pitch, strict=True)
        )
        self.padded_size = batch * sample
        length = self.padded_size + max(0, last_read + 1 - sample)

        self.padded = np.zeros((channels, length), dtype=dtype)
        self.padded_shape = (batch, *padded, channels)  # channels last, for the gradient
        self.is_padded = padded != spatial
        self.unpadded = (
            slice(None),
            *(slice(g[0], g[0] + s) for s, g in zip(spatial, geometry, strict=True)),
        )
        self.interior = self.padded[:, : self.padded_size].reshape(channels, batch, *padded)[
            (slice(None), *self.unpadded)
        ]
        if self.grid_is_output:
            positions_shape = (batch, *grid)
            positions_strides = (sample, *(s * p for s, p in zip(step, pitch, strict=True)))
        else:  # the padded grid is the flattened buffer itself: one axis, unit stride
            positions_shape, positions_strides = (self.positions,), (1,)
        # numpy pays per axis of a view: one position axis copies and adds ~2x faster
        self._window_shape = (*op.kernel_size, channels, *positions_shape)
        self._window_strides = tuple(
            dtype.itemsize * e for e in (*reach, length, *positions_strides)
        )
        self.windows = as_strided(
            self.padded, self._window_shape, self._window_strides, writeable=False
        )
        self._outputs = (slice(None), *(slice(0, o) for o in out), slice(None))

    # buffers of the padded grid and of the backward pass, made on first use

    @cached_property
    def output_grid(self) -> np.ndarray:
        """Product ``X^T W`` on the padded grid, ``(positions, F)``."""
        return np.empty((self.positions, self.grid_shape[-1]), dtype=self.dtype)

    @cached_property
    def output_on_grid(self) -> np.ndarray:
        """The rows of :attr:`output_grid` that are outputs, as ``(N, *out, F)``."""
        return self.output_grid.reshape(self.grid_shape)[self._outputs]

    @cached_property
    def _gradient_grid(self) -> np.ndarray:
        # zero on the positions that are not outputs; only the others are ever written
        return np.zeros((self.positions, self.grid_shape[-1]), dtype=self.dtype)

    @cached_property
    def spread(self) -> np.ndarray:
        """``dX = W dY^T``, the gradient of the column matrix, ``(K, positions)``."""
        return np.empty((self.kernel_rows, self.positions), dtype=self.dtype)

    @cached_property
    def gradient(self) -> np.ndarray:
        """Scatter target of col2im, laid out like :attr:`padded`."""
        return np.zeros_like(self.padded)

    @cached_property
    def gradient_windows(self) -> np.ndarray:
        return as_strided(self.gradient, self._window_shape, self._window_strides)

    def gradient_rows(self, dy: np.ndarray) -> np.ndarray:
        """``dy (N, *out, F)`` as the rows ``dY (positions, F)`` of the column grid."""
        expected = (*self.output_shape[:-1], self.grid_shape[-1])
        if dy.shape != expected:
            raise ValueError(f"{self.owner}: expected dy of shape {expected}, got {dy.shape}")
        if self.grid_is_output:
            return dy.reshape(self.positions, -1)
        grid = self._gradient_grid
        np.copyto(grid.reshape(self.grid_shape)[self._outputs], dy)
        return grid


# --------------------------------------------------------------------------- layers


@extends_constructor()
class _Conv(KernelLayer, register=False):
    """Shared implementation of Conv1D, Conv2D and Conv3D (see :class:`Conv2D`)."""

    rank = 0

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        dilation_rate: Any = 1,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.filters = checks.positive_int(filters, "filters", self._label())
        self.op = ConvOp(
            self.rank, kernel_size, strides, padding, dilation_rate, owner=self._label()
        )
        self.kernel_size, self.strides = self.op.kernel_size, self.op.strides
        self.padding, self.dilation_rate = self.op.padding, self.op.dilation_rate
        self.input_spec = InputSpec(ndim=self.rank + 2)
        self._ctx: ConvContext | None = None
        self._y: np.ndarray | None = None

    def build(self, input_shape: Shape) -> None:
        self._check_input_shape(tuple(input_shape))
        channels = input_shape[-1]
        self._add_kernel_and_bias((*self.kernel_size, channels, self.filters))
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={-1: channels})
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *self.op.output_spatial(input_shape[1:-1]), self.filters)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        bias = self.params["bias"] if self.use_bias else None
        z, self._ctx = self.op.forward(x, self.params["kernel"], bias, reuse=self._ctx)
        self._y = y = self._activate(z)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._ctx)
        dy = self._check_gradient_shape(dy, self._y.shape)
        dz = self.activation.backward(dy, self._z, self._y)
        dx, _, _ = self.op.gradients(
            dz,
            self.params["kernel"],
            self._ctx,
            kernel_out=self.grads["kernel"],
            bias_out=self.grads["bias"] if self.use_bias else None,
            with_input_grad=self.needs_input_grad,
        )
        self._add_regularization_gradients()
        return dx

    def _leading_config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
        }


class Conv1D(_Conv):
    """1-D convolution over sequences, ``(N, L, C_in) -> (N, L_out, filters)``.

    ``kernel (k, C_in, filters)``, ``bias (filters,)``. Forward, with ``x_pad`` the padded
    input::

        z[n, l, f] = sum_{a < k, c} x_pad[n, l*s + a*d, c] kernel[a, c, f] + bias[f]
        y = activation(z)

    Backward (``dz = f'(z) * dy``; ``X`` the im2col matrix, see :class:`ConvOp`)::

        dkernel = X dz        dbias = sum_{n, l} dz        dx = col2im(W dz^T)

    Parameters are those of :class:`Conv2D`; ``padding`` may also be ``"causal"``:
    ``(k - 1) * d`` zeros on the left only, so ``y[l]`` sees ``x[: l*s + 1]`` and the
    output length is ``ceil(L / s)`` (for forecasting on time series).
    """

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over images, ``(N, H, W, C_in) -> (N, H_out, W_out, filters)``.

    ``kernel (kh, kw, C_in, filters)``, ``bias (filters,)`` (Keras layout). Forward,
    with ``x_pad`` the padded input, stride ``s`` and dilation ``d`` per axis::

        z[n, i, j, f] = sum_{a, b, c} x_pad[n, i*s0 + a*d0, j*s1 + b*d1, c] kernel[a, b, c, f]
                        + bias[f]
        y = activation(z)

    computed as one product ``Z = X^T W + b`` of the im2col matrix
    ``X[(a, b, c), (n, i, j)] = x_pad[n, i*s0 + a*d0, j*s1 + b*d1, c]`` with
    ``W = kernel.reshape(kh*kw*C_in, filters)``. Backward, with ``dz = f'(z) * dy``::

        dW = X dZ          db = sum_{n, i, j} dz          dX = W dZ^T
        dx_pad[n, i*s0 + a*d0, j*s1 + b*d1, c] += dX[(a, b, c), (n, i, j)]   (col2im)

    and ``dx`` is ``dx_pad`` without its padding.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or tuple of 2 ints
        Window size ``(kh, kw)``.
    strides : int or tuple of 2 ints
        Step between windows.
    padding : {"valid", "same"}
        ``valid``: no padding, ``out = floor((size - (k-1)*d - 1) / s) + 1``. ``same``
        (TF/Keras): ``out = ceil(size / s)``, padding
        ``max((out - 1)*s + (k-1)*d + 1 - size, 0)`` split with the extra one after.
    dilation_rate : int or tuple of 2 ints
        Spacing between kernel taps (may be combined with strides, unlike Keras).
    activation : str or ActivationFunction, optional
        Applied to ``z``; linear when ``None``.
    use_bias : bool
        Whether to add ``bias``.
    kernel_initializer, bias_initializer
        Keras defaults: ``glorot_uniform`` (fans include the receptive field) and ``zeros``.
    kernel_regularizer
        Optional penalty on the kernel.

    As the first layer of a model in a training step (``needs_input_grad`` False),
    ``backward`` skips ``dx`` (a third of a Conv2D step) and returns None.
    """

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over volumes, ``(N, D, H, W, C_in) -> (N, D_out, H_out, W_out, filters)``.

    ``kernel (kd, kh, kw, C_in, filters)``, ``bias (filters,)``. Forward, with ``o`` and
    ``a`` running over output positions and kernel offsets (3-d multi-indices)::

        z[n, o, f] = sum_{a, c} x_pad[n, o*s + a*d, c] kernel[a, c, f] + bias[f]
        y = activation(z)

    Backward as for :class:`Conv2D`: ``dW = X dZ``, ``db = sum dz``,
    ``dx = col2im(W dZ^T)``. Parameters are those of :class:`Conv2D`, with 3-tuples.
    """

    rank = 3
