"""Plain, slow reference versions of every layer family, written to be read.

The layers in :mod:`tradenn.nn` are tuned for speed (workspaces, strided views, fused
products), which hides their maths. This module states the same maths again with none of
that: explicit loops where the maths is a recurrence or a sliding window, one equation per
line, the notation of ``docs/layers.md``. The tests check that every fast layer equals its
reference here (outputs and gradients, float64, tight tolerances) and that every reference
backward agrees with finite differences. Nothing in :mod:`tradenn.nn` imports this module.

Conventions, the same for every family:

* ``<family>_forward(x, <parameters>, <options>)`` returns the output. Parameters are plain
  arrays named and shaped as in the fast layer's ``params`` (Keras 3), so
  ``dense_forward(x, **layer.params)`` works. The recurrent family names its cell first:
  ``recurrent_forward("lstm", x, **layer.params)``.
* ``<family>_backward(dy, x, <parameters>, <options>)`` takes the upstream gradient
  ``dy = dL/dy`` and the same arguments as the forward pass (it recomputes what it needs),
  and returns ``dx`` and a dict of parameter gradients keyed like ``params``.
* Activations work on the pre-activation ``z``: ``relu_backward(dy, z) = dL/dz``.

Only numpy and the standard library are used.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- activations


def relu_forward(z: np.ndarray) -> np.ndarray:
    """``y = max(z, 0)``."""
    return np.maximum(z, 0.0)


def relu_backward(dy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``dz = dy * [z > 0]``."""
    return dy * (z > 0)


def sigmoid_forward(z: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-z))``."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_backward(dy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``dz = dy * y (1 - y)``."""
    y = sigmoid_forward(z)
    return dy * y * (1.0 - y)


def tanh_forward(z: np.ndarray) -> np.ndarray:
    """``y = tanh z``."""
    return np.tanh(z)


def tanh_backward(dy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``dz = dy * (1 - y^2)``."""
    return dy * (1.0 - np.tanh(z) ** 2)


_erf = np.vectorize(math.erf, otypes=[float])  # numpy has no erf; math.erf elementwise
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu_forward(z: np.ndarray, approximate: bool = False) -> np.ndarray:
    """Exact: ``y = z Phi(z)``, ``Phi(z) = (1 + erf(z / sqrt 2)) / 2``.

    Approximate (``gelu_tanh``): ``y = z (1 + tanh u) / 2``, ``u = sqrt(2/pi) (z + 0.044715 z^3)``.
    """
    if approximate:
        u = _SQRT_2_OVER_PI * (z + 0.044715 * z**3)
        return 0.5 * z * (1.0 + np.tanh(u))
    return z * 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def gelu_backward(dy: np.ndarray, z: np.ndarray, approximate: bool = False) -> np.ndarray:
    """Exact: ``dz = dy (Phi(z) + z phi(z))``, ``phi(z) = exp(-z^2 / 2) / sqrt(2 pi)``.

    Approximate: ``dz = dy ((1 + tanh u) / 2 + z (1 - tanh^2 u) u' / 2)``,
    ``u' = sqrt(2/pi) (1 + 3 * 0.044715 z^2)``.
    """
    if approximate:
        t = np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3))
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * z**2)
        return dy * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t**2) * du)
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    return dy * (cdf + z * pdf)


def softmax_forward(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``y_i = exp(z_i) / sum_j exp(z_j)`` along ``axis``; shifting by max z avoids overflow."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy: np.ndarray, z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``dz_i = y_i (dy_i - sum_j dy_j y_j)`` (the softmax Jacobian ``diag(y) - y y^T`` applied)."""
    y = softmax_forward(z, axis)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


# --------------------------------------------------------------------------- core layers


def dense_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``y = x W + b``: ``x (N, ..., F)``, ``kernel W (F, U)``, ``bias b (U,)``."""
    y = x @ kernel
    return y if bias is None else y + bias


def dense_backward(
    dy: np.ndarray, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``dx = dy W^T``, ``dW = x^T dy``, ``db = sum_rows dy`` (rows: every leading axis)."""
    rows, d_rows = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    grads = {"kernel": rows.T @ d_rows}
    if bias is not None:
        grads["bias"] = d_rows.sum(axis=0)
    return dy @ kernel.T, grads


def dropout_forward(x: np.ndarray, keep: np.ndarray, rate: float) -> np.ndarray:
    """Inverted dropout with a given boolean ``keep`` mask: ``y = x keep / (1 - rate)``."""
    return x * keep / (1.0 - rate)


def dropout_backward(dy: np.ndarray, keep: np.ndarray, rate: float) -> np.ndarray:
    """``dx = dy keep / (1 - rate)``."""
    return dy * keep / (1.0 - rate)


def embedding_forward(ids: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """``y[..., :] = embeddings[ids[...]]``: one row of the table per id."""
    return embeddings[ids]


def embedding_backward(
    dy: np.ndarray, ids: np.ndarray, embeddings: np.ndarray
) -> tuple[None, dict[str, np.ndarray]]:
    """Each position adds its ``dy`` to the row it read; ids get no gradient (None)."""
    d_embeddings = np.zeros_like(embeddings, dtype=np.float64)
    for position in np.ndindex(*ids.shape):
        d_embeddings[ids[position]] += dy[position]
    return None, {"embeddings": d_embeddings}


# --------------------------------------------------------------------------- normalization


def layer_normalization_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float = 1e-3
) -> np.ndarray:
    """Per row over the features (last axis), ``C`` of them::

    mu = mean_c x     var = mean_c (x - mu)^2     xhat = (x - mu) / sqrt(var + eps)
    y = gamma xhat + beta
    """
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + epsilon)
    return gamma * xhat + beta


def layer_normalization_backward(
    dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float = 1e-3
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """With ``g = gamma dy``, per row::

    dx = (g - mean_c g - xhat mean_c (g xhat)) / sqrt(var + eps)
    dgamma = sum_rows dy xhat      dbeta = sum_rows dy
    """
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + epsilon)
    g = gamma * dy
    dx = (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)) / np.sqrt(
        var + epsilon
    )
    rows = tuple(range(x.ndim - 1))
    return dx, {"gamma": (dy * xhat).sum(axis=rows), "beta": dy.sum(axis=rows)}


