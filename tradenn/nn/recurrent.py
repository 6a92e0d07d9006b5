"""Recurrent layers: RNN (Keras' SimpleRNN), LSTM, GRU and the Bidirectional wrapper.

Calling convention
------------------
Inputs are batch first, ``x (N, T, F)``; ``H = units``::

    y  = layer.forward(x, initial_state=None, mask=None, training=False)
    dx = layer.backward(dy)

* ``initial_state`` is ``None`` (zeros) or a list of arrays ``[h0]`` (RNN, GRU) or
  ``[h0, c0]`` (LSTM), each ``(N, H)``.
* The output ``y`` is ``(N, T, H)`` with ``return_sequences=True``, else ``(N, H)`` (the
  last step). With ``return_state=True`` forward returns the list ``[y, h_T]``
  (``[y, h_T, c_T]`` for LSTM) instead.
* ``backward(dy)`` takes ``dy`` shaped like the output: an array, or with ``return_state``
  the list ``[dy, dh_T]`` (``[dy, dh_T, dc_T]``) whose entries may be ``None`` (zero). It
  returns ``dx (N, T, F)`` or, when forward was given ``initial_state``, the list
  ``[dx, dh0]`` (``[dx, dh0, dc0]``).
* ``go_backwards=True`` processes the sequence from its last step to its first and, as in
  Keras, returns the sequence output in processing order (reversed), not re-reversed.
* ``mask`` is None or boolean ``(N, T)`` in input order, True at the steps that hold data
  (what ``Embedding(mask_zero=True).compute_mask`` returns). As in Keras, a masked step is
  skipped: every state is carried over, ``h_t = h_{t-1}`` (and ``c_t = c_{t-1}``), so the
  output at a masked step is the carried state (``h_0`` if the sequence starts masked) and
  the final state is the one after the last unmasked step. Backward, a masked step's state
  gradient goes unchanged to the previous step, and the step's input and the weights get
  none from it. ``compute_mask`` passes the mask on with ``return_sequences``.

Parameter names, shapes and gate orders are Keras 3's (see ``docs/layers.md``); GRU has
both of Keras' variants (``reset_after=True``, the default, and ``False``). Not
implemented: dropout, recurrent dropout, ``stateful``, ``zero_output_for_mask``.

How the work is organised
-------------------------
The input is transposed to time-major ``(T, N, F)`` once, and the input projections
``x_t W + b`` of all steps are one matrix product (the bias rides along as a row of ones).
Only the recurrence loops over time: per step one product ``h_{t-1} U`` (two for GRU with
``reset_after=False``, whose candidate product waits for the reset gate) into a
preallocated buffer and the gate arithmetic with in-place ufuncs on gate-major arrays
``(G, N, H)``, whose gate blocks are contiguous. Backpropagation through time carries only
``dh`` (and ``dc``) from step to step: the parts of the gate derivatives that do not depend
on them are computed before the loop for all steps at once, and each step's pre-activation
gradient ``dz_t`` is stored channels-last ``(N, G H)``, so that ``dz_t U^T`` and, after
the loop, ``dW``, ``dU``, ``db`` and ``dx`` are each a single product over the stacked
steps. A mask adds, per step, one masked copy forward and two elementwise products
backward (the split of ``dh`` between the cell and the carried state); without a mask
none of that code runs. Arrays that live for one call (gates, states, gradients) are
per-shape workspaces reused across calls (numpy pays for every fresh large array in page
faults), never returned to the caller.

Reuse by convolutional LSTMs
----------------------------
:class:`LSTMCore` runs the LSTM recurrence and its backward pass for states of shape
``(N, ..., H)`` and reaches the weights only through the hooks of :class:`RecurrentLayer`
(``_input_projection``, ``_recurrent_product``, ``_recurrent_input_grad``,
``_parameter_and_input_grads`` and the shape hooks). A ConvLSTM subclasses it and swaps the
matrix products for convolutions. The elementwise LSTM step is available on its own as
:func:`lstm_gates_forward`, :func:`lstm_backward_factors` and :func:`lstm_gates_backward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from . import activations as act_lib
from . import initializers as init_lib
from . import ops
from . import regularizers as reg_lib
from .base import InputSpec, Layer, Shape, format_shape
from .serialization import deserialize_layer, serialize_layer

# --------------------------------------------------------------------------- gate layout


def gates_first(a: np.ndarray, gates: int) -> np.ndarray:
    """View channels-last ``(..., G*H)`` as gate-major ``(G, ..., H)`` (no copy).

    Gate pre-activations are kept gate-major so that each gate's block is contiguous for
    the elementwise gate math; their gradients are stacked channels-last, the layout matrix
    products and convolutions consume. This view converts between the two in one copy.
    """
    blocks = a.reshape(*a.shape[:-1], gates, a.shape[-1] // gates)
    last = blocks.ndim - 1
    return blocks.transpose(last - 1, *range(last - 1), last)


def gates_last(a: np.ndarray) -> np.ndarray:
    """Gate-major ``(G, ..., H)`` as a new channels-last array ``(..., G*H)``."""
    last = a.ndim - 1
    return np.ascontiguousarray(a.transpose(*range(1, last), 0, last)).reshape(*a.shape[1:-1], -1)


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


@lru_cache(maxsize=32)
def _lstm_sigmoid_tanh_affine(ndim: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-gate ``scale`` and ``shift`` with ``gates = scale * tanh(scale * z) + shift``.

    ``sigmoid(z) = (1 + tanh(z / 2)) / 2``: scale 1/2 and shift 1/2 on the i, f, o blocks
    turn tanh into sigmoid, scale 1 and shift 0 leave the candidate block a tanh. Shaped
    ``(4, 1, ..., 1)`` to broadcast over gate-major arrays of ``ndim`` dimensions.
    """
    shape = (4,) + (1,) * (ndim - 1)
    scale = np.array([0.5, 0.5, 1.0, 0.5], dtype=dtype).reshape(shape)
    shift = np.array([0.5, 0.5, 0.0, 0.5], dtype=dtype).reshape(shape)
    scale.flags.writeable = shift.flags.writeable = False  # shared between callers
    return scale, shift


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
        scale, shift = _lstm_sigmoid_tanh_affine(z.ndim, z.dtype)
        z *= scale  # one tanh call activates all four gates (see _lstm_sigmoid_tanh_affine)
        np.tanh(z, out=z)
        z *= scale
        z += shift
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


# --------------------------------------------------------------------------- shared machinery


def _elementwise(activation: Any, argument: str, owner: str) -> act_lib.ActivationFunction:
    activation = act_lib.get(activation)
    if isinstance(activation, act_lib.Softmax):
        raise ValueError(f"{owner}: {argument} must be elementwise, got softmax")
    return activation


def _assign(buffer: np.ndarray, value: np.ndarray | None) -> np.ndarray:
    """Fill ``buffer`` with ``value``, or with zeros when ``value`` is None."""
    if value is None:
        buffer.fill(0.0)
    else:
        np.copyto(buffer, value)
    return buffer


