"""The gated recurrent unit, in both of Keras' variants (``reset_after`` True and False)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import ops
from ..base import extends_constructor
from .base import (
    GatedRecurrentLayer,
    SequenceCache,
    add_step_gradient,
    fill_or_zero,
    gates_first,
    mask_weights,
)

# --------------------------------------------------------------------------- GRU


class GRUCache(NamedTuple):
    """A GRU's per-step values for backpropagation through time (``SequenceCache.cell``).

    gates : ndarray (3, T, N, ..., H)
        The activated gates ``z, r, h~``.
    reset_input : ndarray
        What ``r`` multiplies: the recurrent products ``u = h_{t-1} U + b_rec`` (3, T, N,
        ..., H) with ``reset_after``; ``s = r * h_{t-1}`` (T, N, ..., H) without it.
    pre : ndarray (3, T, N, ..., H) or None
        The pre-activations, kept only when an activation's derivative reads its input.
    """

    gates: np.ndarray
    reset_input: np.ndarray
    pre: np.ndarray | None


@extends_constructor(consumed=1)
class GRU(GatedRecurrentLayer):
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
    reset_after : bool
        Which of the two formulas above (Keras 3's default True). The two are different
        models: weights trained with one do not fit the other.
    use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
    kernel_regularizer, recurrent_regularizer, return_sequences, return_state, go_backwards
        As for :class:`~tradenn.nn.recurrent.RecurrentLayer` (Keras' names and defaults).

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """

    _gate_count = 3

    def __init__(self, units: int, *args: Any, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, *args, **kwargs)
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
        recurrent = self._workspace("recurrent_products", gates.shape)  # u_t, kept for backward
        hidden = self._workspace("hidden", (steps + 1, *h0.shape))
        scratch = self._workspace("scratch", h0.shape)
        pre = (
            self._workspace("pre_activations", gates.shape) if self._keeps_pre_activations else None
        )
        recurrent_bias = self.params["bias"][1, 2 * self.units :] if self.use_bias else None
        recurrent_activation = self.recurrent_activation
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
            self._step_output(g, t, hidden, scratch, pre, skipped)
        self._cache = SequenceCache(x_tm, hidden, mask_tm, GRUCache(gates, recurrent, pre))
        return hidden[1:], [hidden[-1]]

    def _run_reset_before(self, x_tm, states, mask_tm):
        """The time loop of ``reset_after=False``: two products per step, ``r`` between them."""
        (h0,) = states
        gates = self._input_projection(x_tm)  # (3, T, N, H); becomes z, r, h~
        steps = gates.shape[1]
        hidden = self._workspace("hidden", (steps + 1, *h0.shape))
        reset_hidden = self._workspace("reset_hidden", (steps, *h0.shape))  # s_t = r * h_{t-1}
        gate_products = self._workspace("gate_products", (2, *h0.shape))
        scratch = self._workspace("scratch", h0.shape)
        pre = (
            self._workspace("pre_activations", gates.shape) if self._keeps_pre_activations else None
        )
        kernel = self._gate_major("recurrent_kernel")  # (3, H, H): U_z, U_r, U_h
        recurrent_activation = self.recurrent_activation
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
            self._step_output(g, t, hidden, scratch, pre, skipped)
        self._cache = SequenceCache(x_tm, hidden, mask_tm, GRUCache(gates, reset_hidden, pre))
        return hidden[1:], [hidden[-1]]

    def _step_output(self, g, t, hidden, scratch, pre, skipped) -> None:
        """The end of step ``t`` in both variants: ``h~ = φ(g[2])`` and the new state.

        ``g (3, N, H)`` holds the activated ``z, r`` and the candidate's pre-activation,
        which becomes ``h~`` in place; ``h_t = h~ + z (h_{t-1} - h~)`` goes to
        ``hidden[t + 1]``, or ``h_{t-1}`` where the step is masked.
        """
        candidate = g[2]
        if pre is not None:
            pre[2, t] = candidate
        self.activation.forward(candidate, out=candidate)
        np.subtract(hidden[t], candidate, out=scratch)
        scratch *= g[0]
        np.add(candidate, scratch, out=hidden[t + 1])
        if skipped is not None:
            np.copyto(hidden[t + 1], hidden[t], where=skipped[t])

    def _backward_factors(self) -> np.ndarray:
        """``[(1 - z) φ', (h_prev - h~) σ'(z), v σ'(r), r, z]`` for all steps, (5, T, N, H).

        ``v`` is what ``r`` multiplies: ``u_h`` with ``reset_after``, else ``h_{t-1}``. The
        loop then needs two broadcast products per step:
        ``[dp_h, dp_z] = dh * factors[0:2]`` and ``[dp_r, du_h] = dp_h * factors[2:4]``
        (``reset_after``; without it ``dp_r = ds * factors[2]``).
        """
        hidden, (gates, recurrent, pre) = self._cache.hidden, self._cache.cell
        z, r, candidate = gates
        p_z, p_r, p_h = (None,) * 3 if pre is None else pre
        reset_input = recurrent[2] if self.reset_after else hidden[:-1]
        factors = self._workspace("backward_factors", (5, *z.shape))
        factors[0] = self.activation.backward(1.0 - z, p_h, candidate)
        factors[1] = self.recurrent_activation.backward(hidden[:-1] - candidate, p_z, z)
        factors[2] = self.recurrent_activation.backward(reset_input, p_r, r)
        factors[3] = r
        factors[4] = z
        return factors

    def _backprop(self, dy_seq, state_grads):
        if not self.reset_after:
            return self._backprop_reset_before(dy_seq, state_grads)
        x_tm, hidden, mask_tm = self._cache.x, self._cache.hidden, self._cache.mask
        gates = self._cache.cell.gates
        units, steps, state_shape = self.units, gates.shape[1], hidden.shape[1:]
        factors = self._backward_factors()
        # one step's [dp_h, dp_z, dp_r, du_h], gate-major: adjacent pairs for the broadcast
        # products; the last three are the recurrent-side gradient in U's order z, r, h
        grads = self._workspace("dz_step", (4, *state_shape))
        dz_recurrent = self._workspace("dz_recurrent", (steps, *state_shape[:-1], 3 * units))
        dz_recurrent_gates = gates_first(dz_recurrent, 3)
        dp_h = self._workspace("dp_h", hidden[1:].shape)
        dh = fill_or_zero(self._workspace("dh", state_shape), state_grads[0])
        dh_recurrent = self._workspace("dh_recurrent", state_shape)
        masking, carry = None, None
        if mask_tm is not None:  # carry: skip * dh_t, which goes straight to h_{t-1}
            carry = self._workspace("dh_carried", state_shape)
            masking = (*mask_weights(mask_tm, self.dtype), carry)
        for t in range(steps - 1, -1, -1):  # carries dh only
            if t < steps - 1:
                dh *= factors[4, t + 1]  # through h_{t+1} = z h_t + ...
                dh += self._recurrent_input_grad(dz_recurrent[t + 1], dh_recurrent)
                if carry is not None:
                    dh += carry
            add_step_gradient(dh, dy_seq, t, masking)
            np.multiply(dh, factors[0:2, t], out=grads[0:2])
            np.multiply(grads[0], factors[2:4, t], out=grads[2:4])
            np.copyto(dz_recurrent_gates[:, t], grads[1:])
            np.copyto(dp_h[t], grads[0])
        initial_grads = None
        if self._has_initial_state:
            dh0 = self._recurrent_input_grad(dz_recurrent[0], np.empty_like(dh))
            dh0 += dh * factors[4, 0]
            if carry is not None:
                dh0 += carry
            initial_grads = [dh0]
        dz_input = self._workspace("dz_input", dz_recurrent.shape)  # [dp_z, dp_r, dp_h]
        np.copyto(dz_input, dz_recurrent)
        dz_input[..., 2 * units :] = dp_h
        dx_tm = self._parameter_and_input_grads(x_tm, hidden[:-1], dz_input, dz_recurrent)
        return dx_tm, initial_grads

    def _backprop_reset_before(self, dy_seq, state_grads):
        """BPTT for ``reset_after=False``; each iteration ends with dL/dh_{t-1} in ``dh``."""
        x_tm, hidden, mask_tm = self._cache.x, self._cache.hidden, self._cache.mask
        gates, reset_hidden = self._cache.cell.gates, self._cache.cell.reset_input
        units, steps, state_shape = self.units, gates.shape[1], hidden.shape[1:]
        factors = self._backward_factors()
        kernel_zr_t, kernel_h_t = self._reset_before_kernels_t()
        grads = self._workspace("dz_step", (2, *state_shape))  # [dp_h, dp_z]
        dz = self._workspace("dz", (steps, *state_shape[:-1], 3 * units))  # [dp_z, dp_r, dp_h]
        dz_gates = gates_first(dz, 3)
        d_reset = self._workspace("d_reset_hidden", state_shape)
        dh_recurrent = self._workspace("dh_recurrent", state_shape)
        dh = fill_or_zero(self._workspace("dh", state_shape), state_grads[0])
        masking, carry = None, None
        if mask_tm is not None:  # carry: skip * dh_t, which goes straight to h_{t-1}
            carry = self._workspace("dh_carried", state_shape)
            masking = (*mask_weights(mask_tm, self.dtype), carry)
        for t in range(steps - 1, -1, -1):  # carries dh only
            add_step_gradient(dh, dy_seq, t, masking)
            np.multiply(dh, factors[0:2, t], out=grads)
            np.matmul(grads[0], kernel_h_t, out=d_reset)  # ds = dp_h U_h^T
            np.multiply(d_reset, factors[2, t], out=dz_gates[1, t])  # dp_r
            np.copyto(dz_gates[0, t], grads[1])
            np.copyto(dz_gates[2, t], grads[0])
            dh *= factors[4, t]  # dh_{t-1} = dh z + ds r + [dp_z, dp_r] [U_z, U_r]^T
            d_reset *= factors[3, t]
            dh += d_reset
            dh += np.matmul(dz[t, ..., : 2 * units], kernel_zr_t, out=dh_recurrent)
            if carry is not None:
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
        return {**super().get_config(), "reset_after": self.reset_after}
