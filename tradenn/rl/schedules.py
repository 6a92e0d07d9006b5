"""Schedules for agent hyperparameters (exploration rate, learning rate): ``value(step)``.

::

    from tradenn.rl.schedules import ExponentialSchedule, LinearSchedule

    epsilon = LinearSchedule(1.0, 0.05, steps=10_000)    # 1.0 -> 0.05 over 10k steps, then flat
    epsilon(0), epsilon(5_000), epsilon(10**6)           # 1.0, 0.525, 0.05
    ExponentialSchedule(1.0, 0.01, decay=0.999)(1000)    # 0.01 + 0.99 * 0.999**1000

``step`` is whatever the agent counts (environment steps or episodes, starting at 0). A
schedule is a pure function of ``step``: it holds no state, so an agent that is saved and
loaded resumes exactly where it was by saving its own step counter. :func:`as_schedule`
turns a plain number into a :class:`ConstantSchedule`; :func:`serialize_schedule` and
:func:`deserialize_schedule` give the JSON form agents store in their files.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = [
    "ConstantSchedule",
    "ExponentialSchedule",
    "LinearSchedule",
    "Schedule",
    "as_schedule",
    "deserialize_schedule",
    "serialize_schedule",
]


def _number(value: Any, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


class Schedule:
    """Base class: ``schedule(step) -> float`` for a step count ``step >= 0``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        """Rebuild a schedule from :meth:`get_config` output."""
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = None  # mutable attributes; equality is by value


class ConstantSchedule(Schedule):
    """``value(step) = value`` for every step."""

    def __init__(self, value: float) -> None:
        self.value = _number(value, "value", type(self).__name__)

    def __call__(self, step: int) -> float:
        return self.value

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {"value": self.value}


class LinearSchedule(Schedule):
    """Straight line from ``start`` (step 0) to ``end`` (step ``steps``), then ``end``::

    value(step) = start + (end - start) * min(step / steps, 1)
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        owner = type(self).__name__
        self.start = _number(start, "start", owner)
        self.end = _number(end, "end", owner)
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"{owner}: steps must be a positive integer, got {steps!r}")
        self.steps = int(steps)

    def __call__(self, step: int) -> float:
        if step >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * (step / self.steps)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {"start": self.start, "end": self.end, "steps": self.steps}


class ExponentialSchedule(Schedule):
    """Geometric approach from ``start`` to ``end``: the gap shrinks by ``decay`` per step::

    value(step) = end + (start - end) * decay ** step        (0 < decay <= 1)
    """

    def __init__(self, start: float, end: float, decay: float) -> None:
        owner = type(self).__name__
        self.start = _number(start, "start", owner)
        self.end = _number(end, "end", owner)
        self.decay = _number(decay, "decay", owner)
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"{owner}: decay must be in (0, 1], got {decay!r}")

    def __call__(self, step: int) -> float:
        return self.end + (self.start - self.end) * self.decay**step

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {"start": self.start, "end": self.end, "decay": self.decay}


_SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls for cls in (ConstantSchedule, LinearSchedule, ExponentialSchedule)
}


def as_schedule(value: float | Schedule, name: str, owner: str) -> Schedule:
    """``value`` itself if it is a :class:`Schedule`, a :class:`ConstantSchedule` if it is a
    number; ``ValueError`` naming ``owner`` and the argument ``name`` otherwise."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a number or a Schedule, got {value!r}")
    return ConstantSchedule(_number(value, name, owner))


def serialize_schedule(schedule: Schedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}``, the JSON form of a built-in schedule."""
    if type(schedule).__name__ not in _SCHEDULES:
        raise ValueError(f"serialize_schedule: cannot save a {type(schedule).__name__}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize_schedule(data: dict[str, Any]) -> Schedule:
    """The schedule described by :func:`serialize_schedule` output."""
    if not isinstance(data, dict) or data.get("class_name") not in _SCHEDULES:
        raise ValueError(f"deserialize_schedule: not a schedule description: {data!r}")
    return _SCHEDULES[data["class_name"]].from_config(dict(data.get("config", {})))