def batch_normalization_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float = 1e-3
) -> np.ndarray:
    """Training mode, per channel (last axis) over the ``M`` rows of every other axis::

    mu = mean_rows x     var = mean_rows (x - mu)^2 (biased)     xhat = (x - mu) / sqrt(var + eps)
    y = gamma xhat + beta

    (The layer also moves ``moving_mean``/``moving_variance`` towards ``mu``/``var``.)
    """
    rows = tuple(range(x.ndim - 1))
    mu = x.mean(axis=rows)
    var = ((x - mu) ** 2).mean(axis=rows)
    return gamma * (x - mu) / np.sqrt(var + epsilon) + beta


def batch_normalization_backward(
    dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float = 1e-3
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Training mode: mu and var depend on every row, hence the two correction terms::

    dbeta = sum_rows dy      dgamma = sum_rows dy xhat
    dx = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat dgamma / M)
    """
    rows = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    mu = x.mean(axis=rows)
    var = ((x - mu) ** 2).mean(axis=rows)
    xhat = (x - mu) / np.sqrt(var + epsilon)
    dbeta, dgamma = dy.sum(axis=rows), (dy * xhat).sum(axis=rows)
    dx = gamma / np.sqrt(var + epsilon) * (dy - dbeta / count - xhat * dgamma / count)
    return dx, {"gamma": dgamma, "beta": dbeta}


# --------------------------------------------------------------------------- losses


def mean_squared_error_forward(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``L = mean (y_pred - y_true)^2`` over every entry."""
    return float(np.mean((y_pred - y_true) ** 2))


