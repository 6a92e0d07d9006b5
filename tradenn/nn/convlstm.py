"""Convolutional LSTMs: ConvLSTM1D, ConvLSTM2D and ConvLSTM3D (Shi et al., 2015; Keras 3).

A ConvLSTM is an LSTM whose states are feature maps and whose two linear maps are
convolutions. It is :class:`~tradenn.nn.recurrent.LSTMCore` — the same gate math and the
same backpropagation through time as :class:`~tradenn.nn.recurrent.LSTM` — with the
matrix-product hooks swapped for :class:`~tradenn.nn.conv.ConvOp` convolutions:

* the input convolution (``kernel_size``, ``strides``, ``padding``, ``dilation_rate``)
  runs once for all time steps, folded into the batch axis;
* the recurrent convolution (same ``kernel_size``, stride 1, ``padding="same"``, as in
  Keras) runs once per step; its per-step contexts are kept for the backward pass, where
  they give ``dh_{t-1}`` inside the loop and the recurrent kernel gradient after it.

Shapes (rank ``r`` = 1, 2, 3; ``F = filters``): input ``(N, T, *spatial, C)``; states
``h, c (N, *out, F)`` with ``out`` the input convolution's output size; output
``(N, T, *out, F)`` with ``return_sequences`` else ``(N, *out, F)``.
Parameters: ``kernel (*k, C, 4F)``, ``recurrent_kernel (*k, F, 4F)``, ``bias (4F,)``,
gate order ``i, f, c, o``. The calling convention (``initial_state``, ``return_state``,
``go_backwards``, what ``backward`` returns) is that of :mod:`tradenn.nn.recurrent`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Shape, extends_constructor
from .conv import ConvContext, ConvOp, normalize_padding
from .recurrent.base import gates_first
from .recurrent.lstm import LSTMCore


@extends_constructor(consumed=1)
class ConvLSTM(LSTMCore, register=False):
    """Shared implementation of ConvLSTM1D/2D/3D (see :class:`ConvLSTM2D`)."""

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
        self._input_ndim = self.rank + 3  # (N, T, *spatial, C)
        super().__init__(filters, *args, **kwargs)
        owner = self._label()
        normalize_padding(padding, ("valid", "same"), owner)  # no causal recurrent convolution
        self.input_op = ConvOp(self.rank, kernel_size, strides, padding, dilation_rate, owner)
        self.recurrent_op = ConvOp(self.rank, kernel_size, 1, "same", 1, owner)
        self.kernel_size, self.strides = self.input_op.kernel_size, self.input_op.strides
        self.padding, self.dilation_rate = self.input_op.padding, self.input_op.dilation_rate
        self._input_ctx: ConvContext | None = None
        self._recurrent_ctxs: list[ConvContext] = []  # one per step of the last forward
        # contexts of a finished backward pass: the next forward overwrites their columns
        self._spare_ctxs: list[ConvContext] = []

    @property
    def filters(self) -> int:
        """Number of feature maps of the states (the LSTM's ``units``)."""
        return self.units

    # ------------------------------------------------------------------ shapes

    def _kernel_shape(self, input_shape: Shape) -> Shape:
        return (*self.kernel_size, input_shape[-1], self._gate_width)

    def _recurrent_kernel_shape(self) -> Shape:
        return (*self.kernel_size, self.units, self._gate_width)

    def _state_shape(self, input_shape: Shape) -> Shape:
        spatial = self.input_op.output_spatial(input_shape[2:-1])
        return (input_shape[0], *spatial, self.units)

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        spatial = input_shape[2:-1]
        if None in spatial:
            raise ValueError(f"{self._label()}: the spatial input sizes must be known")
        if 0 in self.input_op.output_spatial(spatial):
            raise ValueError(
                f"{self._label()}: inputs of spatial size {spatial} are smaller than the "
                f"kernel {self.kernel_size} (dilation {self.dilation_rate}) with "
                f"padding='valid'"
            )
        super().build(input_shape)

    # ------------------------------------------------------------------ the linear-map hooks

    def _input_projection(self, x_tm: np.ndarray) -> np.ndarray:
        steps, batch = x_tm.shape[:2]
        bias = self.params["bias"] if self.use_bias else None
        y, self._input_ctx = self.input_op.forward(
            x_tm.reshape(steps * batch, *x_tm.shape[2:]),
            self.params["kernel"],
            bias,
            reuse=self._input_ctx,
        )
        y = y.reshape(steps, batch, *y.shape[1:])
        z = self._workspace("input_projection", (self._gate_count, *y.shape[:-1], self.units))
        np.copyto(z, gates_first(y, self._gate_count))
        self._recurrent_ctxs = []  # a new sequence: one recurrent context per step follows
        return z

    def _recurrent_product(self, h: np.ndarray, out: np.ndarray) -> np.ndarray:
        step = len(self._recurrent_ctxs)
        spare = self._spare_ctxs[step] if step < len(self._spare_ctxs) else None
        y, ctx = self.recurrent_op.forward(h, self.params["recurrent_kernel"], reuse=spare)
        self._recurrent_ctxs.append(ctx)
        return gates_first(y, self._gate_count)

    def _recurrent_input_grad(self, dz: np.ndarray, out: np.ndarray) -> np.ndarray:
        # the context only fixes the geometry, which every step shares
        return self.recurrent_op.input_grad(
            dz, self.params["recurrent_kernel"], self._recurrent_ctxs[0]
        )

    def _parameter_and_input_grads(
        self,
        x_tm: np.ndarray,
        h_prev: np.ndarray,
        dz: np.ndarray,
        dz_recurrent: np.ndarray | None = None,
    ) -> np.ndarray | None:
        steps, batch = dz.shape[:2]
        dx, _, _ = self.input_op.gradients(
            dz.reshape(steps * batch, *dz.shape[2:]),
            self.params["kernel"],
            self._input_ctx,
            kernel_out=self.grads["kernel"],
            bias_out=self.grads["bias"] if self.use_bias else None,
            with_input_grad=self.needs_input_grad,
        )
        # dU = sum_t conv-columns(h_{t-1}) dz_t, accumulated over the steps' contexts
        for t, ctx in enumerate(self._recurrent_ctxs):
            self.recurrent_op.kernel_grad(
                dz[t], ctx, out=self.grads["recurrent_kernel"], accumulate=t > 0
            )
        self._spare_ctxs = self._recurrent_ctxs
        return None if dx is None else dx.reshape(x_tm.shape)

    # ------------------------------------------------------------------ configuration

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        units = config.pop("units")
        return {
            "filters": units,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            **config,
        }


class ConvLSTM1D(ConvLSTM):
    """1-D convolutional LSTM: inputs ``(N, T, L, C)``, states ``(N, L', F)``.

    Per step, with ``*`` a convolution over ``L`` (``W`` with the layer's strides,
    padding and dilation, ``U`` with stride 1 and ``'same'`` padding), ``σ`` the
    recurrent activation and ``φ`` the activation::

        z = W * x_t + U * h_{t-1} + b          (N, L', 4F) = [z_i, z_f, z_c, z_o]
        c_t = σ(z_f) c_{t-1} + σ(z_i) φ(z_c)    h_t = σ(z_o) φ(c_t)

    Backward: the LSTM's backpropagation through time, with ``dh_{t-1} += U^T * dz_t``
    (the transposed convolution), ``dU = Σ_t cols(h_{t-1}) dz_t``, ``dW = Σ_t cols(x_t)
    dz_t`` and ``dx_t = W^T * dz_t``. See :class:`ConvLSTM2D` for the arguments.
    """

    rank = 1


class ConvLSTM2D(ConvLSTM):
    """2-D convolutional LSTM (Shi et al., 2015), Keras 3 layout.

    Shapes: ``x (N, T, H, W, C)``; ``kernel (kh, kw, C, 4F)``, ``recurrent_kernel
    (kh, kw, F, 4F)``, ``bias (4F,)``, gate order ``i, f, c, o``; states ``h, c
    (N, H', W', F)`` with ``H', W'`` the input convolution's output size; output
    ``(N, T, H', W', F)`` with ``return_sequences`` else ``(N, H', W', F)``.

    Forward, per step, with ``*`` a 2-D convolution (``W``: the layer's strides, padding
    and dilation; ``U``: stride 1, ``'same'``)::

        z = W * x_t + U * h_{t-1} + b           [z_i, z_f, z_c, z_o] on the channel axis
        i = σ(z_i)  f = σ(z_f)  g = φ(z_c)  o = σ(z_o)
        c_t = f c_{t-1} + i g                   h_t = o φ(c_t)

    Backward through time as for :class:`~tradenn.nn.recurrent.LSTM`, the products
    replaced by convolutions: ``dh_{t-1} = dy_{t-1} + U^T * dz_t`` (transposed
    convolution), ``dU = Σ_t cols(h_{t-1}) dz_t``, ``dW = Σ_t cols(x_t) dz_t``,
    ``db = Σ dz``, ``dx_t = W^T * dz_t`` (``cols`` the im2col matrix of
    :class:`~tradenn.nn.conv.ConvOp`).

    Parameters
    ----------
    filters : int
        Feature maps ``F`` of the states.
    kernel_size : int or tuple
        Size of both convolutions' kernels.
    strides, padding, dilation_rate
        Of the input convolution (``padding`` valid or same); the recurrent convolution
        always has stride 1 and ``'same'`` padding so ``h`` keeps its size.
    activation, recurrent_activation, use_bias, kernel_initializer,
    recurrent_initializer, bias_initializer, unit_forget_bias, kernel_regularizer,
    recurrent_regularizer, return_sequences, return_state, go_backwards
        As for :class:`~tradenn.nn.recurrent.LSTM`.
    """

    rank = 2


class ConvLSTM3D(ConvLSTM):
    """3-D convolutional LSTM: inputs ``(N, T, D, H, W, C)``, states ``(N, D', H', W', F)``.

    Shapes: ``x (N, T, D, H, W, C)``; ``kernel (kd, kh, kw, C, 4F)``, ``recurrent_kernel
    (kd, kh, kw, F, 4F)``, ``bias (4F,)``, gate order ``i, f, c, o``; states ``h, c
    (N, D', H', W', F)`` with ``D', H', W'`` the input convolution's output size; output
    ``(N, T, D', H', W', F)`` with ``return_sequences`` else ``(N, D', H', W', F)``.

    A 3-D convolution of a map ``v (N, D, H, W, C)`` with a kernel ``K (kd, kh, kw, C, G)``,
    stride ``s``, dilation ``r`` and ``v_pad`` the map padded as ``padding`` says, is
    (``p`` an output position and ``a`` a kernel offset, both triples)::

        (K * v)[n, p, g] = sum_{a, c} v_pad[n, p * s + a * r, c] K[a, c, g]

    Forward, per step (``W *``: the layer's strides, padding and dilation; ``U *``: stride
    1, ``'same'`` padding, no dilation, so ``h`` keeps its size), ``σ`` the recurrent
    activation and ``φ`` the activation::

        z = W * x_t + U * h_{t-1} + b           (N, D', H', W', 4F) = [z_i, z_f, z_c, z_o]
        i = σ(z_i)  f = σ(z_f)  g = φ(z_c)  o = σ(z_o)
        c_t = f c_{t-1} + i g                   h_t = o φ(c_t)

    Backward through time as for :class:`~tradenn.nn.recurrent.LSTM`, the products
    replaced by 3-D convolutions: ``dh_{t-1} = dy_{t-1} + U^T * dz_t`` (transposed
    convolution), ``dU = Σ_t cols(h_{t-1}) dz_t``, ``dW = Σ_t cols(x_t) dz_t``,
    ``db = Σ dz`` (over steps, samples and positions), ``dx_t = W^T * dz_t``, with ``cols``
    the im2col matrix of :class:`~tradenn.nn.conv.ConvOp` (one row per kernel entry
    ``(a, c)``, ``kd kh kw C`` rows; one column per output position ``(n, p)``).
    Arguments as for :class:`ConvLSTM2D`.
    """

    rank = 3
