"""Sequence pooling: LastTimestep and AttentionPooling1D against loops, gradients, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.gradient_check import gradcheck
from tradenn.nn.reference import attention_pooling_forward as naive_attention_pooling
from tradenn.nn.sequence import AttentionPooling1D, LastTimestep

TOLERANCE = 1e-6


def random_query_pooling(units=None, **kwargs):
    return AttentionPooling1D(units, query_initializer=nn.initializers.RandomNormal(0, 1), **kwargs)


# ----------------------------------------------------------------------------- LastTimestep


def test_last_timestep_selects_the_final_step(rng):
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    y = LastTimestep().forward(x)
    assert y.shape == (3, 4)
    np.testing.assert_array_equal(y, x[:, 4, :])


def test_last_timestep_sends_the_gradient_to_the_final_step_only(rng):
    layer = LastTimestep()
    layer.forward(rng.standard_normal((2, 4, 3)))
    dy = rng.standard_normal((2, 3)).astype(np.float32)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dx[:, 3, :], dy)
    np.testing.assert_array_equal(dx[:, :3, :], 0.0)


def test_last_timestep_backward_matches_finite_differences(rng, float64):
    assert gradcheck(LastTimestep(), rng.standard_normal((2, 4, 3))) < TOLERANCE


def test_last_timestep_output_is_not_a_view_of_the_input(rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    y = LastTimestep().forward(x)
    x[:, -1, :] = 0.0
    assert np.all(y != 0.0)


# ----------------------------------------------------------------------------- AttentionPooling1D


@pytest.mark.parametrize("units", [None, 3])
def test_attention_pooling_matches_a_naive_loop(units, rng, float64):
    layer = random_query_pooling(units)
    x = rng.standard_normal((3, 6, 4))
    y = layer.forward(x)
    kernel = layer.params.get("kernel")
    bias = layer.params.get("bias")
    if kernel is not None:
        bias = rng.standard_normal(bias.shape)
        layer.params["bias"][...] = bias
        y = layer.forward(x)
    expected_y, expected_weights = naive_attention_pooling(x, layer.params["query"], kernel, bias)
    np.testing.assert_allclose(y, expected_y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.attention_weights, expected_weights, rtol=1e-12)
    np.testing.assert_allclose(layer.attention_weights.sum(axis=1), 1.0, rtol=1e-12)


def test_attention_pooling_parameter_shapes_follow_units(rng):
    plain = AttentionPooling1D()
    plain.forward(rng.standard_normal((2, 5, 4)))
    assert {k: v.shape for k, v in plain.params.items()} == {"query": (4,)}
    additive = AttentionPooling1D(7)
    additive.forward(rng.standard_normal((2, 5, 4)))
    assert {k: v.shape for k, v in additive.params.items()} == {
        "kernel": (4, 7),
        "bias": (7,),
        "query": (7,),
    }


def test_attention_pooling_starts_as_average_pooling(rng):
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(
        AttentionPooling1D().forward(x), nn.GlobalAveragePooling1D().forward(x), atol=1e-6
    )


def test_attention_pooling_with_huge_scores_stays_finite(float64):
    layer = AttentionPooling1D()
    layer.build((None, 3, 2))
    layer.params["query"][...] = [1.0, 0.0]
    x = np.array([[[1000.0, 1.0], [2000.0, 2.0], [1500.0, 3.0]]])
    y = layer.forward(x)
    # the step with the largest score takes (all but e^-500 of) the weight
    np.testing.assert_allclose(y, [[2000.0, 2.0]])
    assert np.all(np.isfinite(layer.backward(np.ones((1, 2)))))


@pytest.mark.parametrize("units", [None, 3])
def test_attention_pooling_backward_matches_finite_differences(units, rng, float64):
    layer = random_query_pooling(units, kernel_regularizer=None if units is None else "l2")
    x = rng.standard_normal((3, 5, 4))
    if units is not None:
        layer.build(x.shape)
        layer.params["bias"][...] = rng.standard_normal(units)
    errors = gradcheck(layer, x, return_errors=True)
    assert set(errors) == {"input", *(f"{layer.name}/{key}" for key in layer.params)}
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("units", [None, 3])
def test_attention_pooling_skips_the_input_gradient_only(units, rng):
    x = rng.standard_normal((2, 4, 3))
    dy = rng.standard_normal((2, 3))
    layer = random_query_pooling(units)
    layer.forward(x)
    layer.backward(dy)
    expected = {key: grad.copy() for key, grad in layer.grads.items()}
    layer.forward(x)
    assert nn.base.backward_without_input_grad(layer, dy) is None
    for key, grad in expected.items():
        np.testing.assert_array_equal(layer.grads[key], grad)


def test_attention_pooling_in_float32_stays_float32(rng):
    layer = random_query_pooling(4)
    y = layer.forward(rng.standard_normal((2, 5, 3)))
    dx = layer.backward(np.ones((2, 3)))
    assert y.dtype == dx.dtype == layer.grads["kernel"].dtype == np.float32


def test_attention_pooling_learns_to_attend_to_the_marked_step():
    # each sequence marks one random step (channel 0 = 1) whose channel 1 is the target:
    # attention can find it, an average over time cannot
    rng = np.random.default_rng(0)
    batch, steps = 512, 8
    x = np.zeros((batch, steps, 2), dtype=np.float32)
    marked = rng.integers(0, steps, batch)
    x[:, :, 1] = rng.standard_normal((batch, steps))
    x[np.arange(batch), marked, 0] = 1.0
    y = x[np.arange(batch), marked, 1][:, None]
    model = nn.Sequential([AttentionPooling1D(), nn.Dense(1)])
    model.fit(x, y, loss="mse", optimizer=nn.Adam(0.1), epochs=60, batch_size=64, verbose=0)
    model.predict(x, batch_size=batch)  # one batch, so the layer keeps every sample's weights
    weights_on_marked = model.layers[0].attention_weights[np.arange(batch), marked]
    assert weights_on_marked.mean() > 0.9
    assert model.evaluate(x, y) < 0.05 * float(np.var(y))


# ------------------------------------------------------------------------- config, files, errors


@pytest.mark.parametrize("layer", [LastTimestep(), AttentionPooling1D(5, kernel_regularizer="l2")])
def test_get_config_recreates_the_layer(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_model_with_sequence_pooling_saves_and_loads(tmp_path, rng):
    x = rng.standard_normal((16, 6, 3))
    y = rng.standard_normal((16, 1))
    for pooling in (AttentionPooling1D(4), AttentionPooling1D(), LastTimestep()):
        model = nn.Sequential([nn.LSTM(5, return_sequences=True), pooling, nn.Dense(1)])
        model.fit(x, y, loss="mse", optimizer=nn.Adam(0.01), epochs=2, batch_size=8, verbose=0)
        model.save(tmp_path / "model.npz")
        loaded = nn.load(tmp_path / "model.npz")
        assert type(loaded.layers[1]) is type(pooling)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        if isinstance(pooling, AttentionPooling1D):
            assert np.any(pooling.params["query"] != 0.0)  # trained, so the check means something


@pytest.mark.parametrize("units", [0, -2, 1.5, True])
def test_bad_units_is_a_clear_error(units):
    with pytest.raises(ValueError, match=r"AttentionPooling1D 'pool': units must be a positive"):
        AttentionPooling1D(units, name="pool")


@pytest.mark.parametrize("cls", [LastTimestep, AttentionPooling1D])
def test_wrong_input_rank_is_a_clear_error(cls, rng):
    with pytest.raises(ValueError, match=r"expected input of shape \(None, None, None\)"):
        cls().forward(rng.standard_normal((2, 4)))


def test_wrong_feature_count_after_build_is_a_clear_error(rng):
    layer = AttentionPooling1D()
    layer.forward(rng.standard_normal((2, 4, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(None, None, 3\)"):
        layer.forward(rng.standard_normal((2, 4, 5)))


@pytest.mark.parametrize("cls", [LastTimestep, AttentionPooling1D])
def test_backward_before_forward_is_an_error(cls):
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        cls().backward(np.ones((1, 2)))
