"""Optimizer steps against hand-computed updates; clipping, schedules and state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import optimizers, schedules


def run(optimizer, param, grads):
    """Apply one step per gradient in ``grads`` to ``param`` (in place) and return it."""
    for grad in grads:
        optimizer.apply_gradients([(np.array(grad, dtype=param.dtype), param)])
    return param


def test_sgd_step_is_learning_rate_times_gradient():
    param = run(nn.SGD(0.1), np.array([1.0, -2.0]), [[0.5, -1.0]])
    np.testing.assert_allclose(param, [1.0 - 0.05, -2.0 + 0.1])


def test_sgd_momentum_accumulates_velocity():
    # v1 = -0.1*1 = -0.1, p1 = 0.9; v2 = 0.9*-0.1 - 0.1*1 = -0.19, p2 = 0.71
    param = run(nn.SGD(0.1, momentum=0.9), np.array([1.0]), [[1.0], [1.0]])
    np.testing.assert_allclose(param, [0.71])


def test_sgd_nesterov_looks_ahead():
    # v1 = -0.1, p1 = 1 + 0.9*-0.1 - 0.1 = 0.81
    # v2 = 0.9*-0.1 - 0.1 = -0.19, p2 = 0.81 + 0.9*-0.19 - 0.1 = 0.539
    param = run(nn.SGD(0.1, momentum=0.9, nesterov=True), np.array([1.0]), [[1.0], [1.0]])
    np.testing.assert_allclose(param, [0.539])


def test_rmsprop_divides_by_root_mean_square():
    # s1 = 0.1*4 = 0.4, p1 = 1 - 0.01*2/sqrt(0.4 + 1e-7)
    param = run(nn.RMSprop(0.01, rho=0.9), np.array([1.0]), [[2.0]])
    np.testing.assert_allclose(param, [1.0 - 0.01 * 2.0 / math.sqrt(0.4 + 1e-7)])


def test_rmsprop_with_momentum_and_centering():
    lr, rho, mu, eps = 0.01, 0.9, 0.5, 1e-7
    p, s, a, m = 1.0, 0.0, 0.0, 0.0
    for g in (2.0, -1.0):
        s = rho * s + (1 - rho) * g * g
        a = rho * a + (1 - rho) * g
        m = mu * m + lr * g / math.sqrt(s - a * a + eps)
        p -= m
    optimizer = nn.RMSprop(lr, rho=rho, momentum=mu, epsilon=eps, centered=True)
    np.testing.assert_allclose(run(optimizer, np.array([1.0]), [[2.0], [-1.0]]), [p])


def test_adam_two_steps_match_hand_computation():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    p, m, v = 0.5, 0.0, 0.0
    for t, g in enumerate((0.2, -0.4), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        p -= alpha * m / (math.sqrt(v) + eps)
    np.testing.assert_allclose(run(nn.Adam(lr), np.array([0.5]), [[0.2], [-0.4]]), [p])


def test_adam_first_step_moves_each_coordinate_by_about_the_learning_rate():
    param = run(nn.Adam(0.01), np.zeros(3), [[0.1, -5.0, 100.0]])
    np.testing.assert_allclose(param, [-0.01, 0.01, -0.01], rtol=1e-3)


def test_adamw_decays_weights_before_the_adam_step():
    lr, wd = 0.1, 0.5
    p = 2.0 * (1 - lr * wd)  # decay: 1.9
    p -= lr * 1.0  # the first Adam step moves by lr * sign(g) (up to epsilon)
    param = run(nn.AdamW(lr, weight_decay=wd), np.array([2.0]), [[3.0]])
    np.testing.assert_allclose(param, [p], rtol=1e-6)


def test_adamw_with_zero_decay_equals_adam():
    grads = [[0.3, -0.1], [0.2, 0.5]]
    adam = run(nn.Adam(0.05), np.array([1.0, 2.0]), grads)
    adamw = run(nn.AdamW(0.05, weight_decay=0.0), np.array([1.0, 2.0]), grads)
    np.testing.assert_array_equal(adam, adamw)


def test_updates_are_in_place_on_the_live_arrays():
    param = np.array([1.0, 2.0], dtype=np.float32)
    alias = param
    nn.Adam().apply_gradients([(np.ones(2, np.float32), param)])
    assert alias is param and param.dtype == np.float32
    assert not np.array_equal(param, [1.0, 2.0])


def test_step_updates_every_trainable_parameter_of_a_model():
    model = nn.Sequential([nn.Dense(3), nn.Dense(1)])
    model.build((None, 2))
    for layer in model.layers:
        for key in layer.grads:
            layer.grads[key][...] = 1.0
    before = model.get_weights()
    nn.SGD(0.5).step(model)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_allclose(new, old - 0.5)


def test_step_skips_frozen_layers():
    model = nn.Sequential([nn.Dense(3, trainable=False), nn.Dense(1)])
    model.build((None, 2))
    for layer in model.layers:
        layer.grads["kernel"][...] = 1.0
    frozen = model.layers[0].params["kernel"].copy()
    nn.SGD(0.5).step(model)
    np.testing.assert_array_equal(model.layers[0].params["kernel"], frozen)


def test_global_norm_clipping_scales_all_gradients_together():
    a, b = np.zeros(1), np.zeros(1)
    ga, gb = np.array([3.0]), np.array([4.0])  # global norm 5
    nn.SGD(1.0, global_clipnorm=1.0).apply_gradients([(ga, a), (gb, b)])
    np.testing.assert_allclose([a[0], b[0]], [-0.6, -0.8])


def test_clipping_leaves_small_gradients_alone():
    param = np.zeros(2)
    nn.SGD(1.0, global_clipnorm=10.0).apply_gradients([(np.array([3.0, 4.0]), param)])
    np.testing.assert_allclose(param, [-3.0, -4.0])


def test_schedule_learning_rate_is_evaluated_at_the_step_count():
    optimizer = nn.SGD(schedules.StepDecay(1.0, decay_steps=2, decay_rate=0.5))
    param = run(optimizer, np.array([0.0]), [[1.0]] * 4)
    np.testing.assert_allclose(param, [-(1.0 + 1.0 + 0.5 + 0.5)])
    assert optimizer.learning_rate == 0.25


def test_optimizer_state_round_trip_continues_identically():
    grads = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]]
    reference = nn.Adam(0.1)
    expected = run(reference, np.array([1.0, 1.0]), grads)

    first = nn.Adam(0.1)
    param = run(first, np.array([1.0, 1.0]), grads[:2])
    second = optimizers.get(optimizers.serialize(first))
    second.set_state({k: v.copy() for k, v in first.get_state().items()})
    run(second, param, grads[2:])
    np.testing.assert_array_equal(param, expected)


def test_state_for_a_different_model_is_a_clear_error():
    optimizer = nn.Adam()
    optimizer.apply_gradients([(np.ones(3), np.zeros(3))])
    with pytest.raises(ValueError, match=r"different model"):
        optimizer.apply_gradients([(np.ones(4), np.zeros(4))])


def test_optimizers_resolve_by_name_with_keras_defaults():
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (
        0.001,
        0.9,
        0.999,
        1e-7,
    )
    assert optimizers.get("sgd").learning_rate == 0.01


def test_unknown_optimizer_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamm'.*adam"):
        optimizers.get("adamm")


def test_step_decay_schedule():
    schedule = schedules.StepDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [schedule(s) for s in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_exponential_decay_schedule():
    smooth = schedules.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5)
    stairs = schedules.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5, staircase=True)
    assert smooth(5) == pytest.approx(0.5**0.5)
    assert stairs(5) == 1.0 and stairs(10) == 0.5


def test_cosine_decay_without_warmup():
    schedule = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(50) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule(100) == pytest.approx(0.1)
    assert schedule(1000) == pytest.approx(0.1)


def test_cosine_decay_with_linear_warmup():
    schedule = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert [schedule(s) for s in (0, 1, 2, 4)] == pytest.approx([0.0, 0.25, 0.5, 1.0])
    assert schedule(4 + 5) == pytest.approx(0.5)
    assert schedule(4 + 10) == pytest.approx(0.0)


def test_schedules_serialize_inside_optimizer_config():
    optimizer = nn.Adam(schedules.CosineDecay(0.01, 100, warmup_target=0.1, warmup_steps=5))
    copy = optimizers.get(optimizers.serialize(optimizer))
    assert [copy._learning_rate(s) for s in (0, 3, 50)] == [
        optimizer._learning_rate(s) for s in (0, 3, 50)
    ]
