"""Loss values against hand-computed numbers, stability, shapes and names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import losses


def test_mse_value_and_gradient():
    value, grad = nn.MeanSquaredError().value_and_grad([[1.0], [2.0]], np.array([[2.0], [0.0]]))
    assert value == pytest.approx((1 + 4) / 2)
    np.testing.assert_allclose(grad, [[2 * 1 / 2], [2 * -2 / 2]])


def test_mae_value_and_gradient():
    value, grad = nn.MeanAbsoluteError().value_and_grad([1.0, 2.0], np.array([2.0, 0.0]))
    assert value == pytest.approx(1.5)
    np.testing.assert_allclose(grad, [0.5, -0.5])


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    value, grad = nn.Huber(delta=1.0).value_and_grad([0.0, 0.0], np.array([0.5, 3.0]))
    assert value == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)
    np.testing.assert_allclose(grad, [0.5 / 2, 1.0 / 2])


def test_binary_crossentropy_from_probabilities():
    value = nn.BinaryCrossentropy()([1.0, 0.0], np.array([0.8, 0.4]))
    assert value == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_binary_crossentropy_from_logits_equals_sigmoid_then_probabilities():
    z = np.array([-2.0, 0.5, 3.0])
    y = np.array([0.0, 1.0, 1.0])
    p = 1 / (1 + np.exp(-z))
    assert nn.BinaryCrossentropy(from_logits=True)(y, z) == pytest.approx(
        nn.BinaryCrossentropy()(y, p), rel=1e-9
    )


def test_binary_crossentropy_from_logits_is_stable_for_huge_logits():
    value, grad = nn.BinaryCrossentropy(from_logits=True).value_and_grad(
        [1.0, 0.0], np.array([-1000.0, 1000.0])
    )
    assert value == pytest.approx(1000.0)
    np.testing.assert_allclose(grad, [-0.5, 0.5])


def test_binary_crossentropy_from_probabilities_clips_zero_and_one():
    value = nn.BinaryCrossentropy()([1.0], np.array([0.0]))
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_categorical_crossentropy_from_probabilities():
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    y_pred = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    expected = -(math.log(0.7) + math.log(0.5)) / 2
    assert nn.CategoricalCrossentropy()(y_true, y_pred) == pytest.approx(expected)


def test_categorical_crossentropy_from_logits_fused_gradient_is_softmax_minus_target():
    z = np.array([[1.0, 2.0, 0.5]])
    y = np.array([[0.0, 0.0, 1.0]])
    value, grad = nn.CategoricalCrossentropy(from_logits=True).value_and_grad(y, z)
    softmax = np.exp(z) / np.exp(z).sum()
    assert value == pytest.approx(-math.log(softmax[0, 2]))
    np.testing.assert_allclose(grad, softmax - y)


def test_categorical_crossentropy_from_logits_is_stable_for_huge_logits():
    value = nn.CategoricalCrossentropy(from_logits=True)([[1.0, 0.0]], np.array([[0.0, 1e4]]))
    assert value == pytest.approx(1e4)


def test_sparse_matches_categorical_with_one_hot_targets(rng):
    z = rng.standard_normal((6, 4))
    ids = rng.integers(0, 4, 6)
    for from_logits in (True, False):
        pred = z if from_logits else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        sparse = nn.SparseCategoricalCrossentropy(from_logits).value_and_grad(ids, pred)
        dense = nn.CategoricalCrossentropy(from_logits).value_and_grad(np.eye(4)[ids], pred)
        assert sparse[0] == pytest.approx(dense[0])
        np.testing.assert_allclose(sparse[1], dense[1], atol=1e-12)


def test_sparse_categorical_accepts_a_trailing_unit_axis(rng):
    z = rng.standard_normal((5, 3))
    ids = rng.integers(0, 3, 5)
    loss = nn.SparseCategoricalCrossentropy(from_logits=True)
    assert loss(ids[:, None], z) == loss(ids, z)


def test_sparse_categorical_rejects_out_of_range_class_ids():
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\)"):
        nn.SparseCategoricalCrossentropy()([0, 3], np.full((2, 3), 1 / 3))


def test_flat_targets_are_reshaped_to_column_predictions():
    y_pred = np.array([[1.0], [2.0], [3.0]])
    assert nn.MeanSquaredError()([1.0, 2.0, 4.0], y_pred) == pytest.approx(1 / 3)


def test_mismatched_target_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"MeanSquaredError.*\(2,\).*\(3, 1\)"):
        nn.MeanSquaredError()([1.0, 2.0], np.zeros((3, 1)))


def test_gradient_keeps_the_prediction_dtype():
    y_pred = np.zeros((4, 3), dtype=np.float32)
    for loss in (nn.MeanSquaredError(), nn.Huber(), nn.CategoricalCrossentropy(from_logits=True)):
        assert loss.value_and_grad(np.eye(4, 3), y_pred)[1].dtype == np.float32


def test_losses_resolve_by_keras_names():
    assert isinstance(losses.get("mean_squared_error"), nn.MeanSquaredError)
    assert isinstance(
        losses.get("sparse_categorical_crossentropy"), nn.SparseCategoricalCrossentropy
    )


def test_unknown_loss_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown loss 'msee'.*mse"):
        losses.get("msee")


def test_losses_serialize_with_their_options():
    assert losses.serialize(nn.MeanSquaredError()) == "mse"
    config = losses.serialize(nn.BinaryCrossentropy(from_logits=True))
    assert losses.get(config).from_logits is True
