"""Initializer distributions, fans, seeding; regularizer penalties and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import initializers, regularizers


def test_fans_of_dense_and_convolution_kernels():
    assert initializers.compute_fans((64, 32)) == (64, 32)
    assert initializers.compute_fans((3, 3, 8, 16)) == (3 * 3 * 8, 3 * 3 * 16)
    assert initializers.compute_fans((7,)) == (7, 7)


@pytest.mark.parametrize(
    ("name", "limit"),
    [("glorot_uniform", math.sqrt(6 / (200 + 100))), ("he_uniform", math.sqrt(6 / 200))],
)
def test_uniform_variance_scaling_fills_its_interval(name, limit):
    w = initializers.get(name)((200, 100))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert np.std(w) == pytest.approx(limit / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize(
    ("name", "std"), [("glorot_normal", math.sqrt(2 / 700)), ("he_normal", math.sqrt(2 / 400))]
)
def test_truncated_normal_variance_scaling_has_requested_std(name, std):
    w = initializers.get(name)((400, 300))
    assert np.std(w) == pytest.approx(std, rel=0.02)
    assert np.abs(w).max() <= 2.0 * std / 0.87962566103423978 + 1e-6  # truncated at 2 sigma


def test_orthogonal_matrix_has_orthonormal_columns():
    w = initializers.get("orthogonal")((50, 20)).astype(np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(20), atol=1e-5)


def test_orthogonal_wide_matrix_has_orthonormal_rows():
    w = initializers.Orthogonal(gain=2.0)((5, 12)).astype(np.float64)
    np.testing.assert_allclose(w @ w.T, 4.0 * np.eye(5), atol=1e-5)


def test_orthogonal_arrays_are_c_contiguous_for_any_aspect():
    # a wide kernel came back as a transposed (Fortran-ordered) view: BLAS and in-place
    # finite differences both want C order
    for shape in ((64, 256), (256, 64), (3, 3, 8, 32)):
        assert initializers.get("orthogonal")(shape).flags.c_contiguous, shape


def test_zeros_and_ones():
    np.testing.assert_array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get("ones")((4,)), np.ones(4))


def test_initializers_return_the_requested_dtype():
    for name in ("glorot_uniform", "he_normal", "orthogonal", "zeros", "uniform"):
        assert initializers.get(name)((4, 4), np.float32).dtype == np.float32


def test_seeded_initializer_is_reproducible_on_its_own():
    first = initializers.HeNormal(seed=3)((5, 5))
    nn.set_seed(99)  # the package generator does not matter
    second = initializers.HeNormal(seed=3)((5, 5))
    np.testing.assert_array_equal(first, second)


def test_package_seed_makes_unseeded_initializers_reproducible():
    nn.set_seed(5)
    first = initializers.get("glorot_uniform")((5, 5))
    nn.set_seed(5)
    np.testing.assert_array_equal(first, initializers.get("glorot_uniform")((5, 5)))


def test_unknown_initializer_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown initializer 'glorot'"):
        initializers.get("glorot")


def test_l2_penalty_and_gradient():
    w = np.array([1.0, -2.0])
    reg = regularizers.L2(0.1)
    assert reg(w) == pytest.approx(0.1 * 5)
    grad = np.zeros(2)
    reg.add_gradient(w, grad)
    np.testing.assert_allclose(grad, [0.2, -0.4])


def test_l1_penalty_and_gradient():
    w = np.array([1.0, -2.0])
    reg = regularizers.L1(0.1)
    assert reg(w) == pytest.approx(0.3)
    grad = np.ones(2)
    reg.add_gradient(w, grad)
    np.testing.assert_allclose(grad, [1.1, 0.9])


def test_l1_l2_combines_both():
    w = np.array([3.0])
    assert regularizers.L1L2(l1=0.5, l2=0.25)(w) == pytest.approx(1.5 + 2.25)


def test_regularizer_penalty_is_added_to_the_training_loss(rng):
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    model = nn.Sequential([nn.Dense(1, kernel_regularizer=regularizers.L2(0.5))])
    model.build((None, 3))
    model.layers[0].params["kernel"][:] = [[1.0], [2.0], [0.0]]
    expected = nn.MeanSquaredError()(y, model.forward(x)) + 0.5 * 5.0
    assert model.evaluate(x, y, loss="mse") == pytest.approx(expected, rel=1e-5)
    assert model.train_on_batch(x, y, loss="mse", optimizer=nn.SGD(0.0)) == pytest.approx(
        expected, rel=1e-5
    )


def test_regularizers_serialize_with_their_factors():
    config = regularizers.serialize(regularizers.L2(1e-4))
    assert regularizers.get(config).l2 == 1e-4
