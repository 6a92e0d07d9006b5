"""Long short-term memory: the elementwise gate math, the recurrence and the LSTM layer.

The gate math (:func:`lstm_gates_forward`, :func:`lstm_backward_factors`,
:func:`lstm_gates_backward`) works on states of any shape; :class:`LSTMCore` runs it over
time through the linear-map hooks of :class:`~tradenn.nn.recurrent.base.RecurrentLayer`,
which :class:`LSTM` (matrix products) and the ConvLSTM layers (convolutions) provide.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import activations as act_lib
from .. import ops
from ..base import extends_constructor
from .base import (
    GatedRecurrentLayer,
    SequenceCache,
    fill_or_zero,
    gates_first,
    mask_weights,
)

# --------------------------------------------------------------------------- LSTM gate math


class LSTMCache(NamedTuple):
    """What the LSTM gate math keeps for the backward pass (one step, or stacked over time).

    Attributes
    ----------
    gates : ndarray (4, ..., H)
        Activated gates ``i, f, g, o`` (``g`` the candidate cell), gate-major.
    c_prev, c : ndarray (..., H)
        Cell state before and after the step.
    act_c : ndarray (..., H)
        ``activation(c)``.
    pre : ndarray (4, ..., H) or None
        Pre-activations, kept only when an activation's derivative reads its input.
    """

    gates: np.ndarray
    c_prev: np.ndarray
    c: np.ndarray
    act_c: np.ndarray
    pre: np.ndarray | None


def lstm_gates_forward(
    z: np.ndarray,
    c_prev: np.ndarray,
    activation: act_lib.ActivationFunction,
    recurrent_activation: act_lib.ActivationFunction,
    *,
    h: np.ndarray | None = None,
    c: np.ndarray | None = None,
    act_c: np.ndarray | None = None,
    pre: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, LSTMCache]:
    """One LSTM step's elementwise math, for states of any shape.

    With ``z = x_t W + h_{t-1} U + b`` held gate-major (``z[k]`` is gate k's block, Keras'
    order ``i, f, c, o``), ``σ = recurrent_activation`` and ``φ = activation``::

        i = σ(z_i)    f = σ(z_f)    g = φ(z_c)    o = σ(z_o)
        c = f * c_prev + i * g
        h = o * φ(c)

    Parameters
    ----------
    z : ndarray (4, ..., H)
        Pre-activations; overwritten in place with the activated gates ``i, f, g, o``.
        Each block ``z[k]`` should be contiguous (blocks may be apart) for speed.
    c_prev : ndarray (..., H)
        Previous cell state; ``...`` is anything (``N`` for a dense LSTM, ``N, rows,
        cols`` for a ConvLSTM2D).
    activation, recurrent_activation : ActivationFunction
        Elementwise activations (``φ`` and ``σ``).
    h, c, act_c : ndarray (..., H), optional
        Output buffers for ``h``, ``c`` and ``φ(c)``; new arrays if omitted.
    pre : ndarray (4, ..., H), optional
        Receives a copy of ``z`` before activation. Needed (for the backward pass) only
        when an activation's derivative reads its input (``uses_input``: gelu, silu).

    Returns
    -------
    h, c : ndarray (..., H)
    cache : LSTMCache
        Input of :func:`lstm_backward_factors`.
    """
    if pre is not None:
        np.copyto(pre, z)
    if type(recurrent_activation) is act_lib.Sigmoid and type(activation) is act_lib.Tanh:
        # one sigmoid call activates all four gates: tanh(z_c) = 2 sigmoid(2 z_c) - 1
        z[2] *= 2.0
        ops.sigmoid(z, out=z)
        z[2] *= 2.0
        z[2] -= 1.0
    else:
        recurrent_activation.forward(z[:2], out=z[:2])
        activation.forward(z[2], out=z[2])
        recurrent_activation.forward(z[3], out=z[3])
    i, f, g, o = z
    c = np.multiply(f, c_prev, out=c)
    act_c = np.multiply(i, g, out=act_c)  # i * g, parked in act_c's buffer
    c += act_c
    act_c = activation.forward(c, out=act_c)
    h = np.multiply(o, act_c, out=h)
    return h, c, LSTMCache(z, c_prev, c, act_c, pre)


def lstm_backward_factors(
    cache: LSTMCache,
    activation: act_lib.ActivationFunction,
    recurrent_activation: act_lib.ActivationFunction,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The per-step constants of the LSTM backward pass, for one step or all at once.

    Differentiating :func:`lstm_gates_forward` (``'`` a derivative at the step's own
    pre-activation, ``dc`` arriving from step t+1)::

        dc_t = dc + dh * o φ'(c)
        dz_i = dc_t * g σ'(z_i)      dz_f = dc_t * c_prev σ'(z_f)      dz_c = dc_t * i φ'(z_c)
        dz_o = dh * φ(c) σ'(z_o)     dc_prev = dc_t * f

    Only ``dh`` and ``dc`` change during backpropagation through time; the six products
    ``[g σ'(z_i), c_prev σ'(z_f), i φ'(z_c), φ(c) σ'(z_o), o φ'(c), f]`` are known after the
    forward pass, so they are computed here in a few large vectorized operations (on a
    cache stacked over time) instead of inside the loop.

    Parameters
    ----------
    cache : LSTMCache
        From :func:`lstm_gates_forward`; its arrays may carry extra leading axes (time).
    activation, recurrent_activation : ActivationFunction
        The ones used in the forward pass.
    out : ndarray (6, ..., H), optional
        Output buffer.

    Returns
    -------
    ndarray (6, ..., H)
        The factors in the order above; input of :func:`lstm_gates_backward`.
    """
    gates, c_prev, c, act_c, pre = cache
    i, f, g, o = gates
    if out is None:
        out = np.empty((6, *c.shape), dtype=c.dtype)
    if type(recurrent_activation) is act_lib.Sigmoid and type(activation) is act_lib.Tanh:
        # σ' = σ (1 - σ) and φ' = 1 - φ², from the outputs, written in place
        for k, (left, gate, tanh) in enumerate(
            ((g, i, False), (c_prev, f, False), (i, g, True), (act_c, o, False), (o, act_c, True))
        ):
            if tanh:
                np.multiply(gate, gate, out=out[k])
                np.subtract(1.0, out[k], out=out[k])
            else:
                np.subtract(1.0, gate, out=out[k])
                out[k] *= gate
            out[k] *= left
    else:
        z_i, z_f, z_c, z_o = (None,) * 4 if pre is None else pre
        # backward(dy, z, y) = dy * f'(z): each factor is one call with dy = the other factor
        out[0] = recurrent_activation.backward(g, z_i, i)
        out[1] = recurrent_activation.backward(c_prev, z_f, f)
        out[2] = activation.backward(i, z_c, g)
        out[3] = recurrent_activation.backward(act_c, z_o, o)
        out[4] = activation.backward(o, c, act_c)
    out[5] = f
    return out


