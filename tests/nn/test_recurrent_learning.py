"""Recurrent layers learn: long-range memory, a noisy sine down to its noise floor, clipping.

Seeded end-to-end training runs with real thresholds; a few seconds each by default, the
longer variants are marked ``slow`` (``pytest -m slow``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.recurrent import GRU, LSTM, RNN


def adding_problem(n: int, steps: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hochreiter & Schmidhuber's adding problem.

    Each sequence has a value channel (uniform on [0, 1]) and a marker channel with two
    ones, one in each half; the target is the sum of the two marked values. Predicting the
    mean (1.0) scores an MSE of 2/12 ≈ 0.167; doing better needs memory across the sequence.
    """
    values = rng.uniform(0.0, 1.0, (n, steps))
    markers = np.zeros((n, steps))
    rows = np.arange(n)
    markers[rows, rng.integers(0, steps // 2, n)] = 1.0
    markers[rows, rng.integers(steps // 2, steps, n)] = 1.0
    x = np.stack([values, markers], axis=-1)
    return x, (values * markers).sum(axis=1, keepdims=True)


def noisy_sine(n: int, window: int, rng, period: float = 20.0, noise: float = 0.1):
    """Windows of ``sin(2 pi t / period + phase) + noise e_t`` and the next value to predict.

    The noise is unpredictable, so the best possible MSE is its variance, ``noise**2``.
    """
    t = np.arange(n + window)
    phase = rng.uniform(0.0, 2 * np.pi)
    series = np.sin(2 * np.pi * t / period + phase) + noise * rng.standard_normal(len(t))
    index = np.arange(n)[:, None] + np.arange(window)[None]
    return series[index][..., None], series[index[:, -1] + 1][:, None]


def train_on_adding_problem(layer_class, steps, samples, epochs, seed=0):
    rng = np.random.default_rng(seed)
    x, y = adding_problem(samples, steps, rng)
    x_test, y_test = adding_problem(1000, steps, rng)
    model = nn.Sequential([layer_class(32), nn.Dense(1)])
    model.fit(
        x,
        y,
        loss="mse",
        optimizer=nn.Adam(0.01),
        epochs=epochs,
        batch_size=64,
        verbose=0,
        seed=seed,
    )
    return model.evaluate(x_test, y_test), float(np.var(y_test))


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_learns_the_adding_problem_over_30_steps(layer_class):
    mse, trivial = train_on_adding_problem(layer_class, steps=30, samples=4000, epochs=12)
    assert trivial > 0.15
    assert mse < 0.01  # more than 15x better than predicting the mean


@pytest.mark.slow
@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_learns_the_adding_problem_over_60_steps(layer_class):
    mse, trivial = train_on_adding_problem(layer_class, steps=60, samples=6000, epochs=20)
    assert trivial > 0.15
    assert mse < 0.005


def train_on_noisy_sine(layer_class, samples, epochs, seed=0, noise=0.1):
    """Test MSE over the noise variance, and the same for the best linear predictor.

    For a sinusoid in white noise the optimal predictor from a window is linear in it, so
    least squares on the same windows is the floor a model can reach with this data.
    """
    rng = np.random.default_rng(seed)
    x, y = noisy_sine(samples, 24, rng, noise=noise)
    x_test, y_test = noisy_sine(2000, 24, rng, noise=noise)
    model = nn.Sequential([layer_class(16), nn.Dense(1)])
    batch_size = 32
    schedule = nn.CosineDecay(0.01, decay_steps=epochs * -(-samples // batch_size))
    model.fit(
        x,
        y,
        loss="mse",
        optimizer=nn.Adam(schedule),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        seed=seed,
    )
    design = np.c_[x[..., 0], np.ones(samples)]
    weights = np.linalg.lstsq(design, y, rcond=None)[0]
    linear = np.mean((np.c_[x_test[..., 0], np.ones(len(x_test))] @ weights - y_test) ** 2)
    return model.evaluate(x_test, y_test) / noise**2, float(linear) / noise**2


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_predicts_a_noisy_sine_one_step_ahead_near_the_noise_floor(layer_class):
    ratio, _ = train_on_noisy_sine(layer_class, samples=2000, epochs=20)
    assert ratio < 1.2  # test MSE within 20% of the noise variance


@pytest.mark.slow
@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_predicts_a_noisy_sine_as_well_as_the_optimal_linear_predictor(layer_class):
    ratio, linear_ratio = train_on_noisy_sine(layer_class, samples=6000, epochs=30)
    assert ratio < 1.02 * linear_ratio


def epoch_losses(global_clipnorm):
    """SGD on an RNN whose recurrent kernel has gain 1.5 (gradients grow through time)."""
    rng = np.random.default_rng(0)
    x, y = adding_problem(1024, 30, rng)
    nn.set_seed(0)
    model = nn.Sequential(
        [RNN(32, recurrent_initializer=nn.initializers.Orthogonal(gain=1.5)), nn.Dense(1)]
    )
    optimizer = nn.SGD(0.2, global_clipnorm=global_clipnorm)
    with np.errstate(all="ignore"):
        history = model.fit(
            x, y, loss="mse", optimizer=optimizer, epochs=8, batch_size=32, verbose=0, shuffle=False
        )
    return np.array(history.history["loss"])


def test_global_norm_clipping_tames_exploding_gradients():
    unclipped = epoch_losses(global_clipnorm=None)
    assert not np.all(np.isfinite(unclipped)) or unclipped.max() > 1e6  # diverges
    clipped = epoch_losses(global_clipnorm=0.25)
    assert np.all(np.isfinite(clipped))
    assert clipped[-1] < 0.25 * clipped[0] and clipped[-1] < 0.2
    assert np.all(np.diff(clipped) < 0.05)  # no blow-ups on the way