def _mask_weights(mask_tm: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, skip)``: 1.0 where a step was taken (0.0 where masked), and ``1 - keep``.

    A masked step copies its state, ``h_t = h_{t-1}``, so in the backward pass the gradient
    arriving at ``h_t`` splits into ``keep * dh_t`` for the cell (zero at a masked step)
    and ``skip * dh_t``, added straight to ``dh_{t-1}``.
    """
    keep = mask_tm.astype(dtype)
    return keep, 1.0 - keep


class RecurrentLayer(Layer, register=False):
    """Base of the recurrent layers: arguments, weights, states, layout, outputs, hooks.

    It turns the batch-first input into a contiguous time-major array ``x_tm (T, N, ..., F)``
    (reversed in time for ``go_backwards``), hands it to the subclass's ``_run`` and
    ``_backprop`` (the cell's time loop), and packages outputs, states and gradients
    following the calling convention of :mod:`tradenn.nn.recurrent`.

    Gate pre-activations are **gate-major**, ``(G, ..., H)`` with ``G`` the number of
    gates (RNN 1, GRU 3, LSTM 4), so every gate's block is contiguous and the elementwise
    gate math runs on contiguous memory. Their gradients, which only feed products, are
    stacked **channels-last**, ``(T, N, ..., G H)``, so that ``dz_t U^T``, ``dW``, ``dU``,
    ``db`` and ``dx`` are each a single product. States are ``(N, ..., H)``.

    The weights are reached only through the hooks below; their defaults are the dense
    (matrix-product) maps of RNN, LSTM and GRU, and a convolutional recurrent layer
    overrides them (:func:`gates_first` views a channels-last result gate-major)::

        _kernel_shape(input_shape) -> shape          default (F, G H)
        _recurrent_kernel_shape() -> shape           default (H, G H)
        _state_shape(input_shape) -> (N, ..., H)     default (N, H)
        _input_projection(x_tm) -> Z (G, T, N, ..., H)
            x_t W + b for all steps in one call, bias included, gate-major. Z may be a
            workspace: the time loop overwrites it in place (keep each Z[k] contiguous).
        _recurrent_product(h, out) -> (G, N, ..., H)
            h_{t-1} U, gate-major; written into ``out`` (G, N, ..., H) and returned, or
            returned as a new array or view.
        _recurrent_input_grad(dz, out) -> (N, ..., H)
            dz U^T for one step's channels-last dz (N, ..., G H): the gradient reaching
            h_{t-1} through the recurrent map; same rules for ``out``.
        _parameter_and_input_grads(x_tm, h_prev, dz, dz_recurrent=None) -> dx_tm
            After the loop, from all steps at once (h_prev (T, N, ..., H), channels-last
            dz (T, N, ..., G H)): writes grads["kernel"] = Σ_t x_t^T dz_t,
            grads["recurrent_kernel"] = Σ_t h_{t-1}^T dz_t (dz_recurrent instead of dz
            where they differ, as in GRU) and grads["bias"]; returns dx_tm (T, N, ..., F),
            a new array, or None when ``needs_input_grad`` is False.

    Subclasses set ``_gate_count``, ``_state_names`` (and ``_input_ndim`` for inputs with
    spatial axes) and implement ``_run(x_tm, states, mask_tm) -> (hidden (T, N, ..., H),
    final states)`` and ``_backprop(dy_seq, final_state_grads) -> (dx_tm,
    initial_state_grads)``. ``mask_tm`` is None or boolean ``(T, N, 1, ..., 1)``, True where
    a step is taken; at a masked step the states are carried over unchanged (Keras).
    """

    _gate_count = 1
    _state_names: tuple[str, ...] = ("h",)
    _input_ndim = 3  # (N, T, F); a convolutional subclass takes (N, T, *spatial, C)

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(units, bool) or int(units) != units or int(units) <= 0:
            raise ValueError(f"{self._label()}: units must be a positive integer, got {units}")
        self.units = int(units)
        self.activation = _elementwise(activation, "activation", self._label())
        self.use_bias = bool(use_bias)
        self.kernel_initializer = init_lib.get(kernel_initializer)
        self.recurrent_initializer = init_lib.get(recurrent_initializer)
        self.bias_initializer = init_lib.get(bias_initializer)
        self.kernel_regularizer = reg_lib.get(kernel_regularizer)
        self.recurrent_regularizer = reg_lib.get(recurrent_regularizer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.input_spec = InputSpec(ndim=self._input_ndim)
        self._buffers: dict[str, np.ndarray] = {}
        self._cache: Any = None  # what the last forward left for backward
        self._weight_copies: dict[str, np.ndarray] = {}  # rearranged weights, per forward
        self._has_initial_state = False
        self._shapes: tuple[Shape, Shape] | None = None  # (output, state) of the last forward

    # ------------------------------------------------------------------ shapes and weights

    @property
    def _gate_width(self) -> int:
        return self._gate_count * self.units

    @property
    def _keeps_pre_activations(self) -> bool:
        recurrent = getattr(self, "recurrent_activation", None)
        return self.activation.uses_input or (recurrent is not None and recurrent.uses_input)

    def _kernel_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[-1], self._gate_width)

    def _recurrent_kernel_shape(self) -> Shape:
        return (self.units, self._gate_width)

    def _state_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.units)

    def _add_bias(self) -> None:
        self.add_weight("bias", (self._gate_width,), self.bias_initializer)

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        if input_shape[-1] is None:
            raise ValueError(f"{self._label()}: the number of input features must be known")
        self.add_weight(
            "kernel",
            self._kernel_shape(input_shape),
            self.kernel_initializer,
            self.kernel_regularizer,
        )
        self.add_weight(
            "recurrent_kernel",
            self._recurrent_kernel_shape(),
            self.recurrent_initializer,
            self.recurrent_regularizer,
        )
        if self.use_bias:
            self._add_bias()
        self.input_spec = InputSpec(ndim=self._input_ndim, axes={-1: input_shape[-1]})
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        state = tuple(self._state_shape(tuple(input_shape)))
        y = (state[0], input_shape[1], *state[1:]) if self.return_sequences else state
        if self.return_state:
            return [y, *[state] * len(self._state_names)]
        return y

    def _buffer(self, name: str, shape: Shape) -> np.ndarray:
        """Workspace ``name`` of ``shape`` in the layer dtype, reused while both stay the same.

        Workspaces hold one call's intermediate values; they are never handed to callers
        (outputs and gradients are fresh arrays), so reusing them is invisible outside.
        """
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != self.dtype:
            buffer = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buffer

    # ------------------------------------------------------------------ forward and backward

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[np.ndarray] | None = None,
        mask: Any = None,
        training: bool = False,
    ) -> np.ndarray | list[np.ndarray]:
        x = self._prepare(x)
        if x.shape[1] == 0:
            raise ValueError(f"{self._label()}: needs at least one time step, got {x.shape}")
        states = self._initial_states(initial_state, self._state_shape(x.shape))
        mask_tm = self._time_major_mask(mask, x.shape, states[0].ndim)
        x_tm = x.swapaxes(0, 1)
        x_tm = np.ascontiguousarray(x_tm[::-1] if self.go_backwards else x_tm)
        self._weight_copies.clear()  # the parameters may have changed since the last call
        hidden, final_states = self._run(x_tm, states, mask_tm)
        y = np.ascontiguousarray(hidden.swapaxes(0, 1)) if self.return_sequences else hidden[-1]
        y = y.copy() if y.base is not None else y  # never hand out a workspace
        self._has_initial_state = initial_state is not None
        self._shapes = (y.shape, final_states[0].shape)
        if self.return_state:
            return [y, *(state.copy() for state in final_states)]
        return y

    def backward(self, dy: Any) -> np.ndarray | list[np.ndarray]:
        self._require_forward(self._shapes)
        dy, state_grads = self._split_output_gradients(dy)
        dy_seq = None
        if self.return_sequences:
            dy_seq = None if dy is None else dy.swapaxes(0, 1)  # time-major view
        elif dy is not None:  # the output is h_T itself
            state_grads[0] = dy if state_grads[0] is None else dy + state_grads[0]
        dx_tm, initial_grads = self._backprop(dy_seq, state_grads)
        self._add_regularization_gradients()
        if dx_tm is None:  # the first layer of a training step: nothing needs dL/dx
            dx = None
        else:
            dx = np.ascontiguousarray((dx_tm[::-1] if self.go_backwards else dx_tm).swapaxes(0, 1))
        if self._has_initial_state:
            return [dx, *initial_grads]
        return dx

    def compute_mask(self, x: Any, mask: Any = None) -> np.ndarray | None:
        """The mask of the output: the input's ``(N, T)`` with ``return_sequences``, else None.

        In processing order, like the sequence output (flipped for ``go_backwards``; Keras
        passes the input's mask on unflipped).
        """
        if mask is None or not self.return_sequences:
            return None
        mask = np.asarray(mask, dtype=bool)
        return mask[:, ::-1] if self.go_backwards else mask

    def _time_major_mask(self, mask: Any, x_shape: Shape, state_ndim: int) -> np.ndarray | None:
        """``mask (N, T)`` as a boolean ``(T, N, 1, ..., 1)`` in processing order, or None.

        True where the step is taken; it broadcasts against states ``(N, ..., H)``.
        """
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            if mask.dtype.kind not in "biuf":
                raise ValueError(
                    f"{self._label()}: mask must be boolean (True = take the step), "
                    f"got dtype {mask.dtype}"
                )
            mask = mask != 0
        if mask.shape != tuple(x_shape[:2]):
            raise ValueError(
                f"{self._label()}: mask must have shape (N, T) = {format_shape(x_shape[:2])}, "
                f"got {format_shape(mask.shape)}"
            )
        mask_tm = mask.T[::-1] if self.go_backwards else mask.T
        return np.ascontiguousarray(mask_tm).reshape(*mask_tm.shape, *(1,) * (state_ndim - 1))

    def _run(
        self, x_tm: np.ndarray, states: list[np.ndarray], mask_tm: np.ndarray | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        raise NotImplementedError

    def _backprop(
        self, dy_seq: np.ndarray | None, state_grads: list[np.ndarray | None]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        raise NotImplementedError

    def _initial_states(self, initial_state: Any, shape: Shape) -> list[np.ndarray]:
        """Validated initial states in the layer dtype (zeros when none are given)."""
        names = "[" + ", ".join(f"{name}0" for name in self._state_names) + "]"
        count = len(self._state_names)
        if initial_state is None:
            return [np.zeros(shape, dtype=self.dtype) for _ in range(count)]
        if not isinstance(initial_state, (list, tuple)):
            raise ValueError(
                f"{self._label()}: initial_state must be a list of arrays {names}, "
                f"got {type(initial_state).__name__}"
            )
        if len(initial_state) != count:
            raise ValueError(
                f"{self._label()}: initial_state needs {count} array(s) {names}, "
                f"got {len(initial_state)}"
            )
        states = [np.asarray(state, dtype=self.dtype) for state in initial_state]
        for name, state in zip(self._state_names, states, strict=True):
            if state.shape != tuple(shape):
                raise ValueError(
                    f"{self._label()}: initial state {name}0 must have shape "
                    f"{format_shape(shape)}, got {format_shape(state.shape)}"
                )
        return states

    def _split_output_gradients(self, dy: Any) -> tuple[np.ndarray | None, list[Any]]:
        """``dy`` for the output and one gradient (or None) per final state, shape-checked."""
        y_shape, state_shape = self._shapes
        if not self.return_state:
            return self._check_gradient_shape(dy, y_shape), [None] * len(self._state_names)
        names = ", ".join(f"d{name}_T" for name in self._state_names)
        if not isinstance(dy, (list, tuple)) or len(dy) != 1 + len(self._state_names):
            raise ValueError(
                f"{self._label()}: with return_state, backward expects the list [dy, {names}] "
                f"(None for zero), got {type(dy).__name__}"
                + (f" of length {len(dy)}" if isinstance(dy, (list, tuple)) else "")
            )
        grads = [
            None if g is None else self._check_gradient_shape(g, shape)
            for g, shape in zip(dy, (y_shape, *[state_shape] * len(self._state_names)), strict=True)
        ]
        return grads[0], grads[1:]

    # ------------------------------------------------------------------ the linear-map hooks

    def _gate_major(self, key: str) -> np.ndarray:
        """``params[key] (rows, G H)`` as a contiguous ``(G, rows, H)``, once per forward.

        ``"kernel"`` gets the input bias appended as a last row (see _input_projection).
        """
        weight = self._weight_copies.get(key)
        if weight is None:
            value = self.params[key]
            if key == "kernel" and self.use_bias:
                value = np.concatenate([value, self._input_bias()[None]])
            weight = value.reshape(value.shape[0], self._gate_count, self.units).swapaxes(0, 1)
            weight = self._weight_copies[key] = np.ascontiguousarray(weight)
        return weight

    def _input_bias(self) -> np.ndarray:
        """The bias added to the input projection, ``(G H,)``."""
        return self.params["bias"]

    def _input_projection(self, x_tm: np.ndarray) -> np.ndarray:
        z = self._buffer("input_projection", (self._gate_count, *x_tm.shape[:-1], self.units))
        x_rows = ops.as_matrix(x_tm)
        if self.use_bias:
            # [x, 1] @ [W; b]: the bias rides along in the product (adding a (G, 1, H) bias
            # to (G, T N, H) afterwards runs numpy's loop H elements at a time, 5x slower)
            features = x_rows.shape[1]
            augmented = self._buffer("input_with_ones", (len(x_rows), features + 1))
            augmented[:, :features] = x_rows
            augmented[:, features] = 1.0
            x_rows = augmented
        ops.matmul(
            x_rows, self._gate_major("kernel"), out=z.reshape(self._gate_count, -1, self.units)
        )
        return z

    def _recurrent_product(self, h: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.matmul(h, self._gate_major("recurrent_kernel"), out=out)

    def _recurrent_input_grad(self, dz: np.ndarray, out: np.ndarray) -> np.ndarray:
        kernel_t = self._weight_copies.get("recurrent_kernel_t")
        if kernel_t is None:  # BLAS is faster on a contiguous U^T
            kernel_t = np.ascontiguousarray(self.params["recurrent_kernel"].T)
            self._weight_copies["recurrent_kernel_t"] = kernel_t
        return np.matmul(dz, kernel_t, out=out)

    def _parameter_and_input_grads(
        self,
        x_tm: np.ndarray,
        h_prev: np.ndarray,
        dz: np.ndarray,
        dz_recurrent: np.ndarray | None = None,
    ) -> np.ndarray:
        x_rows, dz_rows = ops.as_matrix(x_tm), ops.as_matrix(dz)
        dz_recurrent_rows = dz_rows if dz_recurrent is None else ops.as_matrix(dz_recurrent)
        np.matmul(x_rows.T, dz_rows, out=self.grads["kernel"])
        np.matmul(ops.as_matrix(h_prev).T, dz_recurrent_rows, out=self.grads["recurrent_kernel"])
        if self.use_bias:
            self._bias_gradient(dz_rows, dz_recurrent_rows)
        if not self.needs_input_grad:
            return None
        return ops.matmul(dz_rows, self.params["kernel"].T).reshape(x_tm.shape)

    def _bias_gradient(self, dz_rows: np.ndarray, dz_recurrent_rows: np.ndarray) -> None:
        ops.sum_rows(dz_rows, out=self.grads["bias"])

    # ------------------------------------------------------------------ configuration

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": act_lib.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": init_lib.serialize(self.kernel_initializer),
            "recurrent_initializer": init_lib.serialize(self.recurrent_initializer),
            "bias_initializer": init_lib.serialize(self.bias_initializer),
            "kernel_regularizer": reg_lib.serialize(self.kernel_regularizer),
            "recurrent_regularizer": reg_lib.serialize(self.recurrent_regularizer),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
        }


# --------------------------------------------------------------------------- RNN


class RNN(RecurrentLayer):
    """Fully connected recurrent layer, Keras' ``SimpleRNN``: ``h_t = φ(x_t W + h_{t-1} U + b)``.

    Shapes: ``x (N, T, F)``, ``kernel (F, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``,
    states ``(N, H)``; outputs and the calling convention are described in
    :mod:`tradenn.nn.recurrent`.

    Forward, for t = 1..T (``h_0`` the initial state, zeros by default)::

        z_t = x_t W + h_{t-1} U + b          h_t = φ(z_t)

    Backward through time, ``dh_T`` from the output (and ``return_state``)::

        dz_t = φ'(z_t) * dh_t                dh_{t-1} = dy_{t-1} + dz_t U^T
        dW = Σ_t x_t^T dz_t     dU = Σ_t h_{t-1}^T dz_t     db = Σ_t sum_rows dz_t
        dx_t = dz_t W^T

    Parameters
    ----------
    units : int
        Size ``H`` of the hidden state.
    activation : str or ActivationFunction
        ``φ``, elementwise (default ``tanh``).
    use_bias : bool
        Whether to add ``bias``.
    kernel_initializer, recurrent_initializer, bias_initializer
        Keras defaults: ``glorot_uniform``, ``orthogonal``, ``zeros``.
    kernel_regularizer, recurrent_regularizer
        Optional penalties on ``kernel`` and ``recurrent_kernel``.
    return_sequences, return_state, go_backwards : bool
        As in Keras (see :mod:`tradenn.nn.recurrent`).

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """

    def _run(self, x_tm, states, mask_tm):
        (h0,) = states
        z = self._input_projection(x_tm)  # (1, T, N, H); keeps the pre-activations
        steps = z.shape[1]
        hidden = self._buffer("hidden", (steps + 1, *h0.shape))
        recurrent = self._buffer("recurrent_product", (1, *h0.shape))
        skipped = None if mask_tm is None else ~mask_tm
        hidden[0] = h0
        for t in range(steps):  # h_t needs h_{t-1}: the only sequential part
            z_t = z[:, t]
            z_t += self._recurrent_product(hidden[t], recurrent)
            self.activation.forward(z_t[0], out=hidden[t + 1])
            if skipped is not None:  # masked step: h_t = h_{t-1}
                np.copyto(hidden[t + 1], hidden[t], where=skipped[t])
        self._cache = (x_tm, hidden, z, mask_tm)
        return hidden[1:], [hidden[-1]]

    def _backprop(self, dy_seq, state_grads):
        x_tm, hidden, z, mask_tm = self._cache
        steps = len(hidden) - 1
        slope = self.activation.backward(np.ones_like(z[0]), z[0], hidden[1:])  # φ'(z_t), all t
        dz = self._buffer("dz", z.shape[1:])  # one gate: channels-last is gate-major
        dh_buffer = self._buffer("dh", hidden.shape[1:])
        if mask_tm is not None:
            keep, skip = _mask_weights(mask_tm, self.dtype)
            carry = self._buffer("dh_carried", dh_buffer.shape)  # skip * dh_t, to h_{t-1}
        for t in range(steps - 1, -1, -1):  # carries dh only
            if t == steps - 1:
                dh = _assign(dh_buffer, state_grads[0])
            else:
                dh = self._recurrent_input_grad(dz[t + 1], dh_buffer)
                if mask_tm is not None:
                    dh += carry
            if dy_seq is not None:
                dh += dy_seq[t]
            if mask_tm is not None:
                np.multiply(dh, skip[t], out=carry)
                dh *= keep[t]
            np.multiply(dh, slope[t], out=dz[t])
        initial_grads = None
        if self._has_initial_state:
            dh0 = self._recurrent_input_grad(dz[0], np.empty_like(dh_buffer))
            if mask_tm is not None:
                dh0 += carry
            initial_grads = [dh0]
        return self._parameter_and_input_grads(x_tm, hidden[:-1], dz), initial_grads


class SimpleRNN(RNN):
    """Keras' name for :class:`RNN`: the same layer, saved and loaded under this name."""


# --------------------------------------------------------------------------- LSTM


class LSTMCore(RecurrentLayer, register=False):
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
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            **kwargs,
        )
        self.recurrent_activation = _elementwise(
            recurrent_activation, "recurrent_activation", self._label()
        )
        self.unit_forget_bias = bool(unit_forget_bias)

    def _add_bias(self) -> None:
        bias = self.add_weight("bias", (self._gate_width,), self.bias_initializer)
        if self.unit_forget_bias:  # Keras: start with the forget gate open
            bias[self.units : 2 * self.units] = 1.0

    def _run(self, x_tm, states, mask_tm):
        h0, c0 = states
        z = self._input_projection(x_tm)  # (4, T, N, ..., H); becomes the activated gates
        steps = z.shape[1]
        hidden = self._buffer("hidden", (steps + 1, *h0.shape))
        cell = self._buffer("cell", (steps + 1, *h0.shape))
        act_cell = self._buffer("activated_cell", (steps, *h0.shape))
        recurrent = self._buffer("recurrent_product", (4, *h0.shape))
        pre = self._buffer("pre_activations", z.shape) if self._keeps_pre_activations else None
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
        self._cache = (x_tm, hidden, cache, mask_tm)
        return hidden[1:], [hidden[-1], cell[-1]]

    def _backprop(self, dy_seq, state_grads):
        x_tm, hidden, cache, mask_tm = self._cache
        steps, state_shape = cache.gates.shape[1], hidden.shape[1:]
        factors = lstm_backward_factors(
            cache,
            self.activation,
            self.recurrent_activation,
            out=self._buffer("backward_factors", (6, steps, *state_shape)),
        )
        dz_step = self._buffer("dz_step", (4, *state_shape))  # gate-major, one step
        dz = self._buffer("dz", (steps, *state_shape[:-1], 4 * self.units))  # channels-last
        dz_gates = gates_first(dz, 4)  # the same memory, gate-major (4, T, N, ..., H)
        dh_buffer = self._buffer("dh", state_shape)
        dc = _assign(self._buffer("dc", state_shape), state_grads[1])
        if mask_tm is not None:  # the parts of dh_t, dc_t that go straight to t-1
            keep, skip = _mask_weights(mask_tm, self.dtype)
            carry_h = self._buffer("dh_carried", state_shape)
            carry_c = self._buffer("dc_carried", state_shape)
        for t in range(steps - 1, -1, -1):  # carries dh and dc only
            if t == steps - 1:
                dh = _assign(dh_buffer, state_grads[0])
            else:
                dh = self._recurrent_input_grad(dz[t + 1], dh_buffer)
                if mask_tm is not None:
                    dh += carry_h
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
            dh0 = self._recurrent_input_grad(dz[0], np.empty_like(dh_buffer))
            if mask_tm is not None:
                dh0 += carry_h
            initial_grads = [dh0, dc.copy()]
        return self._parameter_and_input_grads(x_tm, hidden[:-1], dz), initial_grads

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "recurrent_activation": act_lib.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


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
    use_bias : bool
        Whether to add ``bias``.
    kernel_initializer, recurrent_initializer, bias_initializer
        Keras defaults: ``glorot_uniform``, ``orthogonal``, ``zeros``.
    unit_forget_bias : bool
        Start the forget-gate bias at 1 (Keras default, Jozefowicz et al. 2015).
    kernel_regularizer, recurrent_regularizer
        Optional penalties on ``kernel`` and ``recurrent_kernel``.
    return_sequences, return_state, go_backwards : bool
        As in Keras (see :mod:`tradenn.nn.recurrent`).

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """


# --------------------------------------------------------------------------- GRU


class GRU(RecurrentLayer):
    """Gated recurrent unit (Cho et al., 2014), Keras 3 layout, both of Keras' variants.

    Shapes: ``x (N, T, F)``, ``kernel (F, 3H)``, ``recurrent_kernel (H, 3H)``, gate order
    ``z, r, h``; ``bias (2, 3H)`` (input row ``b_x``, recurrent row ``b_h``) with
    ``reset_after=True``, ``bias (3H,)`` with ``reset_after=False``; state ``h (N, H)``;
    outputs and the calling convention are described in :mod:`tradenn.nn.recurrent`.

    Forward, for t = 1..T, with ``σ = recurrent_activation`` (sigmoid), ``φ = activation``
    (tanh) and ``U = [U_z, U_r, U_h]``. ``reset_after=True`` (Keras 3's default, the
    cuDNN variant) applies the reset gate after the recurrent product::

        [a_z, a_r, a_h] = x_t W + b_x           [u_z, u_r, u_h] = h_{t-1} U + b_h
        z = σ(a_z + u_z)     r = σ(a_r + u_r)     h~ = φ(a_h + r * u_h)
        h_t = z * h_{t-1} + (1 - z) * h~

    ``reset_after=False`` (the original formulation) applies it to the state first, so the
    candidate's recurrent product waits for ``r``::

        [a_z, a_r, a_h] = x_t W + b             [u_z, u_r] = h_{t-1} [U_z, U_r]
        z = σ(a_z + u_z)     r = σ(a_r + u_r)     h~ = φ(a_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * h~

    Backward through time, carrying ``dh``; with ``reset_after=True``::

        dp_h = dh_t (1 - z) φ'        dp_z = dh_t (h_{t-1} - h~) σ'(z)
        dp_r = dp_h u_h σ'(r)         du_h = dp_h r
        dh_{t-1} = dy_{t-1} + dh_t z + [dp_z, dp_r, du_h] U^T
        dW = Σ_t x_t^T [dp_z, dp_r, dp_h]       dU = Σ_t h_{t-1}^T [dp_z, dp_r, du_h]
        db_x = Σ sum_rows [dp_z, dp_r, dp_h]    db_h = Σ sum_rows [dp_z, dp_r, du_h]
        dx_t = [dp_z, dp_r, dp_h] W^T

    and with ``reset_after=False`` (``s = r * h_{t-1}``, the reset state)::

        dp_h = dh_t (1 - z) φ'        dp_z = dh_t (h_{t-1} - h~) σ'(z)
        ds = dp_h U_h^T               dp_r = ds h_{t-1} σ'(r)
        dh_{t-1} = dy_{t-1} + dh_t z + ds r + [dp_z, dp_r] [U_z, U_r]^T
        dW = Σ_t x_t^T [dp_z, dp_r, dp_h]       db = Σ sum_rows [dp_z, dp_r, dp_h]
        d[U_z, U_r] = Σ_t h_{t-1}^T [dp_z, dp_r]     dU_h = Σ_t s_t^T dp_h
        dx_t = [dp_z, dp_r, dp_h] W^T

    Parameters
    ----------
    units : int
        Size ``H`` of the hidden state.
    activation, recurrent_activation : str or ActivationFunction
        ``φ`` (default ``tanh``) and the gates' ``σ`` (default ``sigmoid``), elementwise.
    use_bias : bool
        Whether to add the bias.
    kernel_initializer, recurrent_initializer, bias_initializer
        Keras defaults: ``glorot_uniform``, ``orthogonal``, ``zeros``.
    kernel_regularizer, recurrent_regularizer
        Optional penalties on ``kernel`` and ``recurrent_kernel``.
    return_sequences, return_state, go_backwards : bool
        As in Keras (see :mod:`tradenn.nn.recurrent`).
    reset_after : bool
        Which of the two formulas above (Keras 3's default True). The two are different
        models: weights trained with one do not fit the other.

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """

    _gate_count = 3

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            **kwargs,
        )
        self.recurrent_activation = _elementwise(
            recurrent_activation, "recurrent_activation", self._label()
        )
        self.reset_after = bool(reset_after)

    def _add_bias(self) -> None:
        shape = (2, self._gate_width) if self.reset_after else (self._gate_width,)
        self.add_weight("bias", shape, self.bias_initializer)

    def _input_bias(self) -> np.ndarray:
        if not self.reset_after:
            return self.params["bias"]
        # b_hz and b_hr only ever add to a_z and a_r, so they join the input projection;
        # b_hh stays inside r * u_h
        bias = self.params["bias"]
        folded = bias[0].copy()
        folded[: 2 * self.units] += bias[1, : 2 * self.units]
        return folded

    def _bias_gradient(self, dz_rows: np.ndarray, dz_recurrent_rows: np.ndarray) -> None:
        if not self.reset_after:
            ops.sum_rows(dz_rows, out=self.grads["bias"])
            return
        ops.sum_rows(dz_rows, out=self.grads["bias"][0])
        ops.sum_rows(dz_recurrent_rows, out=self.grads["bias"][1])

    def _run(self, x_tm, states, mask_tm):
        if not self.reset_after:
            return self._run_reset_before(x_tm, states, mask_tm)
        (h0,) = states
        gates = self._input_projection(x_tm)  # (3, T, N, H); becomes z, r, h~
        steps = gates.shape[1]
        recurrent = self._buffer("recurrent_products", gates.shape)  # u_t, kept for backward
        hidden = self._buffer("hidden", (steps + 1, *h0.shape))
        scratch = self._buffer("scratch", h0.shape)
        pre = self._buffer("pre_activations", gates.shape) if self._keeps_pre_activations else None
        recurrent_bias = self.params["bias"][1, 2 * self.units :] if self.use_bias else None
        activation, recurrent_activation = self.activation, self.recurrent_activation
        skipped = None if mask_tm is None else ~mask_tm
        hidden[0] = h0
        for t in range(steps):  # h_t needs h_{t-1}: the only sequential part
            g, u = gates[:, t], recurrent[:, t]
            product = self._recurrent_product(hidden[t], u)
            if product is not u:  # the backward pass reads u_t from the stack
                np.copyto(u, product)
            zr, candidate = g[:2], g[2]
            zr += u[:2]
            if recurrent_bias is not None:
                u[2] += recurrent_bias
            if pre is not None:
                pre[:2, t] = zr
            recurrent_activation.forward(zr, out=zr)
            np.multiply(g[1], u[2], out=scratch)  # r * u_h
            candidate += scratch
            if pre is not None:
                pre[2, t] = candidate
            activation.forward(candidate, out=candidate)
            np.subtract(hidden[t], candidate, out=scratch)  # h = h~ + z (h_{t-1} - h~)
            scratch *= g[0]
            np.add(candidate, scratch, out=hidden[t + 1])
            if skipped is not None:  # masked step: h_t = h_{t-1}
                np.copyto(hidden[t + 1], hidden[t], where=skipped[t])
        self._cache = (x_tm, hidden, gates, recurrent, pre, mask_tm)
        return hidden[1:], [hidden[-1]]

    def _run_reset_before(self, x_tm, states, mask_tm):
        """The time loop of ``reset_after=False``: two products per step, ``r`` between them."""
        (h0,) = states
        gates = self._input_projection(x_tm)  # (3, T, N, H); becomes z, r, h~
        steps = gates.shape[1]
        hidden = self._buffer("hidden", (steps + 1, *h0.shape))
        reset_hidden = self._buffer("reset_hidden", (steps, *h0.shape))  # s_t = r * h_{t-1}
        gate_products = self._buffer("gate_products", (2, *h0.shape))
        scratch = self._buffer("scratch", h0.shape)
        pre = self._buffer("pre_activations", gates.shape) if self._keeps_pre_activations else None
        kernel = self._gate_major("recurrent_kernel")  # (3, H, H): U_z, U_r, U_h
        activation, recurrent_activation = self.activation, self.recurrent_activation
        skipped = None if mask_tm is None else ~mask_tm
        hidden[0] = h0
        for t in range(steps):  # h_t needs h_{t-1}: the only sequential part
            g = gates[:, t]
            zr, candidate = g[:2], g[2]
            zr += np.matmul(hidden[t], kernel[:2], out=gate_products)
            if pre is not None:
                pre[:2, t] = zr
            recurrent_activation.forward(zr, out=zr)
            np.multiply(g[1], hidden[t], out=reset_hidden[t])
            candidate += np.matmul(reset_hidden[t], kernel[2], out=scratch)
            if pre is not None:
                pre[2, t] = candidate
            activation.forward(candidate, out=candidate)
            np.subtract(hidden[t], candidate, out=scratch)  # h = h~ + z (h_{t-1} - h~)
            scratch *= g[0]
            np.add(candidate, scratch, out=hidden[t + 1])
            if skipped is not None:  # masked step: h_t = h_{t-1}
                np.copyto(hidden[t + 1], hidden[t], where=skipped[t])
        self._cache = (x_tm, hidden, gates, reset_hidden, pre, mask_tm)
        return hidden[1:], [hidden[-1]]

    def _backward_factors(self) -> np.ndarray:
        """``[(1 - z) φ', (h_prev - h~) σ'(z), v σ'(r), r, z]`` for all steps, (5, T, N, H).

        ``v`` is what ``r`` multiplies: ``u_h`` with ``reset_after``, else ``h_{t-1}``. The
        loop then needs two broadcast products per step:
        ``[dp_h, dp_z] = dh * factors[0:2]`` and ``[dp_r, du_h] = dp_h * factors[2:4]``
        (``reset_after``; without it ``dp_r = ds * factors[2]``).
        """
        _, hidden, gates, recurrent, pre, _ = self._cache
        z, r, candidate = gates
        p_z, p_r, p_h = (None,) * 3 if pre is None else pre
        reset_input = recurrent[2] if self.reset_after else hidden[:-1]
        factors = self._buffer("backward_factors", (5, *z.shape))
        factors[0] = self.activation.backward(1.0 - z, p_h, candidate)
        factors[1] = self.recurrent_activation.backward(hidden[:-1] - candidate, p_z, z)
        factors[2] = self.recurrent_activation.backward(reset_input, p_r, r)
        factors[3] = r
        factors[4] = z
        return factors

    def _backprop(self, dy_seq, state_grads):
        if not self.reset_after:
            return self._backprop_reset_before(dy_seq, state_grads)
        x_tm, hidden, gates, _, _, mask_tm = self._cache
        units, steps, state_shape = self.units, gates.shape[1], hidden.shape[1:]
        factors = self._backward_factors()
        # one step's [dp_h, dp_z, dp_r, du_h], gate-major: adjacent pairs for the broadcast
        # products; the last three are the recurrent-side gradient in U's order z, r, h
        grads = self._buffer("dz_step", (4, *state_shape))
        dz_recurrent = self._buffer("dz_recurrent", (steps, *state_shape[:-1], 3 * units))
        dz_recurrent_gates = gates_first(dz_recurrent, 3)
        dp_h = self._buffer("dp_h", hidden[1:].shape)
        dh = _assign(self._buffer("dh", state_shape), state_grads[0])
        dh_recurrent = self._buffer("dh_recurrent", state_shape)
        if mask_tm is not None:
            keep, skip = _mask_weights(mask_tm, self.dtype)
            carry = self._buffer("dh_carried", state_shape)  # skip * dh_t, to h_{t-1}
        for t in range(steps - 1, -1, -1):  # carries dh only
            if t < steps - 1:
                dh *= factors[4, t + 1]  # through h_{t+1} = z h_t + ...
                dh += self._recurrent_input_grad(dz_recurrent[t + 1], dh_recurrent)
                if mask_tm is not None:
                    dh += carry
            if dy_seq is not None:
                dh += dy_seq[t]
            if mask_tm is not None:
                np.multiply(dh, skip[t], out=carry)
                dh *= keep[t]
            np.multiply(dh, factors[0:2, t], out=grads[0:2])
            np.multiply(grads[0], factors[2:4, t], out=grads[2:4])
            np.copyto(dz_recurrent_gates[:, t], grads[1:])
            np.copyto(dp_h[t], grads[0])
        initial_grads = None
        if self._has_initial_state:
            dh0 = self._recurrent_input_grad(dz_recurrent[0], np.empty_like(dh))
            dh0 += dh * factors[4, 0]
            if mask_tm is not None:
                dh0 += carry
            initial_grads = [dh0]
        dz_input = self._buffer("dz_input", dz_recurrent.shape)  # [dp_z, dp_r, dp_h]
        np.copyto(dz_input, dz_recurrent)
        dz_input[..., 2 * units :] = dp_h
        dx_tm = self._parameter_and_input_grads(x_tm, hidden[:-1], dz_input, dz_recurrent)
        return dx_tm, initial_grads

    def _backprop_reset_before(self, dy_seq, state_grads):
        """BPTT for ``reset_after=False``; each iteration ends with dL/dh_{t-1} in ``dh``."""
        x_tm, hidden, gates, reset_hidden, _, mask_tm = self._cache
        units, steps, state_shape = self.units, gates.shape[1], hidden.shape[1:]
        factors = self._backward_factors()
        kernel_zr_t, kernel_h_t = self._reset_before_kernels_t()
        grads = self._buffer("dz_step", (2, *state_shape))  # [dp_h, dp_z]
        dz = self._buffer("dz", (steps, *state_shape[:-1], 3 * units))  # [dp_z, dp_r, dp_h]
        dz_gates = gates_first(dz, 3)
        d_reset = self._buffer("d_reset_hidden", state_shape)
        dh_recurrent = self._buffer("dh_recurrent", state_shape)
        dh = _assign(self._buffer("dh", state_shape), state_grads[0])
        if mask_tm is not None:
            keep, skip = _mask_weights(mask_tm, self.dtype)
            carry = self._buffer("dh_carried", state_shape)  # skip * dh_t, to h_{t-1}
        for t in range(steps - 1, -1, -1):  # carries dh only
            if dy_seq is not None:
                dh += dy_seq[t]
            if mask_tm is not None:
                np.multiply(dh, skip[t], out=carry)
                dh *= keep[t]
            np.multiply(dh, factors[0:2, t], out=grads)
            np.matmul(grads[0], kernel_h_t, out=d_reset)  # ds = dp_h U_h^T
            np.multiply(d_reset, factors[2, t], out=dz_gates[1, t])  # dp_r
            np.copyto(dz_gates[0, t], grads[1])
            np.copyto(dz_gates[2, t], grads[0])
            dh *= factors[4, t]  # dh_{t-1} = dh z + ds r + [dp_z, dp_r] [U_z, U_r]^T
            d_reset *= factors[3, t]
            dh += d_reset
            dh += np.matmul(dz[t, ..., : 2 * units], kernel_zr_t, out=dh_recurrent)
            if mask_tm is not None:
                dh += carry
        initial_grads = [dh.copy()] if self._has_initial_state else None
        x_rows, dz_rows = ops.as_matrix(x_tm), ops.as_matrix(dz)
        np.matmul(x_rows.T, dz_rows, out=self.grads["kernel"])
        d_recurrent = self.grads["recurrent_kernel"]
        d_recurrent[:, : 2 * units] = ops.as_matrix(hidden[:-1]).T @ dz_rows[:, : 2 * units]
        d_recurrent[:, 2 * units :] = ops.as_matrix(reset_hidden).T @ dz_rows[:, 2 * units :]
        if self.use_bias:
            self._bias_gradient(dz_rows, dz_rows)
        if not self.needs_input_grad:
            return None, initial_grads
        return ops.matmul(dz_rows, self.params["kernel"].T).reshape(x_tm.shape), initial_grads

    def _reset_before_kernels_t(self) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous ``[U_z, U_r]^T (2H, H)`` and ``U_h^T (H, H)``, once per forward."""
        if "recurrent_kernel_h_t" not in self._weight_copies:  # BLAS prefers contiguous
            kernel, units = self.params["recurrent_kernel"], self.units
            copies = self._weight_copies
            copies["recurrent_kernel_zr_t"] = np.ascontiguousarray(kernel[:, : 2 * units].T)
            copies["recurrent_kernel_h_t"] = np.ascontiguousarray(kernel[:, 2 * units :].T)
        return self._weight_copies["recurrent_kernel_zr_t"], self._weight_copies[
            "recurrent_kernel_h_t"
        ]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "recurrent_activation": act_lib.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }


# --------------------------------------------------------------------------- Bidirectional

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer over the sequence in both directions and merges the outputs.

    ``layer`` is the forward layer; the backward layer is a copy made from its config (new
    name ``backward_<name>``, ``go_backwards`` flipped, its own weights) unless
    ``backward_layer`` is given. Both read the same input; with ``return_sequences`` the
    backward output is flipped back in time, so both outputs at index t belong to input
    step t. Merging (``y_f``, ``y_b`` the two outputs)::

        concat  y = [y_f, y_b] on the last axis      dy_f, dy_b = the two halves of dy
        sum     y = y_f + y_b                        dy_f = dy_b = dy
        mul     y = y_f * y_b                        dy_f = dy * y_b,  dy_b = dy * y_f
        ave     y = (y_f + y_b) / 2                  dy_f = dy_b = dy / 2
        None    y = [y_f, y_b]                       dy = [dy_f, dy_b]

    and ``dx = dx_f + dx_b``. With ``return_state`` the output is ``[y, *forward_states,
    *backward_states]`` (``[y_f, y_b, ...]`` for ``merge_mode=None``) and ``backward``
    takes the matching list (entries may be None). ``initial_state`` is the list of
    forward states followed by the backward states (Keras' half/half split); ``backward``
    then returns ``[dx, *d(forward states), *d(backward states)]``. A ``mask (N, T)`` (in
    input order) goes to both layers.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The forward layer.
    merge_mode : {"concat", "sum", "mul", "ave", None}
        How the two outputs are combined.
    backward_layer : RNN, LSTM or GRU, optional
        Explicit backward layer; must have the opposite ``go_backwards`` and the same
        ``return_sequences`` and ``return_state`` as ``layer``.
    """

    def __init__(
        self,
        layer: RecurrentLayer,
        merge_mode: str | None = "concat",
        backward_layer: RecurrentLayer | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", getattr(layer, "dtype", None))
        super().__init__(**kwargs)
        if not isinstance(layer, RecurrentLayer):
            raise ValueError(
                f"{self._label()}: layer must be a recurrent layer (RNN, LSTM, GRU), got {layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"{self._label()}: merge_mode must be one of concat, sum, mul, ave or None, "
                f"got {merge_mode!r}"
            )
        if backward_layer is None:
            config = layer.get_config()
            config.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            backward_layer = type(layer).from_config(config)
        elif not isinstance(backward_layer, RecurrentLayer) or (
            backward_layer.go_backwards == layer.go_backwards
            or backward_layer.return_sequences != layer.return_sequences
            or backward_layer.return_state != layer.return_state
            or backward_layer._state_names != layer._state_names
        ):
            raise ValueError(
                f"{self._label()}: backward_layer must be a recurrent layer of the same kind "
                f"with the opposite go_backwards and the same return_sequences and return_state"
            )
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.layers = [layer, backward_layer]
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._outputs: tuple[np.ndarray, np.ndarray] | None = None
        self._has_initial_state = False

    @property
    def input_spec(self) -> InputSpec | None:
        return self.forward_layer.input_spec

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        for layer in self.layers:
            if layer.built:
                layer._check_input_shape(input_shape)
            else:
                layer.build(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        shapes = self.forward_layer.compute_output_shape(input_shape)
        y, states = (shapes[0], shapes[1:]) if self.return_state else (shapes, [])
        if self.merge_mode == "concat":
            y = (*y[:-1], 2 * y[-1])
        outputs = [y, y] if self.merge_mode is None else [y]
        if self.return_state:
            return [*outputs, *states, *states]
        return outputs if self.merge_mode is None else y

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[np.ndarray] | None = None,
        mask: Any = None,
        training: bool = False,
    ) -> np.ndarray | list[np.ndarray]:
        x = self._prepare(x)
        count = len(self.forward_layer._state_names)
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2 * count:
                raise ValueError(
                    f"{self._label()}: initial_state must be a list of {2 * count} arrays "
                    f"(the forward layer's states, then the backward layer's)"
                )
            forward_state, backward_state = list(initial_state[:count]), list(initial_state[count:])
        y_f = self.forward_layer.forward(
            x, initial_state=forward_state, mask=mask, training=training
        )
        y_b = self.backward_layer.forward(
            x, initial_state=backward_state, mask=mask, training=training
        )
        states: list[np.ndarray] = []
        if self.return_state:
            (y_f, *states_f), (y_b, *states_b) = y_f, y_b
            states = [*states_f, *states_b]
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # back to input order
        self._outputs = (y_f, y_b)
        self._has_initial_state = initial_state is not None
        if self.merge_mode is None:
            outputs = [y_f, np.ascontiguousarray(y_b)]
        elif self.merge_mode == "concat":
            outputs = [np.concatenate([y_f, y_b], axis=-1)]
        elif self.merge_mode == "mul":
            outputs = [y_f * y_b]
        else:
            y = y_f + y_b
            if self.merge_mode == "ave":
                y *= 0.5
            outputs = [y]
        if self.return_state:
            return [*outputs, *states]
        return outputs if self.merge_mode is None else outputs[0]

    def compute_mask(self, x: Any, mask: Any = None) -> np.ndarray | None:
        """The input's mask ``(N, T)`` with ``return_sequences`` (input order), else None."""
        if mask is None or not self.return_sequences:
            return None
        return np.asarray(mask, dtype=bool)

    def backward(self, dy: Any) -> np.ndarray | list[np.ndarray]:
        self._require_forward(self._outputs)
        y_f, y_b = self._outputs
        count = len(self.forward_layer._state_names)
        output_count = 2 if self.merge_mode is None else 1
        if self.merge_mode is None or self.return_state:
            expected = output_count + (2 * count if self.return_state else 0)
            if not isinstance(dy, (list, tuple)) or len(dy) != expected:
                raise ValueError(
                    f"{self._label()}: backward expects a list of {expected} gradients "
                    f"(one per output, None for zero), got {type(dy).__name__}"
                )
            output_grads, state_grads = list(dy[:output_count]), list(dy[output_count:])
        else:
            output_grads, state_grads = [dy], []
        dy_f, dy_b = self._split_merge_gradient(output_grads, y_f, y_b)
        if self.return_sequences and dy_b is not None:
            dy_b = dy_b[:, ::-1]  # the backward layer's output order
        grads_f = self._backward_through(self.forward_layer, dy_f, state_grads[:count], y_f)
        grads_b = self._backward_through(self.backward_layer, dy_b, state_grads[count:], y_b)
        if not self._has_initial_state:
            return grads_f + grads_b
        return [grads_f[0] + grads_b[0], *grads_f[1:], *grads_b[1:]]

    def _split_merge_gradient(
        self, output_grads: list[Any], y_f: np.ndarray, y_b: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.merge_mode is None:
            return tuple(
                None if g is None else self._check_gradient_shape(g, y.shape)
                for g, y in zip(output_grads, (y_f, y_b), strict=True)
            )
        if output_grads[0] is None:
            return None, None
        units = y_f.shape[-1]
        if self.merge_mode == "concat":
            dy = self._check_gradient_shape(output_grads[0], (*y_f.shape[:-1], 2 * units))
            return dy[..., :units], dy[..., units:]
        dy = self._check_gradient_shape(output_grads[0], y_f.shape)
        if self.merge_mode == "mul":
            return dy * y_b, dy * y_f
        if self.merge_mode == "ave":
            dy = dy * 0.5
        return dy, dy

    @staticmethod
    def _backward_through(
        layer: RecurrentLayer, dy: np.ndarray | None, state_grads: list[Any], y: np.ndarray
    ) -> Any:
        if layer.return_state:
            return layer.backward([dy, *state_grads])
        return layer.backward(np.zeros_like(y) if dy is None else dy)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": serialize_layer(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": serialize_layer(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = dict(config)
        layer = deserialize_layer(config.pop("layer"))
        backward_layer = config.pop("backward_layer", None)
        if backward_layer is not None:
            backward_layer = deserialize_layer(backward_layer)
        return cls(layer, backward_layer=backward_layer, **config)
