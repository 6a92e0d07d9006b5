"""tradenn.nn.reference: the fast layers equal the plain references, and every reference
backward agrees with finite differences of its own forward."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import reference as ref
from tradenn.nn.gradient_check import numerical_gradient, relative_error

TOLERANCE = 1e-7


def assert_backward_matches_finite_differences(forward, backward, arrays):
    """Check ``backward(dy)`` against central differences of ``L = sum(forward() * dy)``.

    ``arrays`` maps a name to an array that ``forward`` reads (perturbed in place);
    ``backward(dy)`` returns the analytic gradients under the same names.
    """
    dy = np.random.default_rng(1).standard_normal(np.shape(forward()))
    analytic = backward(dy)
    for name, array in arrays.items():
        numerical = numerical_gradient(lambda: float(np.vdot(forward(), dy)), array)
        assert relative_error(analytic[name], numerical) < TOLERANCE, name


# --------------------------------------------------------------------------- activations

ACTIVATIONS = {
    "relu": (ref.relu_forward, ref.relu_backward, {}),
    "tanh": (ref.tanh_forward, ref.tanh_backward, {}),
    "sigmoid": (ref.sigmoid_forward, ref.sigmoid_backward, {}),
    "gelu": (ref.gelu_forward, ref.gelu_backward, {}),
    "gelu_tanh": (ref.gelu_forward, ref.gelu_backward, {"approximate": True}),
    "softmax": (ref.softmax_forward, ref.softmax_backward, {}),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_equal_their_reference(name, rng):
    forward, backward, options = ACTIVATIONS[name]
    z = rng.standard_normal((4, 5)) * 3.0
    dy = rng.standard_normal(z.shape)
    fast = nn.activations.get(name)
    y = fast.forward(z)
    np.testing.assert_allclose(y, forward(z, **options), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        fast.backward(dy, z, y), backward(dy, z, **options), rtol=1e-10, atol=1e-13
    )


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_references_match_finite_differences(name, rng):
    forward, backward, options = ACTIVATIONS[name]
    z = rng.standard_normal((3, 4)) * 2.0 + 0.05  # away from relu's kink at 0
    assert_backward_matches_finite_differences(
        lambda: forward(z, **options), lambda dy: {"z": backward(dy, z, **options)}, {"z": z}
    )


# --------------------------------------------------------------------------- layers with parameters


def check_layer(layer, x, forward, backward, training=False, **options):
    """Fast layer == reference (output, dx, parameter gradients); reference == finite diffs."""
    y = layer.forward(x, training=training)
    params = {key: value.copy() for key, value in layer.params.items()}
    np.testing.assert_allclose(y, forward(x, **params, **options), rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward(dy)
    expected_dx, expected_grads = backward(dy, x, **params, **options)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-12)
    assert set(expected_grads) == set(layer.grads)
    for key, expected in expected_grads.items():
        np.testing.assert_allclose(layer.grads[key], expected, rtol=1e-10, atol=1e-12)

    def reference_backward(dy):
        dx, grads = backward(dy, x, **params, **options)
        return {"x": dx, **grads}

    assert_backward_matches_finite_differences(
        lambda: forward(x, **params, **options), reference_backward, {"x": x, **params}
    )


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_equals_its_reference(use_bias, rng, float64):
    layer = nn.Dense(3, use_bias=use_bias)
    layer.build((None, 2, 4))
    if use_bias:
        layer.params["bias"][...] = rng.standard_normal(3)
    check_layer(layer, rng.standard_normal((2, 2, 4)), ref.dense_forward, ref.dense_backward)


@pytest.mark.parametrize(
    ("layer_class", "x_shape", "forward", "backward", "training"),
    [
        (
            nn.LayerNormalization,
            (2, 3, 5),
            ref.layer_normalization_forward,
            ref.layer_normalization_backward,
            False,
        ),
        (
            nn.BatchNormalization,
            (5, 3, 4),
            ref.batch_normalization_forward,
            ref.batch_normalization_backward,
            True,
        ),
    ],
    ids=["layer_normalization", "batch_normalization_in_training"],
)
def test_normalization_equals_its_reference(
    layer_class, x_shape, forward, backward, training, rng, float64
):
    layer = layer_class()
    channels = x_shape[-1]
    layer.build((None, *x_shape[1:]))
    layer.params["gamma"][...] = rng.standard_normal(channels)
    layer.params["beta"][...] = rng.standard_normal(channels)
    check_layer(layer, rng.standard_normal(x_shape), forward, backward, training=training)


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3, "padding": "valid"},
        {"kernel_size": 2, "padding": "same", "strides": 2},
        {"kernel_size": 3, "padding": "causal", "dilation_rate": 2},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_conv1d_equals_its_reference(options, rng, float64):
    layer = nn.Conv1D(3, **options)
    layer.build((None, 7, 2))
    layer.params["bias"][...] = rng.standard_normal(3)
    conv = {"strides": layer.strides, "dilation_rate": layer.dilation_rate}
    check_layer(
        layer,
        rng.standard_normal((2, 7, 2)),
        ref.conv_forward,
        ref.conv_backward,
        padding=options["padding"],
        **conv,
    )


def test_conv2d_with_same_padding_and_stride_equals_its_reference(rng, float64):
    layer = nn.Conv2D(2, (3, 2), strides=(2, 1), padding="same", use_bias=False)
    layer.build((None, 5, 4, 2))
    check_layer(
        layer,
        rng.standard_normal((2, 5, 4, 2)),
        ref.conv_forward,
        ref.conv_backward,
        strides=(2, 1),
        dilation_rate=(1, 1),
        padding="same",
    )


def test_embedding_equals_its_reference(rng, float64):
    layer = nn.Embedding(5, 3)
    ids = np.array([[0, 4, 4], [2, 0, 1]])  # repeated ids add their gradients
    y = layer.forward(ids)
    table = layer.params["embeddings"].copy()
    np.testing.assert_array_equal(y, ref.embedding_forward(ids, table))
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)
    _, grads = ref.embedding_backward(dy, ids, table)
    np.testing.assert_allclose(layer.grads["embeddings"], grads["embeddings"], rtol=1e-12)
    assert_backward_matches_finite_differences(
        lambda: ref.embedding_forward(ids, table),
        lambda dy: ref.embedding_backward(dy, ids, table)[1],
        {"embeddings": table},
    )


def test_dropout_with_its_mask_equals_its_reference(rng, float64):
    layer = nn.Dropout(0.4, seed=7)
    x = rng.standard_normal((3, 5))
    keep = np.random.default_rng(7).random(x.shape) >= 0.4
    np.testing.assert_allclose(
        layer.forward(x, training=True), ref.dropout_forward(x, keep, 0.4), rtol=1e-12
    )
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dy), ref.dropout_backward(dy, keep, 0.4), rtol=1e-12)


# --------------------------------------------------------------------------- losses


def test_mean_squared_error_equals_its_reference(rng):
    y_true, y_pred = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    value, grad = nn.losses.get("mse").value_and_grad(y_true, y_pred)
    assert value == pytest.approx(ref.mean_squared_error_forward(y_true, y_pred), rel=1e-12)
    expected = ref.mean_squared_error_backward(y_true, y_pred)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)
    assert_backward_matches_finite_differences(
        lambda: ref.mean_squared_error_forward(y_true, y_pred),
        lambda dy: {"y_pred": dy * ref.mean_squared_error_backward(y_true, y_pred)},
        {"y_pred": y_pred},
    )


def test_cross_entropy_from_logits_equals_its_reference(rng):
    logits = rng.standard_normal((4, 3)) * 3.0
    y_true = np.eye(3)[[0, 2, 1, 2]] * 0.8 + 0.1 / 1.5  # soft targets, rows not summing to 1
    loss = nn.losses.CategoricalCrossentropy(from_logits=True)
    value, grad = loss.value_and_grad(y_true, logits)
    forward, backward = (
        ref.cross_entropy_from_logits_forward,
        ref.cross_entropy_from_logits_backward,
    )
    assert value == pytest.approx(forward(y_true, logits), rel=1e-12)
    np.testing.assert_allclose(grad, backward(y_true, logits), rtol=1e-12, atol=1e-15)
    assert_backward_matches_finite_differences(
        lambda: forward(y_true, logits),
        lambda dy: {"logits": dy * backward(y_true, logits)},
        {"logits": logits},
    )


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_backward_equals_its_reference(mode, padding, rng, float64):
    pooling = {"max": nn.MaxPooling2D, "average": nn.AveragePooling2D}[mode]
    layer = pooling(3, strides=2, padding=padding)
    x = (rng.permutation(5 * 6).reshape(1, 5, 6, 1) - 15.0) * 0.1  # no near-ties for a max
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    expected, _ = ref.pooling_backward(dy, x, mode, 3, 2, padding)
    np.testing.assert_allclose(layer.backward(dy), expected, rtol=1e-12, atol=1e-15)
    assert_backward_matches_finite_differences(
        lambda: ref.pooling_forward(x, mode, 3, 2, padding),
        lambda dy: {"x": ref.pooling_backward(dy, x, mode, 3, 2, padding)[0]},
        {"x": x},
    )


# --------------------------------------------------------------------------- recurrent


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru", "gru_reset_before"])
def test_recurrent_reference_backward_matches_finite_differences(cell, rng):
    units, features, count = 2, 3, 2 if cell == "lstm" else 1
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}[cell]
    params = {
        "kernel": rng.standard_normal((features, gates * units)),
        "recurrent_kernel": rng.standard_normal((units, gates * units)),
        "bias": rng.standard_normal((2, 3 * units) if cell == "gru" else (gates * units,)),
    }
    x = rng.standard_normal((3, 4, features))
    states = [rng.standard_normal((3, units)) for _ in range(count)]
    mask = np.array([[True, False, True, True], [True, True, False, False], [False] * 4])

    def forward():
        outputs, final = ref.recurrent_forward(cell, x, **params, initial_state=states, mask=mask)
        return np.concatenate([outputs.ravel(), *(s.ravel() for s in final)])

    def backward(d):
        dy = d[: 3 * 4 * units].reshape(3, 4, units)
        d_states = np.split(d[3 * 4 * units :], count)
        dx, d_initial, grads = ref.recurrent_backward(
            cell,
            dy,
            x,
            **params,
            initial_state=states,
            mask=mask,
            d_final_states=[s.reshape(3, units) for s in d_states],
        )
        return {"x": dx, **{f"state_{i}": d for i, d in enumerate(d_initial)}, **grads}

    arrays = {"x": x, **{f"state_{i}": s for i, s in enumerate(states)}, **params}
    assert_backward_matches_finite_differences(forward, backward, arrays)


# --------------------------------------------------------------------------- attention


@pytest.mark.parametrize("use_bias", [True, False])
def test_multi_head_attention_backward_equals_its_reference(use_bias, rng, float64):
    query, value, key = (rng.standard_normal((2, 4, d)) for d in (3, 5, 2))
    mask = rng.random((2, 4, 4)) < 0.7
    mask[0, 2] = False  # a fully masked query row
    layer = nn.MultiHeadAttention(2, 3, value_dim=2, output_shape=4, use_bias=use_bias)
    y = layer.forward(query, value, key, attention_mask=mask, use_causal_mask=True)
    params = {name: array.copy() for name, array in layer.params.items()}
    options = {"attention_mask": mask, "causal": True}
    expected, _ = ref.multi_head_attention_forward(query, value, key, **params, **options)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    d_inputs = layer.backward(dy)
    (dq, dv, dk), grads = ref.multi_head_attention_backward(
        dy, query, value, key, **params, **options
    )
    for got, want in zip(d_inputs, (dq, dv, dk), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert set(grads) == set(layer.grads)
    for name, want in grads.items():
        np.testing.assert_allclose(layer.grads[name], want, rtol=1e-10, atol=1e-12)

    def reference_backward(dy):
        inputs, grads = ref.multi_head_attention_backward(
            dy, query, value, key, **params, **options
        )
        grads = {name: g for name, g in grads.items() if name != "key_bias"}  # exactly 0
        return dict(zip(("query", "value", "key"), inputs, strict=True)) | grads

    arrays = {"query": query, "value": value, "key": key}
    arrays |= {name: a for name, a in params.items() if name != "key_bias"}
    assert_backward_matches_finite_differences(
        lambda: ref.multi_head_attention_forward(query, value, key, **params, **options)[0],
        reference_backward,
        arrays,
    )


@pytest.mark.parametrize(
    "reference", [ref.multi_head_attention_forward, ref.multi_head_attention_backward]
)
def test_attention_reference_names_a_missing_kernel(reference):
    x = np.zeros((1, 2, 3))
    args = (x,) * (4 if reference is ref.multi_head_attention_backward else 3)
    with pytest.raises(TypeError, match=r"missing \['key_kernel', 'value_kernel', 'output_k"):
        reference(*args, query_kernel=np.zeros((3, 1, 2)))
