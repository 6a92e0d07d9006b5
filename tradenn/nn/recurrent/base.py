"""The base of the recurrent layers: arguments, weights, layout, outputs and the hooks.

:class:`RecurrentLayer` does everything but the time loop (see the package docstring of
:mod:`tradenn.nn.recurrent` for the calling convention and how the work is organised) and
:class:`GatedRecurrentLayer` adds the gates' activation;
:func:`gates_first` and :func:`gates_last` convert between the gate-major and
channels-last layouts, and the small helpers below are shared by RNN, LSTM and GRU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import checks
from .. import activations as act_lib
from .. import initializers as init_lib
from .. import ops
from .. import regularizers as reg_lib
from ..base import InputSpec, Layer, Shape, extends_constructor, format_shape

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


# --------------------------------------------------------------------------- shared machinery


def elementwise_activation(
    activation: Any, argument: str, owner: str
) -> act_lib.ActivationFunction:
    """``activation`` resolved; a one-line ValueError for softmax (it is not elementwise)."""
    activation = act_lib.get(activation)
    if isinstance(activation, act_lib.Softmax):
        raise ValueError(f"{owner}: {argument} must be elementwise, got softmax")
    return activation


def fill_or_zero(buffer: np.ndarray, value: np.ndarray | None) -> np.ndarray:
    """Fill ``buffer`` with ``value``, or with zeros when ``value`` is None."""
    if value is None:
        buffer.fill(0.0)
    else:
        np.copyto(buffer, value)
    return buffer


def mask_weights(mask_tm: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, skip)``: 1.0 where a step was taken (0.0 where masked), and ``1 - keep``.

    A masked step copies its state, ``h_t = h_{t-1}``, so in the backward pass the gradient
    arriving at ``h_t`` splits into ``keep * dh_t`` for the cell (zero at a masked step)
    and ``skip * dh_t``, added straight to ``dh_{t-1}``.
    """
    keep = mask_tm.astype(dtype)
    return keep, 1.0 - keep


def add_step_gradient(
    dh: np.ndarray,
    dy_seq: np.ndarray | None,
    t: int,
    masking: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> None:
    """Add the output's gradient ``dy_t`` to ``dh`` and, with a mask, split ``dh`` in place.

    ``masking = (keep, skip, carry)`` from :func:`mask_weights` plus a buffer: ``carry``
    receives ``skip_t dh`` (it goes straight to ``h_{t-1}``) and ``dh`` keeps ``keep_t dh``
    for the cell.
    """
    if dy_seq is not None:
        dh += dy_seq[t]
    if masking is not None:
        keep, skip, carry = masking
        np.multiply(dh, skip[t], out=carry)
        dh *= keep[t]


@dataclass(frozen=True, slots=True)
class SequenceCache:
    """What a recurrent layer's forward pass leaves for backpropagation through time.

    Time-major, for states of shape ``(N, ..., H)``:

    x : ndarray (T, N, ..., F)
        The inputs.
    hidden : ndarray (T + 1, N, ..., H)
        ``h_0`` (the initial state) to ``h_T``.
    mask : ndarray (T, N) of bool, or None
        True where a step is used (a masked step carries its state over).
    cell : Any
        The cell's own per-step values: the pre-activations ``z`` for ``SimpleRNN``, an
        :class:`~tradenn.nn.recurrent.lstm.LSTMCache` for LSTMs and ConvLSTMs, a
        :class:`~tradenn.nn.recurrent.gru.GRUCache` for GRUs.
    """

    x: np.ndarray
    hidden: np.ndarray
    mask: np.ndarray | None
    cell: Any


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

    Parameters
    ----------
    units : int
        Size ``H`` of the state.
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
    **kwargs
        ``name``, ``trainable``, ``dtype``, as for :class:`~tradenn.nn.base.Layer`.

    A subclass's constructor takes only the arguments it adds as keywords and passes the
    rest on (``**kwargs``), so each shared argument has its name, default and check here.
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
        self.units = checks.positive_int(units, "units", self._label())
        self.activation = elementwise_activation(activation, "activation", self._label())
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
        self._cache: SequenceCache | None = None  # what the last forward left for backward
        self._weight_copies: dict[str, np.ndarray] = {}  # rearranged weights, per forward
        self._has_initial_state = False
        self._shapes: tuple[Shape, Shape] | None = None  # (output, state) of the last forward

    # ------------------------------------------------------------------ shapes and weights

    @property
    def _gate_width(self) -> int:
        return self._gate_count * self.units

    @property
    def _keeps_pre_activations(self) -> bool:
        """Whether the backward pass needs the pre-activations (a derivative reads them)."""
        return self.activation.uses_input

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

    def _state_gradient(
        self,
        t: int,
        dz: np.ndarray,
        out: np.ndarray,
        final_grad: np.ndarray | None,
        carry: np.ndarray | None,
    ) -> np.ndarray:
        """dL/dh_t from what comes after step t, before step t's own output gradient.

        At the last step that is the given final-state gradient (zeros for None); before
        it, ``dz_{t+1} U^T`` plus ``carry``, the part of ``dh_{t+1}`` a masked step passed
        straight on. ``t = -1`` gives the initial state's gradient. Written into ``out``.
        """
        if t == len(dz) - 1:
            return fill_or_zero(out, final_grad)
        dh = self._recurrent_input_grad(dz[t + 1], out)
        if carry is not None:
            dh += carry
        return dh

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
        z = self._workspace("input_projection", (self._gate_count, *x_tm.shape[:-1], self.units))
        x_rows = ops.as_matrix(x_tm)
        if self.use_bias:
            # [x, 1] @ [W; b]: the bias rides along in the product (adding a (G, 1, H) bias
            # to (G, T N, H) afterwards runs numpy's loop H elements at a time, 5x slower)
            features = x_rows.shape[1]
            augmented = self._workspace("input_with_ones", (len(x_rows), features + 1))
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


@extends_constructor(consumed=2)
class GatedRecurrentLayer(RecurrentLayer, register=False):
    """Base of the gated recurrent layers (LSTM, GRU, ConvLSTM): adds the gates' activation.

    Parameters
    ----------
    units, activation
        As for :class:`RecurrentLayer`.
    recurrent_activation : str or ActivationFunction
        The gates' ``σ``, elementwise (default ``sigmoid``).
    **kwargs
        The other arguments of :class:`RecurrentLayer`.

    The first three may be given by position, in this order, as in Keras.
    """

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, **kwargs)
        self.recurrent_activation = elementwise_activation(
            recurrent_activation, "recurrent_activation", self._label()
        )

    @property
    def _keeps_pre_activations(self) -> bool:
        return super()._keeps_pre_activations or self.recurrent_activation.uses_input

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "recurrent_activation": act_lib.serialize(self.recurrent_activation),
        }
