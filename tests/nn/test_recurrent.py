"""Recurrent layers: values against naive references, gradients, shapes, errors, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.recurrent import (
    GRU,
    LSTM,
    RNN,
    Bidirectional,
    LSTMCore,
    SimpleRNN,
    gates_first,
    gates_last,
    lstm_backward_factors,
    lstm_gates_backward,
    lstm_gates_forward,
)
from tradenn.nn.reference import recurrent_backward, recurrent_forward

TOLERANCE = 1e-6
BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3
KINDS = ["rnn", "lstm", "gru", "gru_reset_before"]
STATE_COUNT = {"rnn": 1, "lstm": 2, "gru": 1, "gru_reset_before": 1}


def make(kind: str, units: int = UNITS, **kwargs) -> nn.Layer:
    if kind == "gru_reset_before":
        return GRU(units, reset_after=False, **kwargs)
    return {"rnn": RNN, "lstm": LSTM, "gru": GRU}[kind](units, **kwargs)


def built(kind: str, rng, **kwargs) -> nn.Layer:
    """A built layer with random non-zero biases (zeros would hide bias mistakes)."""
    layer = make(kind, **kwargs)
    layer.build((None, STEPS, FEATURES))
    if "bias" in layer.params:
        layer.params["bias"][...] = rng.uniform(-0.5, 0.5, layer.params["bias"].shape)
    return layer


def random_states(kind: str, rng, batch: int = BATCH, units: int = UNITS) -> list[np.ndarray]:
    return [rng.uniform(-0.8, 0.8, (batch, units)) for _ in range(STATE_COUNT[kind])]


class WithInitialState:
    """``forward(x, *states)``: makes gradcheck differentiate the initial states too."""

    def __init__(self, layer):
        self.layer, self.layers = layer, [layer]

    def forward(self, x, *states, training=False):
        return self.layer.forward(x, initial_state=list(states), training=training)

    def backward(self, dy):
        return self.layer.backward(dy)


# --------------------------------------------------------------------------- references
# The plain per-step loops of tradenn.nn.reference (Keras' equations, independent of the
# layers' implementation), called with a layer's parameters.

CELLS = {"rnn": "simple_rnn", "lstm": "lstm", "gru": "gru", "gru_reset_before": "gru_reset_before"}


def reference_run(kind: str, layer, x, states=None, mask=None, dy=None, d_final=None):
    """Forward (and, given ``dy``, backward) over the sequence, one step at a time.

    Sequences (``x``, ``mask``, outputs, ``dy``) are in processing order: reversed by the
    caller for ``go_backwards``.

    Returns ``(outputs (N, T, H), final states)``, and with ``dy`` also
    ``(dx (N, T, F), d_initial_states, parameter gradients)``.
    """
    params = {key: value.astype(np.float64) for key, value in layer.params.items()}
    outputs, final = recurrent_forward(CELLS[kind], x, **params, initial_state=states, mask=mask)
    if dy is None:
        return outputs, final
    gradients = recurrent_backward(
        CELLS[kind], dy, x, **params, initial_state=states, mask=mask, d_final_states=d_final
    )
    return outputs, final, gradients


def reference(kind: str, layer, x, states=None, mask=None):
    """Sequence output (N, T, H) in processing order and final states."""
    if layer.go_backwards:
        x, mask = x[:, ::-1], None if mask is None else mask[:, ::-1]
    return reference_run(kind, layer, x, states, mask)


# A batch of three sequences masked at the start, in the middle and at the end.
MASK = np.array([[True, False, True, False], [True, True, False, False], [False, True, True, True]])


class Masked:
    """``forward(x, *states)`` with a fixed ``mask``, for gradcheck."""

    def __init__(self, layer, mask=MASK):
        self.layer, self.layers, self.mask = layer, [layer], mask

    def forward(self, x, *states, training=False):
        initial_state = list(states) if states else None
        return self.layer.forward(x, initial_state=initial_state, mask=self.mask, training=training)

    def backward(self, dy):
        return self.layer.backward(dy)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_outputs_and_states_match_a_per_step_reference(
    kind, go_backwards, with_state, masked, rng, float64
):
    layer = built(kind, rng, return_sequences=True, return_state=True, go_backwards=go_backwards)
    mask = MASK if masked else None
    batch = len(MASK)
    x = rng.standard_normal((batch, STEPS, FEATURES))
    states = random_states(kind, rng, batch) if with_state else None
    sequence, *final = layer.forward(x, initial_state=states, mask=mask)
    expected_sequence, expected_final = reference(kind, layer, x, states, mask)
    np.testing.assert_allclose(sequence, expected_sequence, rtol=0, atol=1e-12)
    for got, expected in zip(final, expected_final, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_a_per_step_reference(kind, go_backwards, masked, rng, float64):
    layer = built(kind, rng, return_sequences=True, return_state=True, go_backwards=go_backwards)
    mask = MASK if masked else None
    batch = len(MASK)
    x = rng.standard_normal((batch, STEPS, FEATURES))
    states = random_states(kind, rng, batch)
    layer.forward(x, initial_state=states, mask=mask)
    dy = rng.standard_normal((batch, STEPS, UNITS))
    d_final = random_states(kind, rng, batch)
    dx, *d_states = layer.backward([dy, *d_final])
    ordered, ordered_mask = x, mask
    if go_backwards:
        ordered, ordered_mask = x[:, ::-1], None if mask is None else mask[:, ::-1]
    *_, (expected_dx, expected_d_states, expected_grads) = reference_run(
        kind, layer, ordered, states, ordered_mask, dy=dy, d_final=d_final
    )
    expected_dx = expected_dx[:, ::-1] if go_backwards else expected_dx
    np.testing.assert_allclose(dx, expected_dx, rtol=0, atol=1e-12)
    for got, expected in zip(d_states, expected_d_states, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    for key, expected in expected_grads.items():
        np.testing.assert_allclose(layer.grads[key], expected, rtol=0, atol=1e-12)


def test_gru_reset_before_takes_the_reset_state_into_the_candidate_product(rng, float64):
    # one step from h0 with z forced to 0 (h_1 = h~): h~ = tanh(x W_h + b_h + (r * h0) U_h)
    layer = GRU(2, reset_after=False)
    layer.build((None, 1, 1))
    layer.params["kernel"][...] = [[0.0, 0.0, 0.0, 0.0, 0.5, -0.25]]
    layer.params["recurrent_kernel"][...] = [[0, 0, 0, 0, 1.0, 2.0], [0, 0, 0, 0, -1.0, 0.5]]
    layer.params["bias"][...] = [-50.0, -50.0, 0.0, 0.0, 0.1, 0.2]  # z ~ 0, r = 1/2
    h0 = np.array([[0.4, -0.6]])
    h1 = layer.forward(np.array([[[2.0]]]), initial_state=[h0])
    reset = 0.5 * h0
    expected = np.tanh([[2.0 * 0.5 + 0.1, 2.0 * -0.25 + 0.2]] + reset @ [[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(h1, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_last_output_is_the_last_step_of_the_sequence(kind, rng, float64):
    layer = built(kind, rng)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    np.testing.assert_allclose(layer.forward(x), reference(kind, layer, x)[0][:, -1], atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_reads_the_reversed_sequence_and_does_not_re_reverse(kind, rng, float64):
    forward = built(kind, rng, return_sequences=True)
    backward = make(kind, return_sequences=True, go_backwards=True)
    backward.build((None, STEPS, FEATURES))
    for key, value in forward.params.items():
        backward.params[key][...] = value
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    np.testing.assert_allclose(backward.forward(x), forward.forward(x[:, ::-1]), atol=1e-12)


def test_sigmoid_tanh_fast_path_equals_the_generic_gate_math(rng, float64):
    z = rng.standard_normal((4, 2, 5, 3))
    c_prev = rng.standard_normal((2, 5, 3))
    sigmoid_fn, tanh_fn = nn.activations.Sigmoid(), nn.activations.Tanh()

    class Sigmoid(nn.activations.Sigmoid):  # same maths, not the fast path's exact type
        pass

    fast = lstm_gates_forward(z.copy(), c_prev, tanh_fn, sigmoid_fn)
    generic = lstm_gates_forward(z.copy(), c_prev, tanh_fn, Sigmoid())
    for a, b in zip(fast[:2], generic[:2], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-14)
    np.testing.assert_allclose(
        lstm_backward_factors(fast[2], tanh_fn, sigmoid_fn),
        lstm_backward_factors(generic[2], tanh_fn, Sigmoid()),
        atol=1e-14,
    )


def test_lstm_gate_functions_work_on_states_of_any_rank(rng, float64):
    z = rng.standard_normal((4, 2, 3, 5, 4))  # ConvLSTM2D-like: (4, N, rows, cols, H)
    c_prev = rng.standard_normal((2, 3, 5, 4))
    act, rec = nn.activations.Tanh(), nn.activations.Sigmoid()
    h, c, cache = lstm_gates_forward(z.copy(), c_prev, act, rec)
    h_rows, c_rows, _ = lstm_gates_forward(
        z.reshape(4, -1, 4).copy(), c_prev.reshape(-1, 4), act, rec
    )
    np.testing.assert_allclose(h.reshape(-1, 4), h_rows, atol=1e-14)
    np.testing.assert_allclose(c.reshape(-1, 4), c_rows, atol=1e-14)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    dz, dc_prev = lstm_gates_backward(dh, dc.copy(), lstm_backward_factors(cache, act, rec))
    assert dz.shape == z.shape and dc_prev.shape == c_prev.shape


def test_lstm_gate_backward_matches_finite_differences(rng, float64):
    z, c_prev = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 3))
    r_h, r_c = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    act, rec = nn.activations.Tanh(), nn.activations.Sigmoid()

    def objective():
        h, c, _ = lstm_gates_forward(z.copy(), c_prev, act, rec)
        return float(np.sum(h * r_h) + np.sum(c * r_c))

    _, _, cache = lstm_gates_forward(z.copy(), c_prev, act, rec)
    dz, dc_prev = lstm_gates_backward(r_h, r_c.copy(), lstm_backward_factors(cache, act, rec))
    assert nn.gradient_check.relative_error(dz, nn.numerical_gradient(objective, z)) < TOLERANCE
    numerical = nn.numerical_gradient(objective, c_prev)
    assert nn.gradient_check.relative_error(dc_prev, numerical) < TOLERANCE


def test_gates_first_and_gates_last_convert_between_layouts(rng):
    channels_last = rng.standard_normal((2, 5, 4 * 3))
    gate_major = gates_first(channels_last, 4)
    assert gate_major.shape == (4, 2, 5, 3)
    np.testing.assert_array_equal(gate_major[1], channels_last[..., 3:6])
    np.testing.assert_array_equal(gates_last(gate_major), channels_last)


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("kind", KINDS)
def test_a_masked_step_outputs_and_keeps_the_previous_state(kind, rng, float64):
    layer = built(kind, rng, return_sequences=True, return_state=True)
    x = rng.standard_normal((len(MASK), STEPS, FEATURES))
    states = random_states(kind, rng, len(MASK))
    sequence, h_last, *_ = layer.forward(x, initial_state=states, mask=MASK)
    # row 0 is masked at steps 1 and 3, row 1 at steps 2 and 3, row 2 at step 0
    np.testing.assert_array_equal(sequence[0, 1], sequence[0, 0])
    np.testing.assert_array_equal(sequence[0, 3], sequence[0, 2])
    np.testing.assert_array_equal(sequence[1, 3], sequence[1, 1])
    np.testing.assert_array_equal(sequence[2, 0], states[0][2])  # Keras: the carried h_0
    np.testing.assert_array_equal(h_last, sequence[:, -1])


@pytest.mark.parametrize("kind", KINDS)
def test_a_fully_masked_sequence_returns_its_initial_state(kind, rng, float64):
    layer = built(kind, rng, return_state=True)
    states = random_states(kind, rng)
    _, *final = layer.forward(
        rng.standard_normal((BATCH, STEPS, FEATURES)),
        initial_state=states,
        mask=np.zeros((BATCH, STEPS), dtype=bool),
    )
    for got, expected in zip(final, states, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_an_all_true_mask_changes_nothing(kind, rng, float64):
    layer = built(kind, rng, return_sequences=True)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    dy = rng.standard_normal((BATCH, STEPS, UNITS))
    plain = layer.forward(x), layer.backward(dy), layer.grads["kernel"].copy()
    masked = (
        layer.forward(x, mask=np.ones((BATCH, STEPS), dtype=int)),
        layer.backward(dy),
        layer.grads["kernel"].copy(),
    )
    for got, expected in zip(masked, plain, strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "options",
    [{}, {"return_sequences": True}, {"return_sequences": True, "go_backwards": True}],
    ids=["last", "sequences", "sequences-backwards"],
)
def test_masked_backward_matches_finite_differences(kind, options, rng, float64):
    layer = built(kind, rng, **options)
    x = rng.standard_normal((len(MASK), STEPS, FEATURES))
    assert nn.gradcheck(Masked(layer), x) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_masked_gradients_reach_the_initial_states(kind, rng, float64):
    layer = built(kind, rng, return_sequences=True, return_state=True)
    x = rng.standard_normal((len(MASK), STEPS, FEATURES))
    errors = nn.gradcheck(
        Masked(layer), (x, *random_states(kind, rng, len(MASK))), return_errors=True
    )
    assert {f"input_{k}" for k in range(1 + STATE_COUNT[kind])} <= set(errors)
    assert max(errors.values()) < TOLERANCE


def test_masked_steps_pass_no_gradient_to_their_inputs(rng, float64):
    layer = built("lstm", rng, return_sequences=True)
    x = rng.standard_normal((len(MASK), STEPS, FEATURES))
    layer.forward(x, mask=MASK)
    dx = layer.backward(rng.standard_normal((len(MASK), STEPS, UNITS)))
    np.testing.assert_array_equal(dx[~MASK], 0.0)
    assert np.all(np.abs(dx[MASK]).sum(axis=-1) > 0)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_bidirectional_masks_both_directions(merge_mode, rng, float64):
    layer = Bidirectional(GRU(UNITS, return_sequences=True), merge_mode=merge_mode)
    x = rng.standard_normal((len(MASK), STEPS, FEATURES))
    assert nn.gradcheck(Masked(layer), x) < TOLERANCE
    y = layer.forward(x, mask=MASK)
    backward_layer = layer.backward_layer
    expected_b, _ = reference("gru", backward_layer, x, mask=MASK)
    y_b = (
        y[..., UNITS:] if merge_mode == "concat" else y - layer.forward_layer.forward(x, mask=MASK)
    )
    np.testing.assert_allclose(y_b, expected_b[:, ::-1], rtol=0, atol=1e-12)


def test_output_mask_follows_return_sequences_and_the_processing_order():
    mask = np.array([[True, True, False]])
    x = np.zeros((1, 3, 2))
    assert GRU(2).compute_mask(x, mask) is None
    np.testing.assert_array_equal(LSTM(2, return_sequences=True).compute_mask(x, mask), mask)
    reversed_mask = RNN(2, return_sequences=True, go_backwards=True).compute_mask(x, mask)
    np.testing.assert_array_equal(reversed_mask, [[False, True, True]])
    bidirectional = Bidirectional(LSTM(2, return_sequences=True))
    np.testing.assert_array_equal(bidirectional.compute_mask(x, mask), mask)
    assert RNN(2).compute_mask(x, None) is None


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_backward_matches_finite_differences(kind, return_sequences, go_backwards, rng, float64):
    layer = built(kind, rng, return_sequences=return_sequences, go_backwards=go_backwards)
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_flow_in_through_the_returned_states(kind, return_sequences, rng, float64):
    layer = built(kind, rng, return_sequences=return_sequences, return_state=True)
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


def test_gradient_through_the_final_cell_state_alone(rng, float64):
    layer = built("lstm", rng, return_state=True)

    class FinalCell:  # forward -> c_T only; backward passes None for y and h_T
        layers = (layer,)

        def forward(self, x, training=False):
            return layer.forward(x, training=training)[2]

        def backward(self, dc):
            return layer.backward([None, None, dc])

    assert nn.gradcheck(FinalCell(), rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "options",
    [{}, {"return_sequences": True, "go_backwards": True, "return_state": True}],
    ids=["last", "sequences-backwards-state"],
)
def test_gradients_reach_the_initial_states(kind, options, rng, float64):
    layer = built(kind, rng, **options)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    errors = nn.gradcheck(
        WithInitialState(layer), (x, *random_states(kind, rng)), return_errors=True
    )
    assert {f"input_{k}" for k in range(1 + STATE_COUNT[kind])} <= set(errors)
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("use_bias", [False, True])
def test_one_feature_and_one_unit_match_finite_differences(kind, use_bias, rng, float64):
    layer = make(kind, 1, use_bias=use_bias, return_sequences=True)
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, 1))) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_backward_without_bias_matches_finite_differences(kind, rng, float64):
    layer = make(kind, use_bias=False, return_sequences=True)
    assert "bias" not in layer.params
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize(
    ("kind", "activations"),
    [
        ("rnn", {"activation": "silu"}),
        ("lstm", {"activation": "gelu", "recurrent_activation": "tanh"}),
        ("lstm", {"activation": "elu"}),
        ("gru", {"activation": "silu", "recurrent_activation": "tanh"}),
    ],
)
def test_backward_with_other_activations_matches_finite_differences(
    kind, activations, rng, float64
):
    layer = built(kind, rng, return_sequences=True, **activations)
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_weight_penalties_reach_both_kernels(kind, rng, float64):
    layer = built(
        kind,
        rng,
        kernel_regularizer=nn.regularizers.L2(0.1),
        recurrent_regularizer=nn.regularizers.L1(0.05),
    )
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_backward_matches_finite_differences(
    merge_mode, return_sequences, rng, float64
):
    layer = Bidirectional(LSTM(UNITS, return_sequences=return_sequences), merge_mode=merge_mode)
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_bidirectional_wraps_every_recurrent_layer(kind, rng, float64):
    layer = Bidirectional(make(kind, return_sequences=True), merge_mode="ave")
    assert nn.gradcheck(layer, rng.standard_normal((BATCH, STEPS, FEATURES))) < TOLERANCE


def test_bidirectional_states_in_and_out_match_finite_differences(rng, float64):
    layer = Bidirectional(LSTM(UNITS, return_sequences=True, return_state=True))
    layer.build((None, STEPS, FEATURES))
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    states = random_states("lstm", rng) + random_states("lstm", rng)
    errors = nn.gradcheck(WithInitialState(layer), (x, *states), return_errors=True)
    assert len([name for name in errors if name.startswith("input_")]) == 5
    assert max(errors.values()) < TOLERANCE


# --------------------------------------------------------------------------- Bidirectional values


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_the_two_directions_aligned_in_time(merge_mode, rng, float64):
    layer = Bidirectional(GRU(UNITS, return_sequences=True), merge_mode=merge_mode)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    y = layer.forward(x)
    forward = reference("gru", layer.forward_layer, x)[0]
    backward = reference("gru", layer.backward_layer, x)[0][:, ::-1]  # back to input order
    expected = {
        "concat": np.concatenate([forward, backward], axis=-1),
        "sum": forward + backward,
        "mul": forward * backward,
        "ave": (forward + backward) / 2,
        None: [forward, backward],
    }[merge_mode]
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_bidirectional_backward_layer_is_a_flipped_copy_with_its_own_weights():
    layer = LSTM(4, name="encoder")
    wrapper = Bidirectional(layer)
    wrapper.build((None, STEPS, FEATURES))
    assert wrapper.forward_layer is layer and wrapper.layers == [layer, wrapper.backward_layer]
    assert wrapper.backward_layer.name == "backward_encoder"
    assert wrapper.backward_layer.go_backwards and not layer.go_backwards
    assert isinstance(wrapper.backward_layer, LSTM) and wrapper.backward_layer.units == 4
    assert not np.array_equal(layer.params["kernel"], wrapper.backward_layer.params["kernel"])
    assert wrapper.count_params() == 2 * layer.count_params()


def test_bidirectional_splits_initial_state_half_and_half(rng, float64):
    layer = Bidirectional(LSTM(UNITS, return_state=True), merge_mode=None)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    states = random_states("lstm", rng) + random_states("lstm", rng)
    y_f, y_b, h_f, c_f, h_b, c_b = layer.forward(x, initial_state=states)
    _, (h, c) = reference("lstm", layer.forward_layer, x, states[:2])
    np.testing.assert_allclose([y_f, h_f, c_f], [h, h, c], atol=1e-12)
    _, (h, c) = reference("lstm", layer.backward_layer, x, states[2:])
    np.testing.assert_allclose([y_b, h_b, c_b], [h, h, c], atol=1e-12)


# --------------------------------------------------------------------------- the hooks


def windows_of(x):
    """The 3-tap windows of ``x (B, L, C)`` with one zero of padding each side: (B, L, 3, C)."""
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    return np.stack([padded[:, k : k + x.shape[1]] for k in range(3)], axis=2)


def conv_same(x, kernel):
    """3-tap 'same' convolution along axis 1 of channels-last ``x (B, L, C)``; windows kept."""
    windows = windows_of(x)
    return np.einsum("blkc,kco->blo", windows, kernel), windows


def conv_same_input_grad(dy, kernel):
    d_windows = np.einsum("blo,kco->blkc", dy, kernel)
    d_padded = np.zeros((dy.shape[0], dy.shape[1] + 2, kernel.shape[1]))
    for k in range(3):
        d_padded[:, k : k + dy.shape[1]] += d_windows[:, :, k]
    return d_padded[:, 1:-1]


class ConvLSTM1DSketch(LSTMCore, register=False):
    """What a ConvLSTM subclass overrides: shapes and the four linear-map hooks, nothing else.

    Input (N, T, L, C), state (N, L, H); 3-tap 'same' convolutions for both maps; time is
    stacked into the batch axis for the input projection and the parameter gradients.
    """

    _input_ndim = 4

    def _kernel_shape(self, input_shape):
        return (3, input_shape[-1], 4 * self.units)

    def _recurrent_kernel_shape(self):
        return (3, self.units, 4 * self.units)

    def _state_shape(self, input_shape):
        return (input_shape[0], input_shape[2], self.units)

    def _input_projection(self, x_tm):
        steps, batch = x_tm.shape[:2]
        y, self._windows = conv_same(
            x_tm.reshape(steps * batch, *x_tm.shape[2:]), self.params["kernel"]
        )
        y += self.params["bias"]
        return np.ascontiguousarray(gates_first(y.reshape(steps, batch, *y.shape[1:]), 4))

    def _recurrent_product(self, h, out):
        return gates_first(conv_same(h, self.params["recurrent_kernel"])[0], 4)

    def _recurrent_input_grad(self, dz, out):
        return conv_same_input_grad(dz, self.params["recurrent_kernel"])

    def _parameter_and_input_grads(self, x_tm, h_prev, dz, dz_recurrent=None):
        rows = dz.reshape(-1, *dz.shape[2:])
        h_windows = windows_of(h_prev.reshape(-1, *h_prev.shape[2:]))
        self.grads["kernel"][...] = np.einsum("blkc,blo->kco", self._windows, rows)
        self.grads["recurrent_kernel"][...] = np.einsum("blkc,blo->kco", h_windows, rows)
        self.grads["bias"][...] = rows.sum(axis=(0, 1))
        return conv_same_input_grad(rows, self.params["kernel"]).reshape(x_tm.shape)


def test_a_convolutional_subclass_only_swaps_the_linear_maps(rng, float64):
    layer = ConvLSTM1DSketch(2, return_sequences=True, return_state=True)
    x = rng.standard_normal((2, 3, 5, 2))  # (N, T, L, C)
    layer.build(x.shape)
    layer.params["bias"][...] = rng.uniform(-0.5, 0.5, 8)
    y, h, c = layer.forward(x)
    assert y.shape == (2, 3, 5, 2) and h.shape == c.shape == (2, 5, 2)
    assert layer.compute_output_shape((None, 3, 5, 2)) == [
        (None, 3, 5, 2),
        (None, 5, 2),
        (None, 5, 2),
    ]
    assert nn.gradcheck(layer, x) < TOLERANCE


def test_a_convolutional_subclass_with_centre_taps_is_an_lstm_per_position(rng, float64):
    conv = ConvLSTM1DSketch(3, return_sequences=True)
    x = rng.standard_normal((2, 4, 5, 2))
    conv.build(x.shape)
    for key in ("kernel", "recurrent_kernel"):
        conv.params[key][[0, 2]] = 0.0
    dense = LSTM(3, return_sequences=True)
    dense.build((None, 4, 2))
    dense.params["kernel"][...] = conv.params["kernel"][1]
    dense.params["recurrent_kernel"][...] = conv.params["recurrent_kernel"][1]
    per_position = dense.forward(x.transpose(0, 2, 1, 3).reshape(10, 4, 2))
    expected = per_position.reshape(2, 5, 4, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(conv.forward(x), expected, atol=1e-12)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_output_shapes(kind, return_sequences, return_state, rng):
    layer = make(kind, 5, return_sequences=return_sequences, return_state=return_state)
    out = layer.forward(rng.standard_normal((2, 7, 3)))
    y_shape = (2, 7, 5) if return_sequences else (2, 5)
    if return_state:
        assert [a.shape for a in out] == [y_shape] + [(2, 5)] * STATE_COUNT[kind]
        assert layer.compute_output_shape((None, 7, 3))[0] == (None, *y_shape[1:])
    else:
        assert out.shape == y_shape
        assert layer.compute_output_shape((None, 7, 3)) == (None, *y_shape[1:])


@pytest.mark.parametrize(
    ("merge_mode", "return_sequences", "expected"),
    [("concat", True, (2, 7, 10)), ("sum", False, (2, 5)), ("mul", True, (2, 7, 5))],
)
def test_bidirectional_output_shapes(merge_mode, return_sequences, expected, rng):
    layer = Bidirectional(GRU(5, return_sequences=return_sequences), merge_mode=merge_mode)
    assert layer.forward(rng.standard_normal((2, 7, 3))).shape == expected
    assert layer.compute_output_shape((None, 7, 3)) == (None, *expected[1:])


def test_bidirectional_with_states_and_no_merge_returns_everything(rng):
    layer = Bidirectional(LSTM(5, return_state=True), merge_mode=None)
    out = layer.forward(rng.standard_normal((2, 7, 3)))
    assert [a.shape for a in out] == [(2, 5)] * 6


def test_parameter_layout_follows_keras(rng):
    shapes = {}
    for kind in KINDS:
        layer = make(kind, 4)
        layer.build((None, 6, 3))
        shapes[kind] = {key: value.shape for key, value in layer.params.items()}
    assert shapes["rnn"] == {"kernel": (3, 4), "recurrent_kernel": (4, 4), "bias": (4,)}
    assert shapes["lstm"] == {"kernel": (3, 16), "recurrent_kernel": (4, 16), "bias": (16,)}
    assert shapes["gru"] == {"kernel": (3, 12), "recurrent_kernel": (4, 12), "bias": (2, 12)}
    assert shapes["gru_reset_before"] == {
        "kernel": (3, 12),
        "recurrent_kernel": (4, 12),
        "bias": (12,),
    }


def test_lstm_forget_gate_bias_starts_at_one():
    layer = LSTM(3)
    layer.build((None, 4, 2))
    np.testing.assert_array_equal(layer.params["bias"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    plain = LSTM(3, unit_forget_bias=False)
    plain.build((None, 4, 2))
    np.testing.assert_array_equal(plain.params["bias"], np.zeros(12))


@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_kernel_is_orthogonal_per_keras_default(kind):
    layer = make(kind, 4)
    layer.build((None, 6, 3))
    kernel = layer.params["recurrent_kernel"].astype(np.float64)  # (H, G H): orthonormal rows
    np.testing.assert_allclose(kernel @ kernel.T, np.eye(4), atol=1e-6)


# --------------------------------------------------------------------------- dtypes and buffers


@pytest.mark.parametrize("kind", KINDS)
def test_float32_by_default_and_float64_on_request(kind, rng):
    x = rng.standard_normal((2, 5, 3))
    layer = make(kind, return_sequences=True)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.grads["kernel"].dtype == np.float32
    nn.set_dtype(np.float64)
    layer = make(kind, return_sequences=True)
    y = layer.forward(x)
    assert y.dtype == layer.backward(np.ones_like(y)).dtype == np.float64


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_are_never_overwritten_by_later_calls(kind, rng):
    layer = make(kind, return_sequences=True, return_state=True)
    x1, x2 = rng.standard_normal((2, 2, 5, 3))
    first = [a.copy() for a in layer.forward(x1)]
    kept = layer.forward(x1)
    layer.forward(x2)
    dx = layer.backward([np.ones_like(a) for a in kept])
    dx_copy = dx.copy()
    layer.forward(x2)
    layer.backward([np.ones_like(a) for a in kept])
    for a, b in zip(kept, first, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx, dx_copy)


def test_backward_leaves_the_callers_arrays_alone(rng):
    layer = LSTM(3, return_sequences=True, return_state=True)
    x = rng.standard_normal((2, 5, 3))
    h0, c0 = rng.standard_normal((2, 2, 3))
    layer.forward(x, initial_state=[h0, c0])
    grads = [
        rng.standard_normal((2, 5, 3)),
        rng.standard_normal((2, 3)),
        rng.standard_normal((2, 3)),
    ]
    copies = [g.copy() for g in grads]
    layer.backward(grads)
    for g, copy in zip(grads, copies, strict=True):
        np.testing.assert_array_equal(g, copy)


# --------------------------------------------------------------------------- errors


def assert_one_line_error(error):
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LSTM(0), r"LSTM 'lstm.*': units must be a positive integer, got 0"),
        (lambda: RNN(2.5), r"units must be a positive integer, got 2.5"),
        (lambda: LSTM(4, activation="softmax"), r"activation must be elementwise"),
        (lambda: GRU(4, recurrent_activation="softmax"), r"recurrent_activation must be"),
        (lambda: LSTM(4, activation="tanhh"), r"Unknown activation 'tanhh'"),
        (lambda: Bidirectional(LSTM(3), merge_mode="max"), r"merge_mode must be one of"),
        (lambda: Bidirectional(nn.Dense(3)), r"must be a recurrent layer"),
        (lambda: Bidirectional(LSTM(3), backward_layer=LSTM(3)), r"opposite go_backwards"),
        (
            lambda: Bidirectional(LSTM(3), backward_layer=GRU(3, go_backwards=True)),
            r"same kind",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(build, message):
    with pytest.raises(ValueError, match=message) as error:
        build()
    assert_one_line_error(error)


@pytest.mark.parametrize("layer_class", [RNN, LSTM, GRU, nn.ConvLSTM2D])
def test_a_misspelt_keyword_is_an_error_naming_the_layer(layer_class):
    arguments = (2, 3) if layer_class is nn.ConvLSTM2D else (2,)
    with pytest.raises(
        TypeError, match=rf"^{layer_class.__name__}: unexpected keyword argument 'return_sequence'$"
    ):
        layer_class(*arguments, return_sequence=True)


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_units_activation_and_recurrent_activation_may_be_given_by_position(layer_class):
    layer = layer_class(4, "relu", "tanh", use_bias=False)
    assert layer.units == 4 and not layer.use_bias
    config = layer.get_config()
    assert (config["activation"], config["recurrent_activation"]) == ("relu", "tanh")
    assert layer_class.from_config(config).get_config() == config


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((4, 3), r"LSTM 'l': expected input of shape \(None, None, None\), got \(4, 3\)"),
        ((4, 2, 3, 1), r"expected input of shape \(None, None, None\), got \(4, 2, 3, 1\)"),
        ((4, 0, 3), r"needs at least one time step"),
    ],
)
def test_inputs_of_the_wrong_rank_are_rejected(shape, message):
    with pytest.raises(ValueError, match=message) as error:
        LSTM(3, name="l").forward(np.zeros(shape))
    assert_one_line_error(error)


def test_inputs_with_other_features_than_at_build_are_rejected(rng):
    layer = GRU(3, name="g")
    layer.forward(rng.standard_normal((2, 5, 4)))
    with pytest.raises(
        ValueError, match=r"GRU 'g': expected input of shape \(None, None, 4\), got \(2, 5, 3\)"
    ):
        layer.forward(rng.standard_normal((2, 5, 3)))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.ones((2, 4), dtype=bool), r"mask must have shape \(N, T\) = \(2, 5\), got \(2, 4\)"),
        (np.array([["a"] * 5] * 2), r"mask must be boolean"),
    ],
)
def test_bad_masks_are_rejected(mask, message, rng):
    with pytest.raises(ValueError, match=message) as error:
        LSTM(3).forward(rng.standard_normal((2, 5, 4)), mask=mask)
    assert_one_line_error(error)


@pytest.mark.parametrize(
    ("initial_state", "message"),
    [
        (np.zeros((2, 3)), r"initial_state must be a list of arrays \[h0, c0\], got ndarray"),
        ([np.zeros((2, 3))], r"initial_state needs 2 array\(s\) \[h0, c0\], got 1"),
        (
            [np.zeros((2, 3)), np.zeros((2, 4))],
            r"initial state c0 must have shape \(2, 3\), got \(2, 4\)",
        ),
        (
            [np.zeros((3, 3)), np.zeros((2, 3))],
            r"initial state h0 must have shape \(2, 3\), got \(3, 3\)",
        ),
    ],
)
def test_bad_initial_states_are_rejected(initial_state, message, rng):
    with pytest.raises(ValueError, match=message) as error:
        LSTM(3).forward(rng.standard_normal((2, 5, 4)), initial_state=initial_state)
    assert_one_line_error(error)


def test_bidirectional_needs_states_for_both_directions(rng):
    with pytest.raises(ValueError, match=r"initial_state must be a list of 2 arrays") as error:
        Bidirectional(GRU(3)).forward(
            rng.standard_normal((2, 5, 4)), initial_state=[np.zeros((2, 3))]
        )
    assert_one_line_error(error)


def test_backward_checks_what_it_is_given(rng):
    layer = LSTM(3, return_state=True)
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        layer.backward([None, None, None])
    layer.forward(rng.standard_normal((2, 5, 4)))
    with pytest.raises(ValueError, match=r"backward expects the list \[dy, dh_T, dc_T\]"):
        layer.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 3\).*got \(2, 4\)"):
        layer.backward([np.zeros((2, 4)), None, None])


# --------------------------------------------------------------------------- save and load

SAVE_CASES = {
    "rnn": lambda: RNN(4, return_sequences=True),
    "simple_rnn": lambda: SimpleRNN(4, activation="relu"),
    "lstm": lambda: LSTM(4, go_backwards=True, kernel_regularizer=nn.regularizers.L2(1e-3)),
    "gru": lambda: GRU(4, recurrent_activation="tanh", use_bias=False),
    "gru_reset_before": lambda: GRU(4, reset_after=False, return_sequences=True),
    "bidirectional_lstm": lambda: Bidirectional(LSTM(3)),
    "bidirectional_gru_sum": lambda: Bidirectional(GRU(3, return_sequences=True), merge_mode="sum"),
}


@pytest.mark.parametrize("case", list(SAVE_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_and_load_give_bit_identical_predictions(case, dtype, tmp_path, rng):
    nn.set_dtype(dtype)
    model = nn.Sequential([SAVE_CASES[case](), nn.Flatten(), nn.Dense(1)])
    x, y = rng.standard_normal((16, 6, 3)), rng.standard_normal((16, 1))
    model.fit(x, y, loss="mse", optimizer=nn.Adam(0.01), epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.predict(x).dtype == dtype
    names = [(type(layer).__name__, layer.name) for layer in nn.walk(loaded)]
    assert names == [(type(layer).__name__, layer.name) for layer in nn.walk(model)]


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_config_round_trips_reset_after(reset_after):
    config = GRU(3, reset_after=reset_after).get_config()
    assert config["reset_after"] is reset_after
    restored = GRU.from_config(config)
    restored.build((None, 2, 4))
    assert restored.reset_after is reset_after
    assert restored.params["bias"].shape == ((2, 9) if reset_after else (9,))


def test_simple_rnn_is_an_rnn_saved_under_its_keras_name():
    layer = SimpleRNN(3)
    assert isinstance(layer, RNN) and layer.name.startswith("simple_rnn")
    assert nn.LAYERS.get_class("SimpleRNN") is SimpleRNN
    assert nn.LAYERS.get_class("RNN") is RNN