def mean_squared_error_backward(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``dL/dy_pred = 2 (y_pred - y_true) / n``, ``n`` entries."""
    return 2.0 * (y_pred - y_true) / y_pred.size


def cross_entropy_from_logits_forward(y_true: np.ndarray, logits: np.ndarray) -> float:
    """``L = -mean_rows sum_k y_k log p_k`` with ``p = softmax(z)`` over the last axis."""
    log_p = logits - logits.max(axis=-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(axis=-1, keepdims=True))
    return float(-(y_true * log_p).sum(axis=-1).mean())


def cross_entropy_from_logits_backward(y_true: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``dL/dz = (p sum_k y_k - y) / rows`` (``(p - y) / rows`` for one-hot ``y``)."""
    rows = logits.size // logits.shape[-1]
    p = softmax_forward(logits)
    return (p * y_true.sum(axis=-1, keepdims=True) - y_true) / rows


# --------------------------------------------------------------------------- recurrent cells
# One step of each cell on (N, F) inputs and (N, H) states, Keras' gate order, and its
# backward. A step returns (new states, cache); its backward takes dL/d(new states) and
# returns dL/dx_t, dL/d(previous states) and this step's parameter gradients.


def simple_rnn_step(x_t, states, params):
    """``h_t = tanh(x_t W + h_{t-1} U + b)``."""
    h = states[0]
    h_new = np.tanh(x_t @ params["kernel"] + h @ params["recurrent_kernel"] + params["bias"])
    return [h_new], (x_t, h, h_new)


def simple_rnn_step_backward(d_states, cache, params):
    x_t, h, h_new = cache
    d_pre = d_states[0] * (1.0 - h_new**2)
    grads = {"kernel": x_t.T @ d_pre, "recurrent_kernel": h.T @ d_pre, "bias": d_pre.sum(0)}
    return d_pre @ params["kernel"].T, [d_pre @ params["recurrent_kernel"].T], grads


def lstm_step(x_t, states, params):
    """Gates ``[i f g o] = x_t W + h_{t-1} U + b`` (columns in that order)::

    i, f, o = sigmoid(.)     g = tanh(.)
    c_t = f c_{t-1} + i g    h_t = o tanh(c_t)
    """
    h, c = states
    units = h.shape[1]
    z = x_t @ params["kernel"] + h @ params["recurrent_kernel"] + params["bias"]
    i, f = sigmoid_forward(z[:, :units]), sigmoid_forward(z[:, units : 2 * units])
    g, o = np.tanh(z[:, 2 * units : 3 * units]), sigmoid_forward(z[:, 3 * units :])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return [h_new, c_new], (x_t, h, c, i, f, g, o, c_new)


def lstm_step_backward(d_states, cache, params):
    """``dc = dc_t + dh_t o (1 - tanh^2 c_t)``; then each gate's pre-activation in turn."""
    x_t, h, c, i, f, g, o, c_new = cache
    dh = d_states[0]
    dc = d_states[1] + dh * o * (1.0 - np.tanh(c_new) ** 2)
    d_i = dc * g * i * (1.0 - i)
    d_f = dc * c * f * (1.0 - f)
    d_g = dc * i * (1.0 - g**2)
    d_o = dh * np.tanh(c_new) * o * (1.0 - o)
    d_pre = np.concatenate([d_i, d_f, d_g, d_o], axis=1)
    grads = {"kernel": x_t.T @ d_pre, "recurrent_kernel": h.T @ d_pre, "bias": d_pre.sum(0)}
    return d_pre @ params["kernel"].T, [d_pre @ params["recurrent_kernel"].T, dc * f], grads


def gru_step(x_t, states, params):
    """``reset_after=True`` (Keras default); ``bias`` is ``(2, 3H)``: input and recurrent rows::

    [a_z a_r a_h] = x_t W + b_x        [u_z u_r u_h] = h_{t-1} U + b_h
    z = sigmoid(a_z + u_z)    r = sigmoid(a_r + u_r)    h~ = tanh(a_h + r u_h)
    h_t = z h_{t-1} + (1 - z) h~
    """
    h = states[0]
    units = h.shape[1]
    a = x_t @ params["kernel"] + params["bias"][0]
    u = h @ params["recurrent_kernel"] + params["bias"][1]
    z = sigmoid_forward(a[:, :units] + u[:, :units])
    r = sigmoid_forward(a[:, units : 2 * units] + u[:, units : 2 * units])
    candidate = np.tanh(a[:, 2 * units :] + r * u[:, 2 * units :])
    return [z * h + (1.0 - z) * candidate], (x_t, h, z, r, candidate, u)


def gru_step_backward(d_states, cache, params):
    x_t, h, z, r, candidate, u = cache
    dh, units = d_states[0], h.shape[1]
    d_a_h = dh * (1.0 - z) * (1.0 - candidate**2)
    d_z = dh * (h - candidate) * z * (1.0 - z)
    d_r = d_a_h * u[:, 2 * units :] * r * (1.0 - r)
    d_a = np.concatenate([d_z, d_r, d_a_h], axis=1)  # dL/da
    d_u = np.concatenate([d_z, d_r, d_a_h * r], axis=1)  # dL/du
    grads = {
        "kernel": x_t.T @ d_a,
        "recurrent_kernel": h.T @ d_u,
        "bias": np.stack([d_a.sum(0), d_u.sum(0)]),
    }
    return d_a @ params["kernel"].T, [dh * z + d_u @ params["recurrent_kernel"].T], grads


def gru_reset_before_step(x_t, states, params):
    """``reset_after=False``; one ``bias`` row ``(3H,)``; the reset multiplies h first::

    z = sigmoid(x_t W_z + h_{t-1} U_z + b_z)    r = sigmoid(x_t W_r + h_{t-1} U_r + b_r)
    h~ = tanh(x_t W_h + b_h + (r h_{t-1}) U_h)  h_t = z h_{t-1} + (1 - z) h~
    """
    h = states[0]
    units = h.shape[1]
    kernel, recurrent = params["kernel"], params["recurrent_kernel"]
    a = x_t @ kernel + params["bias"]
    z = sigmoid_forward(a[:, :units] + h @ recurrent[:, :units])
    r = sigmoid_forward(a[:, units : 2 * units] + h @ recurrent[:, units : 2 * units])
    reset = r * h
    candidate = np.tanh(a[:, 2 * units :] + reset @ recurrent[:, 2 * units :])
    return [z * h + (1.0 - z) * candidate], (x_t, h, z, r, candidate, reset)


def gru_reset_before_step_backward(d_states, cache, params):
    x_t, h, z, r, candidate, reset = cache
    dh, units = d_states[0], h.shape[1]
    recurrent = params["recurrent_kernel"]
    recurrent_zr, recurrent_h = recurrent[:, : 2 * units], recurrent[:, 2 * units :]
    d_a_h = dh * (1.0 - z) * (1.0 - candidate**2)
    d_z = dh * (h - candidate) * z * (1.0 - z)
    d_reset = d_a_h @ recurrent_h.T
    d_r = d_reset * h * r * (1.0 - r)
    d_zr = np.concatenate([d_z, d_r], axis=1)
    d_a = np.concatenate([d_zr, d_a_h], axis=1)
    d_h = dh * z + d_reset * r + d_zr @ recurrent_zr.T
    grads = {
        "kernel": x_t.T @ d_a,
        "recurrent_kernel": np.concatenate([h.T @ d_zr, reset.T @ d_a_h], axis=1),
        "bias": d_a.sum(0),
    }
    return d_a @ params["kernel"].T, [d_h], grads


# --------------------------------------------------------------------------- recurrence
# Keras' masking: at a step whose mask is False the states are carried over unchanged (so
# the step's output is the previous state) and their gradient passes straight back.


def run_recurrence(step, x, params, initial_state, mask=None):
    """Outputs ``(N, T, H)``, final states and the per-step caches, one step at a time."""
    batch, steps = x.shape[:2]
    mask = np.ones((batch, steps), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    states, outputs, caches = list(initial_state), [], []
    for t in range(steps):  # a recurrence: step t needs the states of step t - 1
        new_states, cache = step(x[:, t], states, params)
        keep = mask[:, t, None]
        states = [np.where(keep, new, old) for new, old in zip(new_states, states, strict=True)]
        outputs.append(states[0])
        caches.append(cache)
    return np.stack(outputs, axis=1), states, caches


def backpropagate_through_time(step_backward, x, params, caches, dy, d_final_states, mask=None):
    """BPTT from the last step to the first: ``dx``, dL/d(initial states), parameter grads.

    ``dy (N, T, H)`` is the gradient of every step's output; ``d_final_states`` that of the
    returned final states (entries may be None).
    """
    batch, steps = x.shape[:2]
    mask = np.ones((batch, steps), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    units = dy.shape[-1]
    d_states = [np.zeros((batch, units)) if d is None else d for d in d_final_states]
    grads = {key: np.zeros(value.shape) for key, value in params.items()}
    dx = np.zeros(x.shape)
    for t in range(steps - 1, -1, -1):
        d_states[0] = d_states[0] + dy[:, t]  # h_t is both this step's output and a state
        keep = mask[:, t, None]
        d_cell = [d * keep for d in d_states]
        dx[:, t], d_previous, step_grads = step_backward(d_cell, caches[t], params)
        d_states = [dp + d * ~keep for dp, d in zip(d_previous, d_states, strict=True)]
        for key in grads:
            grads[key] += step_grads[key]
    return dx, d_states, grads


_CELLS = {
    # name: (step, step backward, number of states, bias shape for H units)
    "simple_rnn": (simple_rnn_step, simple_rnn_step_backward, 1, lambda h: (h,)),
    "lstm": (lstm_step, lstm_step_backward, 2, lambda h: (4 * h,)),
    "gru": (gru_step, gru_step_backward, 1, lambda h: (2, 3 * h)),
    "gru_reset_before": (
        gru_reset_before_step,
        gru_reset_before_step_backward,
        1,
        lambda h: (3 * h,),
    ),
}


def recurrent_forward(cell, x, kernel, recurrent_kernel, bias=None, initial_state=None, mask=None):
    """The recurrent layer ``cell`` over ``x (N, T, F)``: outputs ``(N, T, H)`` and final states.

    ``cell`` is ``simple_rnn``, ``lstm``, ``gru`` or ``gru_reset_before`` (GRU with
    ``reset_after=False``); the states are ``[h_T]``, or ``[h_T, c_T]`` for the LSTM.
    """
    step, _, count, bias_shape = _CELLS[cell]
    units = recurrent_kernel.shape[0]
    params = {"kernel": kernel, "recurrent_kernel": recurrent_kernel}
    params["bias"] = np.zeros(bias_shape(units)) if bias is None else bias
    if initial_state is None:
        initial_state = [np.zeros((x.shape[0], units))] * count
    outputs, states, _ = run_recurrence(step, x, params, initial_state, mask)
    return outputs, states


def recurrent_backward(
    cell,
    dy,
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    initial_state=None,
    mask=None,
    d_final_states=None,
):
    """``dx``, dL/d(initial states) and parameter gradients (no ``bias`` key without bias)."""
    step, step_backward, count, bias_shape = _CELLS[cell]
    units = recurrent_kernel.shape[0]
    params = {"kernel": kernel, "recurrent_kernel": recurrent_kernel}
    params["bias"] = np.zeros(bias_shape(units)) if bias is None else bias
    if initial_state is None:
        initial_state = [np.zeros((x.shape[0], units))] * count
    _, _, caches = run_recurrence(step, x, params, initial_state, mask)
    d_final_states = [None] * count if d_final_states is None else d_final_states
    dx, d_initial, grads = backpropagate_through_time(
        step_backward, x, params, caches, dy, d_final_states, mask
    )
    if bias is None:
        del grads["bias"]
    return dx, d_initial, grads


# --------------------------------------------------------------------------- convolution
# Channels last: x (N, *spatial, C), kernel (*k, C, F). Loops over every output position
# and every kernel tap, for any number of spatial axes.


def _per_axis(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


def conv_padding(size, kernel, stride, dilation, padding):
    """``(before, after)`` zeros on one axis, as TF/Keras define them.

    With the dilated extent ``e = (k - 1) d + 1``: 'valid' pads nothing, 'causal' pads
    ``e - 1`` before, 'same' pads ``max((ceil(size / s) - 1) s + e - size, 0)`` in total,
    the odd cell after.
    """
    extent = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return extent - 1, 0
    total = max((math.ceil(size / stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def _padded_geometry(x, kernel, strides, dilation_rate, padding):
    rank = x.ndim - 2
    taps = kernel.shape[:rank]
    strides, dilation = _per_axis(strides, rank), _per_axis(dilation_rate, rank)
    pads = [
        conv_padding(size, k, s, d, padding)
        for size, k, s, d in zip(x.shape[1:-1], taps, strides, dilation, strict=True)
    ]
    x_pad = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [
        (x_pad.shape[1 + i] - (taps[i] - 1) * dilation[i] - 1) // strides[i] + 1
        for i in range(rank)
    ]
    return x_pad, pads, taps, strides, dilation, out


def conv_forward(x, kernel, strides=1, dilation_rate=1, padding="valid", bias=None):
    """``y[n, o, f] = sum_{a, c} x_pad[n, o s + a d, c] kernel[a, c, f] + bias[f]``."""
    x_pad, _, taps, strides, dilation, out = _padded_geometry(
        x, kernel, strides, dilation_rate, padding
    )
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    for o in np.ndindex(*out):
        for a in np.ndindex(*taps):
            cell = tuple(o[i] * strides[i] + a[i] * dilation[i] for i in range(len(o)))
            y[(slice(None), *o)] += x_pad[(slice(None), *cell)] @ kernel[a]
    return y if bias is None else y + bias


def conv_backward(dy, x, kernel, strides=1, dilation_rate=1, padding="valid", bias=None):
    """The forward loop read backwards: every tap that read ``x_pad[cell]`` sends back::

    dx_pad[n, o s + a d, :] += dy[n, o, :] kernel[a]^T     dkernel[a] += x_pad[:, cell]^T dy[:, o]
    dbias = sum over n and o of dy
    """
    x_pad, pads, taps, strides, dilation, out = _padded_geometry(
        x, kernel, strides, dilation_rate, padding
    )
    dx_pad, d_kernel = np.zeros(x_pad.shape), np.zeros(kernel.shape)
    for o in np.ndindex(*out):
        d_out = dy[(slice(None), *o)]
        for a in np.ndindex(*taps):
            cell = (slice(None), *(o[i] * strides[i] + a[i] * dilation[i] for i in range(len(o))))
            dx_pad[cell] += d_out @ kernel[a].T
            d_kernel[a] += x_pad[cell].T @ d_out
    inside = tuple(
        slice(before, before + size) for (before, _), size in zip(pads, x.shape[1:-1], strict=True)
    )
    grads = {"kernel": d_kernel}
    if bias is not None:
        grads["bias"] = dy.reshape(-1, dy.shape[-1]).sum(axis=0)
    return dx_pad[(slice(None), *inside)], grads


# --------------------------------------------------------------------------- pooling


def _pooling_windows(spatial, pool_size, strides, padding):
    """For each output position, the real (unpadded) cells of its window, row-major."""
    rank = len(spatial)
    pool = _per_axis(pool_size, rank)
    strides = pool if strides is None else _per_axis(strides, rank)
    if padding == "valid":
        out = [(s - p) // st + 1 for s, p, st in zip(spatial, pool, strides, strict=True)]
        before = [0] * rank
    else:  # 'same': ceil(size / stride) outputs, padding split as for convolutions
        out = [math.ceil(s / st) for s, st in zip(spatial, strides, strict=True)]
        before = [
            conv_padding(s, p, st, 1, "same")[0]
            for s, p, st in zip(spatial, pool, strides, strict=True)
        ]
    for o in np.ndindex(*out):
        cells = []
        for a in np.ndindex(*pool):
            cell = tuple(o[i] * strides[i] + a[i] - before[i] for i in range(rank))
            if all(0 <= c < s for c, s in zip(cell, spatial, strict=True)):
                cells.append(cell)
        yield o, cells


def pooling_forward(x, mode, pool_size, strides=None, padding="valid"):
    """``y[n, o, c]`` = max or mean of ``x[n, cell, c]`` over the real cells of window ``o``.

    Padded cells never win a max and are left out of an average (TF's 'same' pooling).
    """
    windows = list(_pooling_windows(x.shape[1:-1], pool_size, strides, padding))
    out = np.array([o for o, _ in windows]).max(axis=0) + 1
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o, cells in windows:
        stacked = np.stack([x[(slice(None), *cell)] for cell in cells])
        y[(slice(None), *o)] = stacked.max(axis=0) if mode == "max" else stacked.mean(axis=0)
    return y


def pooling_backward(dy, x, mode, pool_size, strides=None, padding="valid"):
    """Max: all of ``dy[o]`` to the window's first maximum (row-major order); average:
    ``dy[o] / count`` to each of its real cells. Overlapping windows add up."""
    dx = np.zeros(x.shape)
    for o, cells in _pooling_windows(x.shape[1:-1], pool_size, strides, padding):
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                d = dy[(n, *o, c)]
                values = [x[(n, *cell, c)] for cell in cells]
                if mode == "max":
                    dx[(n, *cells[int(np.argmax(values))], c)] += d
                else:
                    for cell in cells:
                        dx[(n, *cell, c)] += d / len(cells)
    return dx, {}


# --------------------------------------------------------------------------- ConvLSTM


def conv_lstm_step(
    x_t, h, c, kernel, recurrent_kernel, bias=None, strides=1, padding="valid", dilation_rate=1
):
    """An LSTM step whose two products are convolutions (the recurrent one 'same', stride 1)::

    [i f g o] = conv(x_t, W) + conv(h_{t-1}, U) + b
    c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)      h_t = sigmoid(o) tanh(c_t)
    """
    z = conv_forward(x_t, kernel, strides, dilation_rate, padding, bias)
    if h is None:  # zero initial states, shaped like the convolution's output
        h = c = np.zeros((*z.shape[:-1], recurrent_kernel.shape[-2]))
    z = z + conv_forward(h, recurrent_kernel, 1, 1, "same")
    i, f, g, o = np.split(z, 4, axis=-1)
    c_new = sigmoid_forward(f) * c + sigmoid_forward(i) * np.tanh(g)
    return sigmoid_forward(o) * np.tanh(c_new), c_new


def conv_lstm_forward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    strides=1,
    padding="valid",
    dilation_rate=1,
    initial_state=None,
):
    """ConvLSTM over ``x (N, T, *spatial, C)``: outputs ``(N, T, *out, F)`` and ``[h_T, c_T]``."""
    h, c = (None, None) if initial_state is None else initial_state
    outputs = []
    for t in range(x.shape[1]):  # a recurrence over time steps
        h, c = conv_lstm_step(
            x[:, t], h, c, kernel, recurrent_kernel, bias, strides, padding, dilation_rate
        )
        outputs.append(h)
    return np.stack(outputs, axis=1), [h, c]


# --------------------------------------------------------------------------- attention


def scaled_dot_product_attention_forward(q, k, v, mask=None):
    """``A = softmax(q k^T)`` over the allowed keys, ``out = A v``; returns ``(out, A)``.

    ``q (Tq, K)`` comes pre-scaled by ``1/sqrt(K)``; ``k (Tk, K)``, ``v (Tk, V)``;
    ``mask (Tq, Tk)`` True where a query may attend. A query with no allowed key gets
    all-zero weights (and a zero output).
    """
    scores = q @ k.T
    allowed = np.ones(scores.shape, dtype=bool) if mask is None else mask
    weights = np.zeros(scores.shape)
    for i in range(scores.shape[0]):  # one query row at a time, only its allowed keys
        if allowed[i].any():
            weights[i, allowed[i]] = softmax_forward(scores[i, allowed[i]])
    return weights @ v, weights


def scaled_dot_product_attention_backward(d_out, q, k, v, mask=None):
    """``dv = A^T d_out``, ``dA = d_out v^T``, ``dS = A (dA - rowsum(dA A))``,
    ``dq = dS k``, ``dk = dS^T q``."""
    _, weights = scaled_dot_product_attention_forward(q, k, v, mask)
    d_weights = d_out @ v.T
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
    return d_scores @ k, d_scores.T @ q, weights.T @ d_out


def _mha_allowed(tq, tk, attention_mask, causal):
    allowed = np.ones((tq, tk), dtype=bool)
    if attention_mask is not None:
        allowed = allowed & attention_mask
    if causal:
        allowed = allowed & np.tril(np.ones((tq, tk), dtype=bool))
    return allowed


_MHA_KERNELS = ("query_kernel", "key_kernel", "value_kernel", "output_kernel")
_MHA_BIASES = ("query_bias", "key_bias", "value_bias", "output_bias")


def _mha_heads(query, value, key, params, attention_mask, causal):
    """Yield ``(b, h, q_h, k_h, v_h, allowed)`` for every sample ``b`` and head ``h``.

    ``params`` are the layer's parameters by name (biases optional); ``q_h`` carries the
    ``1/sqrt(K)`` scale. Forward and backward both walk the heads through this.
    """
    heads, key_dim = params["query_kernel"].shape[1:]
    (n, tq, _), tk = query.shape, value.shape[1]
    scale = 1.0 / math.sqrt(key_dim)
    for b in range(n):
        allowed = _mha_allowed(
            tq, tk, None if attention_mask is None else attention_mask[b], causal
        )
        for h in range(heads):
            q = (query[b] @ params["query_kernel"][:, h] + _head(params, "query", h)) * scale
            k = key[b] @ params["key_kernel"][:, h] + _head(params, "key", h)
            v = value[b] @ params["value_kernel"][:, h] + _head(params, "value", h)
            yield b, h, q, k, v, allowed


def _check_mha_params(params):
    missing = [name for name in _MHA_KERNELS if name not in params]
    unknown = sorted(set(params) - {*_MHA_KERNELS, *_MHA_BIASES})
    if missing or unknown:
        raise TypeError(f"multi-head attention reference: missing {missing}, unknown {unknown}")


def _head(params, name, h):
    bias = params.get(f"{name}_bias")
    return 0.0 if bias is None else bias[h]


def multi_head_attention_forward(query, value, key, *, attention_mask=None, causal=False, **params):
    """Keras 3 MultiHeadAttention, one sample and one head at a time::

    q_h = (x_q W_q[:, h] + b_q[h]) / sqrt(K)   k_h = x_k W_k[:, h] + b_k[h]   v_h = ...
    out = sum_h softmax(q_h k_h^T) v_h W_o[h] + b_o

    ``params`` are the layer's parameters by name: ``query_kernel``, ``key_kernel``,
    ``value_kernel``, ``output_kernel`` and, optionally (None or left out for none),
    ``query_bias``, ``key_bias``, ``value_bias``, ``output_bias``.
    ``attention_mask (N, Tq, Tk)`` (padding masks already combined into it) and ``causal``
    restrict the keys. Returns ``(out (N, Tq, D_out), weights (N, H, Tq, Tk))``.
    """
    _check_mha_params(params)
    output_kernel = params["output_kernel"]
    heads = output_kernel.shape[0]
    (n, tq, _), tk = query.shape, value.shape[1]
    out = np.zeros((n, tq, output_kernel.shape[-1]))
    weights = np.zeros((n, heads, tq, tk))
    for b, h, q, k, v, allowed in _mha_heads(query, value, key, params, attention_mask, causal):
        context, weights[b, h] = scaled_dot_product_attention_forward(q, k, v, allowed)
        out[b] += context @ output_kernel[h]
    output_bias = params.get("output_bias")
    return (out if output_bias is None else out + output_bias), weights


def multi_head_attention_backward(
    d_out, query, value, key, *, attention_mask=None, causal=False, **params
):
    """Returns ``((d_query, d_value, d_key), parameter gradients)``; per sample and head::

    dW_o[h] += context_h^T d_out     d_context_h = d_out W_o[h]^T
    (dq_h, dk_h, dv_h) from the attention backward; then each projection as in Dense,
    with q's 1/sqrt(K) carried along. Arguments as for :func:`multi_head_attention_forward`.
    """
    _check_mha_params(params)
    grads = {name: np.zeros(p.shape) for name, p in params.items() if p is not None}
    d_query, d_value, d_key = np.zeros(query.shape), np.zeros(value.shape), np.zeros(key.shape)
    scale = 1.0 / math.sqrt(params["query_kernel"].shape[-1])
    output_kernel = params["output_kernel"]
    for b, h, q, k, v, allowed in _mha_heads(query, value, key, params, attention_mask, causal):
        context, _ = scaled_dot_product_attention_forward(q, k, v, allowed)
        grads["output_kernel"][h] += context.T @ d_out[b]
        d_context = d_out[b] @ output_kernel[h].T
        dq, dk, dv = scaled_dot_product_attention_backward(d_context, q, k, v, allowed)
        for name, x, d_proj, factor, d_x in (
            ("query", query[b], dq, scale, d_query[b]),
            ("key", key[b], dk, 1.0, d_key[b]),
            ("value", value[b], dv, 1.0, d_value[b]),
        ):
            grads[f"{name}_kernel"][:, h] += factor * x.T @ d_proj
            if f"{name}_bias" in grads:
                grads[f"{name}_bias"][h] += factor * d_proj.sum(axis=0)
            d_x += factor * d_proj @ params[f"{name}_kernel"][:, h].T
    if "output_bias" in grads:
        grads["output_bias"] = d_out.reshape(-1, d_out.shape[-1]).sum(axis=0)
    return (d_query, d_value, d_key), grads


def attention_forward(query, value, key, scale=1.0, concat_weight=None, value_mask=None):
    """Keras' ``Attention`` layer (Luong dot or Bahdanau concat scores)::

    dot:     s_ij = scale q_i . k_j
    concat:  s_ij = sum_d concat_weight tanh(scale (q_i + k_j))_d
    out_i = sum_j softmax_j(s_ij) v_j,  masked keys (value_mask False) left out
    """
    if concat_weight is None:
        scores = scale * query @ key.swapaxes(1, 2)
    else:
        scores = concat_weight * np.tanh(scale * (query[:, :, None] + key[:, None])).sum(-1)
    if value_mask is not None:
        scores = np.where(value_mask[:, None], scores, -np.inf)
    return softmax_forward(scores) @ value


def attention_pooling_forward(x, query, kernel=None, bias=None):
    """AttentionPooling1D, one sample and one step at a time::

    h_t = x_t (plain) or tanh(x_t W + b) (additive)    s_t = h_t . query
    a = softmax(s) over t                               y = sum_t a_t x_t

    Returns ``(y (N, C), weights a (N, T))``.
    """
    batch, steps, channels = x.shape
    y, weights = np.zeros((batch, channels)), np.zeros((batch, steps))
    for n in range(batch):
        scores = np.zeros(steps)
        for t in range(steps):
            h = x[n, t] if kernel is None else np.tanh(x[n, t] @ kernel + bias)
            scores[t] = h @ query
        weights[n] = softmax_forward(scores)
        for t in range(steps):
            y[n] += weights[n, t] * x[n, t]
    return y, weights
