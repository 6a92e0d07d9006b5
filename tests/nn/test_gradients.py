"""Backward passes agree with finite differences (float64, relative error < 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn

from .support import ACTIVATION_NAMES

TOLERANCE = 1e-6


def away_from_kinks(rng, shape, scale=1.0):
    """Inputs at least 0.05 from 0, where relu-like functions have a kink."""
    values = rng.uniform(0.05, 2.0, size=shape) * scale
    return values * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_layer_backward_matches_finite_differences(name, rng, float64):
    layer = nn.Activation(name)
    assert nn.gradcheck(layer, away_from_kinks(rng, (4, 5))) < TOLERANCE


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_dense_with_activation_backward_matches_finite_differences(name, rng, float64):
    layer = nn.Dense(3, activation=name)
    layer.build((None, 4))
    # push pre-activations away from 0 so relu-like kinks are not crossed by the probe
    layer.params["bias"][:] = [0.7, -0.9, 1.1]
    assert nn.gradcheck(layer, rng.standard_normal((5, 4)) * 0.1) < TOLERANCE


def test_parameterized_activations_backward_matches_finite_differences(rng, float64):
    for activation in (
        nn.activations.LeakyReLU(0.05),
        nn.activations.ELU(0.5),
        nn.activations.GELU(approximate=True),
        nn.activations.Softmax(axis=1),
    ):
        layer = nn.Activation(activation)
        assert nn.gradcheck(layer, away_from_kinks(rng, (2, 3, 4))) < TOLERANCE, activation


def test_gelu_backward_in_the_tail_where_erf_switches_pieces(float64):
    x = np.array([[-5.5, -3.0, -2.01, -1.99, 0.3, 1.99, 2.01, 4.0, 5.9, 7.0]])
    assert nn.gradcheck(nn.Activation("gelu"), x) < TOLERANCE


def test_dense_backward_matches_finite_differences(rng, float64):
    assert nn.gradcheck(nn.Dense(3), rng.standard_normal((5, 4))) < TOLERANCE


def test_dense_without_bias_backward_matches_finite_differences(rng, float64):
    assert nn.gradcheck(nn.Dense(3, use_bias=False), rng.standard_normal((5, 4))) < TOLERANCE


def test_dense_on_sequences_backward_matches_finite_differences(rng, float64):
    layer = nn.Dense(3, activation="tanh")
    assert nn.gradcheck(layer, rng.standard_normal((2, 4, 5))) < TOLERANCE


def test_dense_with_one_unit_and_one_feature_backward_matches_finite_differences(rng, float64):
    assert nn.gradcheck(nn.Dense(1), rng.standard_normal((6, 1))) < TOLERANCE


@pytest.mark.parametrize("regularizer", [nn.regularizers.L1(0.1), nn.regularizers.L2(0.1)])
def test_kernel_regularizer_gradient_matches_finite_differences(regularizer, rng, float64):
    layer = nn.Dense(3, kernel_regularizer=regularizer)
    assert nn.gradcheck(layer, rng.standard_normal((5, 4))) < TOLERANCE


@pytest.mark.parametrize("training", [False, True])
def test_dropout_backward_matches_finite_differences(training, rng, float64):
    layer = nn.Dropout(0.4, seed=3)
    assert nn.gradcheck(layer, rng.standard_normal((6, 5)), training=training) < TOLERANCE


def test_unseeded_dropout_backward_matches_finite_differences(rng, float64):
    layer = nn.Dropout(0.5)
    assert nn.gradcheck(layer, rng.standard_normal((6, 5)), training=True) < TOLERANCE


def test_flatten_backward_matches_finite_differences(rng, float64):
    assert nn.gradcheck(nn.Flatten(), rng.standard_normal((3, 2, 4))) < TOLERANCE


def test_reshape_backward_matches_finite_differences(rng, float64):
    assert nn.gradcheck(nn.Reshape((4, -1)), rng.standard_normal((3, 2, 4))) < TOLERANCE


def test_embedding_backward_matches_finite_differences(rng, float64):
    ids = np.array([[0, 3, 3], [5, 1, 0]])  # repeated ids must accumulate
    errors = nn.gradcheck(nn.Embedding(6, 4, name="embedding"), ids, return_errors=True)
    assert set(errors) == {"embedding/embeddings"}
    assert errors["embedding/embeddings"] < TOLERANCE


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 2)])
def test_batch_normalization_backward_matches_finite_differences(training, shape, rng, float64):
    layer = nn.BatchNormalization()
    layer.build((None, *shape[1:]))
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, shape[-1])
    layer.params["beta"][:] = rng.standard_normal(shape[-1])
    layer.state["moving_mean"][:] = rng.standard_normal(shape[-1])
    layer.state["moving_variance"][:] = rng.uniform(0.5, 2.0, shape[-1])
    x = rng.standard_normal(shape) * 2.0 + 1.0
    assert nn.gradcheck(layer, x, training=training) < TOLERANCE


def test_layer_normalization_backward_matches_finite_differences(rng, float64):
    layer = nn.LayerNormalization()
    layer.build((None, 3, 6))
    layer.params["gamma"][:] = rng.uniform(0.5, 1.5, 6)
    layer.params["beta"][:] = rng.standard_normal(6)
    assert nn.gradcheck(layer, rng.standard_normal((2, 3, 6))) < TOLERANCE


@pytest.mark.parametrize("training", [False, True])
def test_sequential_model_backward_matches_finite_differences(training, rng, float64):
    model = nn.Sequential(
        [
            nn.Dense(6, activation="tanh"),
            nn.BatchNormalization(),
            nn.Dropout(0.3, seed=1),
            nn.Dense(5, activation="gelu"),
            nn.LayerNormalization(),
            nn.Dense(2, activation="softmax"),
        ]
    )
    assert nn.gradcheck(model, rng.standard_normal((6, 4)), training=training) < TOLERANCE


def test_embedding_model_backward_matches_finite_differences(rng, float64):
    model = nn.Sequential([nn.Embedding(7, 3), nn.Flatten(), nn.Dense(2, activation="sigmoid")])
    assert nn.gradcheck(model, rng.integers(0, 7, size=(4, 5))) < TOLERANCE


LOSS_CASES = [
    ("mse", nn.MeanSquaredError(), "real"),
    ("mae", nn.MeanAbsoluteError(), "real"),
    ("huber", nn.Huber(delta=0.5), "real"),
    ("bce probabilities", nn.BinaryCrossentropy(), "probability"),
    ("bce logits", nn.BinaryCrossentropy(from_logits=True), "real"),
    ("cce probabilities", nn.CategoricalCrossentropy(), "probability"),
    ("cce logits", nn.CategoricalCrossentropy(from_logits=True), "real"),
]


@pytest.mark.parametrize(("label", "loss", "kind"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradient_matches_finite_differences(label, loss, kind, rng):
    y_pred = rng.uniform(0.1, 0.9, (5, 3)) if kind == "probability" else rng.normal(size=(5, 3))
    if "cce" in label:
        y_true = np.eye(3)[rng.integers(0, 3, 5)]
    elif "bce" in label:
        y_true = rng.integers(0, 2, (5, 3)).astype(float)
    else:
        # keep every error away from the kinks of MAE (0) and Huber (+-delta)
        y_true = y_pred + away_from_kinks(rng, (5, 3), scale=0.3) + 0.25 * np.sign(y_pred)
    assert nn.gradcheck_loss(loss, y_true, y_pred) < TOLERANCE


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_gradient_matches_finite_differences(from_logits, rng):
    loss = nn.SparseCategoricalCrossentropy(from_logits=from_logits)
    y_pred = rng.normal(size=(2, 3, 4)) if from_logits else rng.uniform(0.1, 0.9, (2, 3, 4))
    assert nn.gradcheck_loss(loss, rng.integers(0, 4, (2, 3)), y_pred) < TOLERANCE


def test_categorical_crossentropy_with_soft_targets_gradient_matches(rng):
    y_true = rng.dirichlet(np.ones(4), size=3) * 0.8  # rows need not sum to one
    loss = nn.CategoricalCrossentropy(from_logits=True)
    assert nn.gradcheck_loss(loss, y_true, rng.normal(size=(3, 4))) < TOLERANCE