def lstm_gates_backward(
    dh: np.ndarray, dc: np.ndarray, factors: np.ndarray, *, dz: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Backward pass through one LSTM step's gate math (see :func:`lstm_backward_factors`).

    Parameters
    ----------
    dh : ndarray (..., H)
        dL/dh_t: from the output at step t plus what flows back from step t+1.
    dc : ndarray (..., H)
        dL/dc_t arriving from step t+1 (``dc_T`` at the last step); **overwritten** with
        dL/dc_{t-1}.
    factors : ndarray (6, ..., H)
        This step's slice of :func:`lstm_backward_factors`.
    dz : ndarray (4, ..., H), optional
        Output buffer for dL/dz, gate-major in the order ``i, f, c, o``.

    Returns
    -------
    dz : ndarray (4, ..., H)
    dc_prev : ndarray (..., H)
        ``dc`` itself, now dL/dc_{t-1}.
    """
    if dz is None:
        dz = np.empty((4, *dh.shape), dtype=dh.dtype)
    dz_o = dz[3]
    np.multiply(dh, factors[4], out=dz_o)  # dh o φ'(c), parked in dz_o
    dc += dz_o
    np.multiply(dh, factors[3], out=dz_o)
    np.multiply(dc, factors[:3], out=dz[:3])  # dz_i, dz_f, dz_c
    dc *= factors[5]
    return dz, dc


# --------------------------------------------------------------------------- LSTM


@extends_constructor(consumed=1)
class LSTMCore(GatedRecurrentLayer, register=False):
    """The LSTM recurrence and its backpropagation through time, for any linear maps.

    States ``h, c`` have shape ``(N, ..., H)``; the gate-major pre-activations
    ``z (4, N, ..., H)`` come from the linear-map hooks of :class:`RecurrentLayer` (matrix
    products in :class:`LSTM`, convolutions in a ConvLSTM) and the elementwise step is
    :func:`lstm_gates_forward`. Forward, per step::

        z_t = input_projection(x)_t + recurrent_product(h_{t-1})
        h_t, c_t = lstm_gates_forward(z_t, c_{t-1})

    Backward: :func:`lstm_backward_factors` once over all steps, then from t = T down to 1,
    carrying only ``dh`` and ``dc``::

        dh_t = dy_t + recurrent_input_grad(dz_{t+1})        (dh_T = dy_T + given dh_T)
        dz_t, dc_{t-1} = lstm_gates_backward(dh_t, dc_t)     (dc_T given or zero)

    and finally ``_parameter_and_input_grads`` over the stacked ``dz``. A subclass with
    other linear maps overrides the hooks and the shape hooks, nothing else.
    """

    _gate_count = 4
    _state_names = ("h", "c")

    def __init__(
        self, units: int, *args: Any, unit_forget_bias: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(units, *args, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _add_bias(self) -> None:
        bias = self.add_weight("bias", (self._gate_width,), self.bias_initializer)
        if self.unit_forget_bias:  # Keras: start with the forget gate open
            bias[self.units : 2 * self.units] = 1.0

    def _run(self, x_tm, states, mask_tm):
        h0, c0 = states
        z = self._input_projection(x_tm)  # (4, T, N, ..., H); becomes the activated gates
        steps = z.shape[1]
        hidden = self._workspace("hidden", (steps + 1, *h0.shape))
        cell = self._workspace("cell", (steps + 1, *h0.shape))
        act_cell = self._workspace("activated_cell", (steps, *h0.shape))
        recurrent = self._workspace("recurrent_product", (4, *h0.shape))
        pre = self._workspace("pre_activations", z.shape) if self._keeps_pre_activations else None
        skipped = None if mask_tm is None else ~mask_tm
        hidden[0], cell[0] = h0, c0
        activation, recurrent_activation = self.activation, self.recurrent_activation
        for t in range(steps):  # h_t needs h_{t-1}: the only sequential part
            z_t = z[:, t]
            z_t += self._recurrent_product(hidden[t], recurrent)
            lstm_gates_forward(
                z_t,
                cell[t],
                activation,
                recurrent_activation,
                h=hidden[t + 1],
                c=cell[t + 1],
                act_c=act_cell[t],
                pre=None if pre is None else pre[:, t],
            )
            if skipped is not None:  # masked step: h_t = h_{t-1}, c_t = c_{t-1}
                np.copyto(hidden[t + 1], hidden[t], where=skipped[t])
                np.copyto(cell[t + 1], cell[t], where=skipped[t])
        cache = LSTMCache(z, cell[:-1], cell[1:], act_cell, pre)
        self._cache = SequenceCache(x_tm, hidden, mask_tm, cell=cache)
        return hidden[1:], [hidden[-1], cell[-1]]

    def _backprop(self, dy_seq, state_grads):
        x_tm, hidden, mask_tm = self._cache.x, self._cache.hidden, self._cache.mask
        cache = self._cache.cell
        steps, state_shape = cache.gates.shape[1], hidden.shape[1:]
        factors = lstm_backward_factors(
            cache,
            self.activation,
            self.recurrent_activation,
            out=self._workspace("backward_factors", (6, steps, *state_shape)),
        )
        dz_step = self._workspace("dz_step", (4, *state_shape))  # gate-major, one step
        dz = self._workspace("dz", (steps, *state_shape[:-1], 4 * self.units))  # channels-last
        dz_gates = gates_first(dz, 4)  # the same memory, gate-major (4, T, N, ..., H)
        dh_buffer = self._workspace("dh", state_shape)
        dc = fill_or_zero(self._workspace("dc", state_shape), state_grads[1])
        carry_h = None
        if mask_tm is not None:  # the parts of dh_t, dc_t that go straight to t-1
            keep, skip = mask_weights(mask_tm, self.dtype)
            carry_h = self._workspace("dh_carried", state_shape)
            carry_c = self._workspace("dc_carried", state_shape)
        for t in range(steps - 1, -1, -1):  # carries dh and dc only
            dh = self._state_gradient(t, dz, dh_buffer, state_grads[0], carry_h)
            if dy_seq is not None:
                dh += dy_seq[t]
            if mask_tm is not None:
                np.multiply(dh, skip[t], out=carry_h)
                np.multiply(dc, skip[t], out=carry_c)
                dh *= keep[t]
                dc *= keep[t]
            lstm_gates_backward(dh, dc, factors[:, t], dz=dz_step)
            if mask_tm is not None:
                dc += carry_c
            np.copyto(dz_gates[:, t], dz_step)
        initial_grads = None
        if self._has_initial_state:
            dh0 = self._state_gradient(-1, dz, np.empty_like(dh_buffer), None, carry_h)
            initial_grads = [dh0, dc.copy()]
        return self._parameter_and_input_grads(x_tm, hidden[:-1], dz), initial_grads

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class LSTM(LSTMCore):
    """Long short-term memory layer (Hochreiter & Schmidhuber, 1997), Keras 3 layout.

    Shapes: ``x (N, T, F)``, ``kernel (F, 4H)``, ``recurrent_kernel (H, 4H)``,
    ``bias (4H,)``, gate order ``i, f, c, o``; states ``h, c (N, H)``; outputs and the
    calling convention are described in :mod:`tradenn.nn.recurrent`.

    Forward, for t = 1..T, with ``σ = recurrent_activation`` (sigmoid) and
    ``φ = activation`` (tanh)::

        z = x_t W + h_{t-1} U + b                       (N, 4H) = [z_i, z_f, z_c, z_o]
        i = σ(z_i)   f = σ(z_f)   g = φ(z_c)   o = σ(z_o)
        c_t = f * c_{t-1} + i * g                       h_t = o * φ(c_t)

    Backward through time (``'`` a derivative at the step's pre-activation), carrying
    ``dh`` and ``dc``::

        dc_t += dh_t * o φ'(c_t)
        dz_i = dc_t g σ'(z_i)   dz_f = dc_t c_{t-1} σ'(z_f)   dz_c = dc_t i φ'(z_c)
        dz_o = dh_t φ(c_t) σ'(z_o)
        dc_{t-1} = dc_t * f                             dh_{t-1} = dy_{t-1} + dz U^T
        dW = Σ_t x_t^T dz_t     dU = Σ_t h_{t-1}^T dz_t     db = Σ_t sum_rows dz_t
        dx_t = dz_t W^T

    Parameters
    ----------
    units : int
        Size ``H`` of the hidden and cell states.
    activation, recurrent_activation : str or ActivationFunction
        ``φ`` (default ``tanh``) and the gates' ``σ`` (default ``sigmoid``), elementwise.
    unit_forget_bias : bool
        Start the forget-gate bias at 1 (Keras default, Jozefowicz et al. 2015).
    use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
    kernel_regularizer, recurrent_regularizer, return_sequences, return_state, go_backwards
        As for :class:`~tradenn.nn.recurrent.RecurrentLayer` (Keras' names and defaults).

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """
