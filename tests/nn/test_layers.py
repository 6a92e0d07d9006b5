"""Forward behaviour of the core and normalization layers."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn

# ----------------------------------------------------------------------------- Dense


def test_dense_computes_affine_map_then_activation(rng):
    layer = nn.Dense(2, activation="relu")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    y = layer.forward(x)
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    expected = np.maximum(x.astype(np.float64) @ kernel + bias, 0.0)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)


def test_dense_parameters_follow_keras_layout():
    layer = nn.Dense(5)
    layer.build((None, 3))
    assert layer.params["kernel"].shape == (3, 5)
    assert layer.params["bias"].shape == (5,)
    assert set(layer.grads) == set(layer.params)
    assert layer.count_params() == 3 * 5 + 5


def test_dense_default_kernel_is_glorot_uniform_and_bias_zero():
    layer = nn.Dense(300)
    layer.build((None, 200))
    limit = np.sqrt(6.0 / (200 + 300))
    kernel = layer.params["kernel"]
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit
    np.testing.assert_array_equal(layer.params["bias"], 0.0)


def test_dense_applies_to_the_last_axis_of_sequences(rng):
    layer = nn.Dense(2)
    x = rng.standard_normal((3, 4, 5))
    y = layer.forward(x)
    assert y.shape == (3, 4, 2)
    np.testing.assert_allclose(y[1, 2], x[1, 2] @ layer.params["kernel"], rtol=1e-5, atol=1e-6)


def test_dense_backward_returns_input_gradient_and_stores_parameter_gradients(rng):
    layer = nn.Dense(2)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(x)
    dy = rng.standard_normal((4, 2)).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, dy @ layer.params["kernel"].T, rtol=1e-5)
    np.testing.assert_allclose(layer.grads["kernel"], x.T @ dy, rtol=1e-5)
    np.testing.assert_allclose(layer.grads["bias"], dy.sum(axis=0), rtol=1e-5)


def test_dense_backward_overwrites_rather_than_accumulates(rng):
    layer = nn.Dense(2)
    x = rng.standard_normal((4, 3))
    layer.forward(x)
    dy = np.ones((4, 2))
    layer.backward(dy)
    first = layer.grads["kernel"].copy()
    layer.backward(dy)
    np.testing.assert_array_equal(layer.grads["kernel"], first)


def test_dense_does_not_modify_its_input_or_upstream_gradient(rng):
    layer = nn.Dense(3, activation="relu")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    dy = rng.standard_normal((4, 3)).astype(np.float32)
    x_copy, dy_copy = x.copy(), dy.copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dy, dy_copy)


def test_dense_rejects_input_with_wrong_feature_count():
    layer = nn.Dense(2, name="head")
    layer.forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"Dense 'head'.*\(None, \.\.\., 3\).*\(5, 4\)"):
        layer.forward(np.zeros((5, 4)))


def test_dense_rejects_one_dimensional_input():
    with pytest.raises(ValueError, match=r"Dense 'd'.*got \(3,\)"):
        nn.Dense(2, name="d").forward(np.zeros(3))


def test_dense_rejects_gradient_of_wrong_shape():
    layer = nn.Dense(2, name="d")
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"Dense 'd'.*\(4, 2\).*\(4, 3\)"):
        layer.backward(np.zeros((4, 3)))


def test_backward_before_forward_is_an_error():
    layer = nn.Dense(2, name="d")
    layer.build((None, 3))
    with pytest.raises(RuntimeError, match=r"before forward"):
        layer.backward(np.zeros((1, 2)))


def test_unknown_activation_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown activation 'rleu'.*relu"):
        nn.Dense(2, activation="rleu")


# ----------------------------------------------------------------------------- Activation


def test_activation_layer_applies_function_by_name(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(nn.Activation("tanh").forward(x), np.tanh(x), rtol=1e-6)


def test_activation_layer_backward_multiplies_by_derivative(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    layer = nn.Activation("sigmoid")
    y = layer.forward(x)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), y * (1 - y), rtol=1e-6)


# ----------------------------------------------------------------------------- Dropout


def test_dropout_is_identity_at_inference(rng):
    x = rng.standard_normal((10, 10))
    layer = nn.Dropout(0.5)
    np.testing.assert_array_equal(layer.forward(x, training=False), x.astype(np.float32))
    np.testing.assert_array_equal(layer.backward(np.ones((10, 10))), np.ones((10, 10)))


def test_dropout_zeroes_about_rate_and_scales_survivors():
    x = np.ones((200, 500), dtype=np.float32)
    y = nn.Dropout(0.3, seed=0).forward(x, training=True)
    dropped = np.mean(y == 0.0)
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0.0], 1.0 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_dropout_backward_uses_the_forward_mask(rng):
    layer = nn.Dropout(0.5, seed=1)
    y = layer.forward(np.ones((20, 20)), training=True)
    dx = layer.backward(np.ones((20, 20)))
    np.testing.assert_array_equal(dx, y)


def test_dropout_with_the_same_seed_gives_the_same_mask():
    x = np.ones((30, 30))
    first = nn.Dropout(0.5, seed=7).forward(x, training=True)
    second = nn.Dropout(0.5, seed=7).forward(x, training=True)
    np.testing.assert_array_equal(first, second)


def test_dropout_draws_a_new_mask_each_call():
    layer = nn.Dropout(0.5, seed=7)
    x = np.ones((30, 30))
    assert not np.array_equal(layer.forward(x, training=True), layer.forward(x, training=True))


def test_dropout_rate_must_be_below_one():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        nn.Dropout(1.0)


# ----------------------------------------------------------------------------- Flatten, Reshape


def test_flatten_keeps_the_batch_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    layer = nn.Flatten()
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x.reshape(2, 12).astype(np.float32))
    assert layer.backward(np.ones((2, 12))).shape == (2, 3, 4)


def test_reshape_to_target_shape_with_inferred_axis(rng):
    layer = nn.Reshape((3, -1))
    y = layer.forward(rng.standard_normal((5, 12)))
    assert y.shape == (5, 3, 4)
    assert layer.compute_output_shape((None, 12)) == (None, 3, 4)
    assert layer.backward(np.ones((5, 3, 4))).shape == (5, 12)


def test_reshape_to_incompatible_size_is_an_error():
    with pytest.raises(ValueError, match=r"Reshape 'r'.*\(12,\).*\(5,\)"):
        nn.Reshape((5,), name="r").forward(np.zeros((2, 12)))


# ----------------------------------------------------------------------------- Embedding


def test_embedding_looks_up_rows():
    layer = nn.Embedding(5, 3)
    ids = np.array([[4, 0], [2, 2]])
    y = layer.forward(ids)
    table = layer.params["embeddings"]
    assert table.shape == (5, 3)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y[0, 0], table[4])
    np.testing.assert_array_equal(y[1, 1], table[2])


def test_embedding_backward_sums_gradients_of_repeated_ids_and_returns_none():
    layer = nn.Embedding(4, 2)
    layer.forward(np.array([[1, 1, 3]]))
    dy = np.array([[[1.0, 2.0], [10.0, 20.0], [5.0, 5.0]]])
    assert layer.backward(dy) is None
    expected = np.array([[0, 0], [11, 22], [0, 0], [5, 5]], dtype=np.float32)
    np.testing.assert_array_equal(layer.grads["embeddings"], expected)


def test_embedding_default_initializer_is_uniform_005():
    layer = nn.Embedding(1000, 16)
    layer.build((None, 1))
    table = layer.params["embeddings"]
    assert np.abs(table).max() <= 0.05
    assert np.abs(table).max() > 0.049


@pytest.mark.parametrize("bad", [[[0, 5]], [[-1, 2]]])
def test_embedding_out_of_range_ids_are_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"Embedding 'words'.*\[0, 5\)"):
        nn.Embedding(5, 2, name="words").forward(np.array(bad))


def test_embedding_rejects_fractional_ids():
    with pytest.raises(ValueError, match=r"integer ids"):
        nn.Embedding(5, 2).forward(np.array([[0.5, 1.0]]))


def test_embedding_accepts_whole_number_floats():
    layer = nn.Embedding(5, 2)
    np.testing.assert_array_equal(layer.forward(np.array([[3.0]])), layer.forward(np.array([[3]])))


def test_embedding_with_mask_zero_masks_the_padding_id():
    layer = nn.Embedding(5, 2, mask_zero=True)
    ids = np.array([[3, 1, 0, 0], [0, 2, 4, 0]])
    np.testing.assert_array_equal(
        layer.compute_mask(ids), [[True, True, False, False], [False, True, True, False]]
    )
    np.testing.assert_array_equal(layer.forward(ids)[0, 2], layer.params["embeddings"][0])


def test_embedding_without_mask_zero_makes_no_mask():
    assert nn.Embedding(5, 2).compute_mask(np.array([[0, 1]])) is None


def test_embedding_config_round_trips_mask_zero():
    config = nn.Embedding(5, 2, mask_zero=True).get_config()
    assert config["mask_zero"] is True
    assert nn.Embedding.from_config(config).mask_zero is True


# ----------------------------------------------------------------------------- BatchNormalization


def test_batch_normalization_training_output_has_zero_mean_unit_variance(rng):
    x = rng.normal(5.0, 3.0, size=(64, 4))
    y = nn.BatchNormalization(epsilon=1e-6).forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-4)


def test_batch_normalization_updates_moving_statistics_with_momentum(rng):
    x = rng.normal(2.0, 3.0, size=(32, 3))
    layer = nn.BatchNormalization(momentum=0.9)
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.1 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-5)


def test_batch_normalization_inference_uses_moving_statistics(rng):
    layer = nn.BatchNormalization(epsilon=1e-3)
    layer.build((None, 2))
    layer.state["moving_mean"][:] = [1.0, -2.0]
    layer.state["moving_variance"][:] = [4.0, 0.25]
    layer.params["gamma"][:] = [2.0, 1.0]
    layer.params["beta"][:] = [0.5, 0.0]
    x = np.array([[3.0, -1.0], [1.0, -2.0]])
    expected = np.array([2.0, 1.0]) * (x - [1.0, -2.0]) / np.sqrt([4.001, 0.251]) + [0.5, 0.0]
    np.testing.assert_allclose(layer.forward(x, training=False), expected, rtol=1e-6)


def test_batch_normalization_inference_leaves_moving_statistics_alone(rng):
    layer = nn.BatchNormalization()
    layer.forward(rng.standard_normal((8, 3)), training=False)
    np.testing.assert_array_equal(layer.state["moving_mean"], 0.0)
    np.testing.assert_array_equal(layer.state["moving_variance"], 1.0)


def test_frozen_batch_normalization_runs_in_inference_mode(rng):
    layer = nn.BatchNormalization(trainable=False)
    x = rng.normal(3.0, 1.0, size=(8, 3))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, x / np.sqrt(1.0 + 1e-3), rtol=1e-6)
    np.testing.assert_array_equal(layer.state["moving_mean"], 0.0)


def test_batch_normalization_normalizes_each_channel_of_channels_last_input(rng):
    x = rng.normal(0.0, 1.0, size=(4, 5, 6, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -5.0]
    y = nn.BatchNormalization(epsilon=1e-8).forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, rtol=1e-4)


def test_batch_normalization_keras_defaults():
    layer = nn.BatchNormalization()
    assert (layer.momentum, layer.epsilon) == (0.99, 1e-3)


# ----------------------------------------------------------------------------- LayerNormalization


def test_layer_normalization_normalizes_each_row(rng):
    x = rng.normal(4.0, 2.0, size=(3, 5, 8))
    y = nn.LayerNormalization(epsilon=1e-8).forward(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=-1), 1.0, rtol=1e-4)


def test_layer_normalization_applies_gamma_and_beta(rng):
    layer = nn.LayerNormalization()
    x = rng.standard_normal((2, 3))
    layer.build((None, 3))
    layer.params["gamma"][:] = [1.0, 2.0, 3.0]
    layer.params["beta"][:] = [0.0, 1.0, -1.0]
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * [1.0, 2.0, 3.0] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-5, atol=1e-6)


def test_layer_normalization_is_the_same_in_training_and_inference(rng):
    layer = nn.LayerNormalization()
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(layer.forward(x, training=True), layer.forward(x))
