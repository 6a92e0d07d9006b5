"""Schedules (one family for learning and exploration rates): values computed by hand,
configuration round trips, argument errors. The learning-rate schedules' values are in
test_optimizers.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn import schedules
from tradenn.nn.schedules import (
    ConstantSchedule,
    CosineDecay,
    ExponentialDecay,
    ExponentialSchedule,
    LinearSchedule,
    Schedule,
    StepDecay,
    as_schedule,
)


def test_constant_schedule_is_flat():
    schedule = ConstantSchedule(0.25)
    assert [schedule(step) for step in (0, 1, 10**9)] == [0.25, 0.25, 0.25]


def test_linear_schedule_interpolates_then_stays_at_end():
    schedule = LinearSchedule(1.0, 0.2, steps=8)
    # 1.0 + (0.2 - 1.0) * step / 8: 0.1 lower every step
    assert schedule(0) == 1.0
    assert schedule(2) == pytest.approx(0.8)
    assert schedule(4) == pytest.approx(0.6)
    assert schedule(8) == 0.2
    assert schedule(1000) == 0.2


def test_linear_schedule_can_increase():
    assert LinearSchedule(0.0, 1.0, steps=4)(1) == pytest.approx(0.25)


def test_exponential_schedule_shrinks_the_gap_geometrically():
    schedule = ExponentialSchedule(1.0, 0.1, decay=0.5)
    assert schedule(0) == 1.0
    assert schedule(1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule(3) == pytest.approx(0.1 + 0.9 * 0.125)
    assert schedule(10_000) == pytest.approx(0.1)


def test_exponential_schedule_with_decay_one_is_constant():
    assert ExponentialSchedule(0.3, 0.0, decay=1.0)(500) == 0.3


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantSchedule(0.5),
        LinearSchedule(1.0, 0.05, 100),
        ExponentialSchedule(1.0, 0.01, 0.99),
        StepDecay(0.1, 10, 0.5),
        ExponentialDecay(1.0, 10, 0.5, staircase=True),
        CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4),
    ],
)
def test_config_round_trip_through_json(schedule):
    rebuilt = type(schedule).from_config(json.loads(json.dumps(schedule.get_config())))
    assert rebuilt == schedule
    data = json.loads(json.dumps(schedules.serialize(schedule)))
    assert data == {"class_name": type(schedule).__name__, "config": schedule.get_config()}
    again = schedules.get(data)
    assert type(again) is type(schedule)
    assert [again(step) for step in (0, 7, 50, 300)] == [schedule(s) for s in (0, 7, 50, 300)]


def test_numpy_numbers_are_accepted():
    schedule = LinearSchedule(np.float64(1.0), np.float32(0.5), np.int64(2))
    assert schedule(1) == pytest.approx(0.75)
    assert isinstance(schedule.get_config()["steps"], int)


def test_as_schedule_wraps_numbers_and_passes_schedules_through():
    linear = LinearSchedule(1.0, 0.0, 10)
    assert as_schedule(linear, "epsilon", "Agent") is linear
    wrapped = as_schedule(0.3, "epsilon", "Agent")
    assert isinstance(wrapped, ConstantSchedule) and wrapped(99) == 0.3


def test_as_schedule_rejects_other_values():
    with pytest.raises(ValueError, match="Agent: epsilon must be a number or a Schedule"):
        as_schedule("0.1", "epsilon", "Agent")
    with pytest.raises(ValueError, match="epsilon must be a finite number"):
        as_schedule(math.nan, "epsilon", "Agent")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LinearSchedule(1.0, 0.0, 0), "LinearSchedule: steps must be a positive integer"),
        (lambda: LinearSchedule(1.0, 0.0, 2.5), "LinearSchedule: steps must be a positive integer"),
        (lambda: LinearSchedule(math.inf, 0.0, 5), "LinearSchedule: start must be a finite"),
        (lambda: ExponentialSchedule(1.0, 0.0, 0.0), r"ExponentialSchedule: decay must be in"),
        (lambda: ExponentialSchedule(1.0, 0.0, 1.5), r"ExponentialSchedule: decay must be in"),
        (lambda: ConstantSchedule(True), "ConstantSchedule: value must be a finite number"),
    ],
)
def test_bad_arguments_raise_one_line_errors(build, message):
    with pytest.raises(ValueError, match=message) as error:
        build()
    assert "\n" not in str(error.value)


def test_serialize_rejects_unknown_schedules():
    class Custom(Schedule):
        def __call__(self, step):
            return 1.0

        def get_config(self):
            return {}

    with pytest.raises(ValueError, match="cannot save a Custom"):
        schedules.serialize(Custom())
    with pytest.raises(ValueError, match="Unknown schedule 'Custom'"):
        schedules.get({"class_name": "Custom", "config": {}})


def test_an_exploration_style_schedule_drives_an_optimizer_and_saves_with_it():
    # one family: any schedule is a learning rate, evaluated at the optimizer's update count
    optimizer = nn.SGD(LinearSchedule(1.0, 0.0, steps=4))
    param, grad = np.ones(1), np.ones(1)
    for _ in range(3):
        optimizer.apply_gradients([(grad, param)])
    assert param[0] == pytest.approx(1.0 - (1.0 + 0.75 + 0.5))
    rebuilt = nn.SGD.from_config(json.loads(json.dumps(optimizer.get_config())))
    assert rebuilt.get_config()["learning_rate"] == {
        "class_name": "LinearSchedule",
        "config": {"start": 1.0, "end": 0.0, "steps": 4},
    }
