"""Activation values against independent scalar formulas, stability and naming."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import activations, ops

POINTS = np.array([-6.0, -2.5, -1.0, -0.1, 0.0, 0.1, 1.0, 2.5, 6.0])


def scalar_reference(name: str, z: float) -> float:
    phi = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    sig = 1.0 / (1.0 + math.exp(-z))
    return {
        "linear": z,
        "relu": max(z, 0.0),
        "leaky_relu": z if z > 0 else 0.2 * z,
        "elu": z if z > 0 else math.exp(z) - 1.0,
        "gelu": z * phi,
        "gelu_tanh": 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))),
        "silu": z * sig,
        "sigmoid": sig,
        "tanh": math.tanh(z),
    }[name]


@pytest.mark.parametrize(
    "name",
    ["linear", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"],
)
def test_activation_matches_scalar_formula(name):
    expected = [scalar_reference(name, z) for z in POINTS]
    np.testing.assert_allclose(activations.get(name)(POINTS), expected, rtol=1e-12, atol=1e-15)


def test_softmax_rows_are_exponentials_normalized():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    e = np.exp([1.0, 2.0, 3.0])
    expected = [e / e.sum(), [1 / 3, 1 / 3, 1 / 3]]
    np.testing.assert_allclose(activations.get("softmax")(z), expected, rtol=1e-12)


def test_softmax_is_stable_for_huge_logits():
    y = activations.get("softmax")(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0]])


def test_softmax_along_another_axis():
    z = np.random.default_rng(0).standard_normal((2, 3, 4))
    y = activations.Softmax(axis=1)(z)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "elu", "gelu", "tanh", "softmax"])
def test_extreme_inputs_give_finite_outputs(name):
    z = np.array([[-1e4, -50.0, 50.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = activations.get(name)(z)
    assert np.all(np.isfinite(y))


def test_sigmoid_saturates_correctly():
    y = activations.get("sigmoid")(np.array([-800.0, 800.0]))
    np.testing.assert_array_equal(y, [0.0, 1.0])


def test_erf_matches_math_erf_to_double_precision():
    x = np.linspace(-7.0, 7.0, 2001)
    expected = [math.erf(v) for v in x]
    np.testing.assert_allclose(ops.erf(x), expected, rtol=1e-14, atol=1e-16)


def test_erf_keeps_float32():
    assert ops.erf(np.ones(3, dtype=np.float32)).dtype == np.float32


def test_gelu_exact_and_tanh_approximation_differ_slightly():
    exact = activations.get("gelu")(POINTS)
    approximate = activations.get("gelu_tanh")(POINTS)
    assert 0 < np.abs(exact - approximate).max() < 1e-3


def test_leaky_relu_keras_default_slope_is_0_2():
    np.testing.assert_allclose(activations.get("leaky_relu")(np.array([-1.0])), [-0.2])


def test_activation_objects_serialize_to_name_or_config():
    assert activations.serialize(activations.get("relu")) == "relu"
    config = activations.serialize(activations.LeakyReLU(0.1))
    assert config == {"class_name": "LeakyReLU", "config": {"negative_slope": 0.1}}
    assert activations.get(config).negative_slope == 0.1


def test_swish_is_an_alias_of_silu():
    assert isinstance(activations.get("swish"), activations.SiLU)


def test_activation_names_resolve_in_layers():
    layer = nn.Dense(2, activation="gelu_tanh")
    assert isinstance(layer.activation, activations.GELU) and layer.activation.approximate
