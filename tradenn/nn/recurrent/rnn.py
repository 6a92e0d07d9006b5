"""The fully connected recurrent layer, Keras' ``SimpleRNN``."""

from __future__ import annotations

import numpy as np

from .base import RecurrentLayer, SequenceCache, add_step_gradient, mask_weights

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
    use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
    kernel_regularizer, recurrent_regularizer, return_sequences, return_state, go_backwards
        As for :class:`~tradenn.nn.recurrent.RecurrentLayer` (Keras' names and defaults).

    Dropout, recurrent dropout and ``stateful`` are not implemented.
    """

    def _run(self, x_tm, states, mask_tm):
        (h0,) = states
        z = self._input_projection(x_tm)  # (1, T, N, H); keeps the pre-activations
        steps = z.shape[1]
        hidden = self._workspace("hidden", (steps + 1, *h0.shape))
        recurrent = self._workspace("recurrent_product", (1, *h0.shape))
        skipped = None if mask_tm is None else ~mask_tm
        hidden[0] = h0
        for t in range(steps):  # h_t needs h_{t-1}: the only sequential part
            z_t = z[:, t]
            z_t += self._recurrent_product(hidden[t], recurrent)
            self.activation.forward(z_t[0], out=hidden[t + 1])
            if skipped is not None:  # masked step: h_t = h_{t-1}
                np.copyto(hidden[t + 1], hidden[t], where=skipped[t])
        self._cache = SequenceCache(x_tm, hidden, mask_tm, cell=z)
        return hidden[1:], [hidden[-1]]

    def _backprop(self, dy_seq, state_grads):
        cache = self._cache
        x_tm, hidden, z, mask_tm = cache.x, cache.hidden, cache.cell, cache.mask
        steps = len(hidden) - 1
        slope = self.activation.backward(np.ones_like(z[0]), z[0], hidden[1:])  # φ'(z_t), all t
        dz = self._workspace("dz", z.shape[1:])  # one gate: channels-last is gate-major
        dh_buffer = self._workspace("dh", hidden.shape[1:])
        masking, carry = None, None
        if mask_tm is not None:  # carry: skip * dh_t, which goes straight to h_{t-1}
            carry = self._workspace("dh_carried", dh_buffer.shape)
            masking = (*mask_weights(mask_tm, self.dtype), carry)
        for t in range(steps - 1, -1, -1):  # carries dh only
            dh = self._state_gradient(t, dz, dh_buffer, state_grads[0], carry)
            add_step_gradient(dh, dy_seq, t, masking)
            np.multiply(dh, slope[t], out=dz[t])
        initial_grads = None
        if self._has_initial_state:
            initial_grads = [self._state_gradient(-1, dz, np.empty_like(dh_buffer), None, carry)]
        return self._parameter_and_input_grads(x_tm, hidden[:-1], dz), initial_grads


class SimpleRNN(RNN):
    """Keras' name for :class:`RNN`: the same layer, saved and loaded under this name."""
