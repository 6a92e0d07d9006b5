"""ConvLSTM1D/2D/3D: values against a per-step loop, gradients, shapes, persistence, learning."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.reference import conv_lstm_forward

from .support import WithOptions

TOLERANCE = 1e-6
LAYERS = {1: nn.ConvLSTM1D, 2: nn.ConvLSTM2D, 3: nn.ConvLSTM3D}
SPATIAL = {1: (7,), 2: (5, 6), 3: (4, 3, 5)}


def random_input(rng, rank, batch=2, steps=3, channels=2):
    return rng.standard_normal((batch, steps, *SPATIAL[rank], channels))


class WithInitialState:
    """``forward(x, h0, c0)``: makes gradcheck differentiate the initial states too."""

    def __init__(self, layer):
        self.layer, self.layers = layer, [layer]

    def forward(self, x, h0, c0, training=False):
        return self.layer.forward(x, initial_state=[h0, c0], training=training)

    def backward(self, dy):
        return self.layer.backward(dy)


# --------------------------------------------------------------------------- reference
# Keras' equations with a convolution written as loops over output positions.


def reference(layer, x, states=None):
    """Outputs of every step and the final (h, c), from the plain per-step loop."""
    x = x[:, ::-1] if layer.go_backwards else x
    outputs, (h, c) = conv_lstm_forward(
        x,
        **layer.params,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        initial_state=states,
    )
    return outputs, (h, c)


OPTIONS = [
    {},
    {"padding": "same"},
    {"strides": 2},
    {"strides": 2, "padding": "same"},
    {"dilation_rate": 2, "padding": "same"},
    {"kernel_size": 2, "padding": "same"},  # even kernel: asymmetric 'same' padding
]


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_outputs_match_a_per_step_loop(rank, options, rng, float64):
    options = {"kernel_size": 3, **options}
    if rank == 3 and options.get("dilation_rate") == 2:
        options["kernel_size"] = 2  # keep the dilated kernel inside the small volume
    layer = LAYERS[rank](3, return_sequences=True, return_state=True, **options)
    x = random_input(rng, rank)
    layer.build(x.shape)
    layer.params["bias"][...] = rng.uniform(-0.5, 0.5, 12)
    y, h, c = layer.forward(x)
    expected_y, (expected_h, expected_c) = reference(layer, x)
    np.testing.assert_allclose(y, expected_y, atol=1e-12)
    np.testing.assert_allclose(h, expected_h, atol=1e-12)
    np.testing.assert_allclose(c, expected_c, atol=1e-12)


def test_go_backwards_and_initial_state_match_the_loop(rng, float64):
    layer = nn.ConvLSTM2D(2, 3, padding="same", go_backwards=True, return_sequences=True)
    x = random_input(rng, 2)
    layer.build(x.shape)
    states = [rng.uniform(-0.8, 0.8, (2, 5, 6, 2)) for _ in range(2)]
    expected, _ = reference(layer, x, states)
    np.testing.assert_allclose(layer.forward(x, initial_state=states), expected, atol=1e-12)


def test_kernel_size_one_is_an_lstm_at_every_position(rng, float64):
    conv = nn.ConvLSTM1D(3, 1, return_sequences=True)
    x = rng.standard_normal((2, 4, 5, 2))  # (N, T, L, C)
    conv.build(x.shape)
    dense = nn.LSTM(3, return_sequences=True)
    dense.build((None, 4, 2))
    for key in ("kernel", "recurrent_kernel", "bias"):
        dense.params[key][...] = conv.params[key].reshape(dense.params[key].shape)
    per_position = dense.forward(x.transpose(0, 2, 1, 3).reshape(10, 4, 2))
    expected = per_position.reshape(2, 5, 4, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(conv.forward(x), expected, atol=1e-12)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"padding": "same", "go_backwards": True, "return_sequences": True},
        {"strides": 2, "padding": "same"},
        {"dilation_rate": 2, "padding": "same", "kernel_size": 2},
        {"use_bias": False, "padding": "same"},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default",
)
def test_backward_matches_finite_differences(rank, options, rng, float64):
    options = {"kernel_size": 3, **options}
    layer = LAYERS[rank](2, **options)
    assert nn.gradcheck(layer, random_input(rng, rank)) < TOLERANCE


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_through_returned_states_and_into_initial_states(return_sequences, rng, float64):
    layer = nn.ConvLSTM2D(
        2, 3, padding="same", return_state=True, return_sequences=return_sequences
    )
    x = random_input(rng, 2)
    states = tuple(rng.uniform(-0.8, 0.8, (2, 5, 6, 2)) for _ in range(2))
    errors = nn.gradcheck(WithInitialState(layer), (x, *states), return_errors=True)
    assert set(errors) >= {"input_0", "input_1", "input_2"}  # x, h0 and c0 all checked
    assert max(errors.values()) < TOLERANCE


def test_other_activations_and_weight_penalties(rng, float64):
    layer = nn.ConvLSTM1D(
        2,
        3,
        padding="same",
        activation="gelu",
        recurrent_activation="tanh",
        kernel_regularizer=nn.regularizers.L2(0.1),
        recurrent_regularizer=nn.regularizers.L1L2(0.05, 0.05),
    )
    assert nn.gradcheck(layer, random_input(rng, 1)) < TOLERANCE


def test_a_training_step_skips_only_the_input_gradient(rng, float64):
    layer = nn.ConvLSTM2D(2, 3, padding="same")
    x = random_input(rng, 2)
    dy = rng.standard_normal((2, 5, 6, 2))
    layer.forward(x)
    dx = layer.backward(dy)
    full = {key: grad.copy() for key, grad in layer.grads.items()}
    layer.forward(x)
    assert nn.base.backward_without_input_grad(layer, dy) is None
    assert dx.shape == x.shape
    for key, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, full[key])


# --------------------------------------------------------------------------- shapes, errors


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_output_shapes(rank, padding, strides, return_sequences, rng):
    layer = LAYERS[rank](4, 3, strides=strides, padding=padding, return_sequences=return_sequences)
    x = random_input(rng, rank).astype(np.float32)
    sizes = SPATIAL[rank]
    if padding == "same":
        out = tuple(math.ceil(s / strides) for s in sizes)
    else:
        out = tuple((s - 3) // strides + 1 for s in sizes)
    expected = (2, 3, *out, 4) if return_sequences else (2, *out, 4)
    y = layer.forward(x)
    assert y.shape == expected and y.dtype == np.float32
    assert layer.compute_output_shape((None, *x.shape[1:])) == (None, *expected[1:])
    assert layer.params["kernel"].shape == (*(3,) * rank, 2, 16)
    assert layer.params["recurrent_kernel"].shape == (*(3,) * rank, 4, 16)
    assert layer.params["bias"].shape == (16,)


def test_states_returned_have_the_state_shape(rng):
    y, h, c = nn.ConvLSTM2D(3, 3, strides=2, return_state=True).forward(random_input(rng, 2))
    assert y.shape == h.shape == c.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(y, h)


def test_unit_forget_bias_opens_the_forget_gate():
    layer = nn.ConvLSTM1D(3, 3)
    layer.build((None, 2, 6, 1))
    np.testing.assert_array_equal(layer.params["bias"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("make", "shape", "message"),
    [
        (
            lambda: nn.ConvLSTM1D(2, 3, padding="causal"),
            None,
            "padding must be one of 'valid', 'same'",
        ),
        (lambda: nn.ConvLSTM2D(0, 3), None, "units must be a positive integer"),
        (lambda: nn.ConvLSTM2D(2, (3, 3, 3)), None, "kernel_size"),
        (lambda: nn.ConvLSTM2D(2, 3), (2, 3, 5, 5), "expected input of shape"),
        (lambda: nn.ConvLSTM2D(2, 3), (2, 3, 2, 5, 1), "smaller than the kernel"),
    ],
)
def test_bad_arguments_and_inputs_get_one_line_errors(make, shape, message):
    with pytest.raises(ValueError, match=message) as error:
        layer = make()
        layer.forward(np.zeros(shape, np.float32))
    assert "\n" not in str(error.value)


def test_wrong_initial_state_shape_is_named(rng):
    layer = nn.ConvLSTM2D(2, 3)
    with pytest.raises(ValueError, match=r"initial state h0 must have shape \(2, 3, 4, 2\)"):
        layer.forward(random_input(rng, 2), initial_state=[np.zeros((2, 5, 6, 2))] * 2)


# --------------------------------------------------------------------------- persistence


def test_config_and_save_load_round_trip(tmp_path, rng):
    layer = nn.ConvLSTM2D(
        3, (3, 2), strides=(1, 2), padding="same", dilation_rate=1, return_sequences=True
    )
    model = nn.Sequential([layer, nn.Flatten(), nn.Dense(1)])
    x = random_input(rng, 2).astype(np.float32)
    before = model.predict(x)
    model.save(tmp_path / "convlstm.npz")
    same = nn.load(tmp_path / "convlstm.npz")
    np.testing.assert_array_equal(same.predict(x), before)
    copy = type(layer).from_config(layer.get_config())
    assert copy.get_config() == layer.get_config()
    assert copy.filters == 3 and copy.kernel_size == (3, 2) and copy.strides == (1, 2)


def test_default_name_follows_keras():
    assert nn.ConvLSTM2D(2, 3).name.startswith("conv_lstm2d")


# --------------------------------------------------------------------------- learning


def moving_squares(n, steps=4, size=8, side=2, seed=0):
    """Frames of a ``side``-pixel square moving one pixel per frame in one of 8 directions.

    Returns ``steps`` input frames ``(n, steps, size, size, 1)`` and the next frame.
    """
    rng = np.random.default_rng(seed)
    directions = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    velocity = directions[rng.integers(len(directions), size=n)]
    low = np.where(velocity < 0, steps, 0)  # stay inside the frame for steps + 1 frames
    high = np.where(velocity > 0, size - side - steps, size - side)
    start = rng.integers(low, high + 1)
    frames = np.zeros((n, steps + 1, size, size, 1), np.float32)
    for t in range(steps + 1):
        top, left = (start + t * velocity).T
        for dy, dx in itertools.product(range(side), repeat=2):
            frames[np.arange(n), t, top + dy, left + dx] = 1.0
    return frames[:, :-1], frames[:, -1]


def test_convlstm2d_predicts_a_moving_squares_next_frame():
    x, y = moving_squares(800)
    x_test, y_test = moving_squares(200, seed=1)
    nn.set_seed(0)
    model = nn.Sequential(
        [
            nn.ConvLSTM2D(8, 3, padding="same"),
            nn.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    model.fit(
        x,
        y,
        loss="binary_crossentropy",
        optimizer=nn.Adam(0.01),
        epochs=10,
        batch_size=32,
        verbose=0,
    )
    predicted = model.predict(x_test) > 0.5
    exact = (predicted == (y_test > 0.5)).all(axis=(1, 2, 3))
    # the last input frame alone scores 0 on this: the square has always moved
    assert exact.mean() > 0.95
    assert not (x_test[:, -1] == y_test).all(axis=(1, 2, 3)).any()


def test_a_mask_carries_every_position_of_the_state_over_masked_steps(rng, float64):
    mask = np.array([[True, False, True], [False, True, False]])
    layer = nn.ConvLSTM2D(2, 3, padding="same", return_sequences=True)
    x = random_input(rng, 2)
    assert nn.gradcheck(WithOptions(layer, mask=mask), x) < TOLERANCE
    y = layer.forward(x, mask=mask)
    np.testing.assert_array_equal(y[0, 1], y[0, 0])
    np.testing.assert_array_equal(y[1, 0], 0.0)  # the initial state, zeros
    np.testing.assert_array_equal(y[1, 2], y[1, 1])
