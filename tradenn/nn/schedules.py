"""Schedules: a value (learning rate, exploration rate, ...) as a function of a step count.

One family, one calling convention: ``schedule(step) -> float`` for a count ``step >= 0``
of whatever its user counts (an optimizer's updates, an agent's environment steps)::

    from tradenn.nn.schedules import CosineDecay, LinearSchedule

    optimizer = nn.Adam(CosineDecay(1e-3, decay_steps=10_000))   # learning rate per update
    epsilon = LinearSchedule(1.0, 0.05, steps=10_000)            # exploration per env step
    epsilon(0), epsilon(5_000), epsilon(10**6)                   # 1.0, 0.525, 0.05

==========================================  ===============================================
schedule                                    ``value(step)``
==========================================  ===============================================
``ConstantSchedule(value)``                 ``value``
``LinearSchedule(start, end, steps)``       ``start + (end - start) * min(step / steps, 1)``
``ExponentialSchedule(start, end, decay)``  ``end + (start - end) * decay ** step``
``StepDecay(initial, decay_steps, rate)``   ``initial * rate ** floor(step / decay_steps)``
``ExponentialDecay(initial, ...)``          ``initial * rate ** (step / decay_steps)``
``CosineDecay(initial, decay_steps, ...)``  optional linear warmup, then cosine decay
==========================================  ===============================================

The last three follow Keras 3's learning-rate schedules. A schedule is a pure function of
``step``: it holds no state, so whoever uses it resumes exactly where it was by saving its
own step count. :func:`as_schedule` turns a plain number into a :class:`ConstantSchedule`;
:func:`serialize` and :func:`get` give and read the JSON form
(``{"class_name": "LinearSchedule", "config": {...}}``) that model and agent files store.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .. import checks
from .registry import Registry

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "CosineDecay",
    "ExponentialDecay",
    "ExponentialSchedule",
    "LinearSchedule",
    "Schedule",
    "StepDecay",
    "as_schedule",
    "get",
    "serialize",
]

SCHEDULES = Registry("schedule")


class Schedule:
    """Base class of every schedule: ``schedule(step) -> float`` for a step count ``step >= 0``.

    Subclasses implement ``__call__`` and ``get_config`` (their constructor arguments);
    equality and ``repr`` follow from the config.
    """

    name = "schedule"

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


@SCHEDULES.register("constant")
class ConstantSchedule(Schedule):
    """``value(step) = value`` for every step."""

    def __init__(self, value: float) -> None:
        self.value = checks.number(value, "value", type(self).__name__)

    def __call__(self, step: int) -> float:
        return self.value

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {"value": self.value}


@SCHEDULES.register("linear")
class LinearSchedule(Schedule):
    """Straight line from ``start`` (step 0) to ``end`` (step ``steps``), then ``end``::

    value(step) = start + (end - start) * min(step / steps, 1)
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        owner = type(self).__name__
        self.start = checks.number(start, "start", owner)
        self.end = checks.number(end, "end", owner)
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


@SCHEDULES.register("exponential")
class ExponentialSchedule(Schedule):
    """Geometric approach from ``start`` to ``end``: the gap shrinks by ``decay`` per step::

    value(step) = end + (start - end) * decay ** step        (0 < decay <= 1)
    """

    def __init__(self, start: float, end: float, decay: float) -> None:
        owner = type(self).__name__
        self.start = checks.number(start, "start", owner)
        self.end = checks.number(end, "end", owner)
        self.decay = checks.number(decay, "decay", owner)
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"{owner}: decay must be in (0, 1], got {decay!r}")

    def __call__(self, step: int) -> float:
        return self.end + (self.start - self.end) * self.decay**step

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {"start": self.start, "end": self.end, "decay": self.decay}


@SCHEDULES.register("step_decay")
class StepDecay(Schedule):
    """``lr = initial_learning_rate * decay_rate ** floor(step / decay_steps)``.

    Drops the rate by a constant factor every ``decay_steps`` updates.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float = 0.1):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** (step // self.decay_steps)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
        }


@SCHEDULES.register("exponential_decay")
class ExponentialDecay(Schedule):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is floored, which makes it a step decay.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be positive, got {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate**exponent

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


@SCHEDULES.register("cosine_decay")
class CosineDecay(Schedule):
    """Optional linear warmup, then cosine decay (Keras 3 ``CosineDecay``).

    Without warmup (``warmup_target=None``) the rate decays from ``initial_learning_rate``::

        lr(step) = initial * ((1 - alpha) * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2
                              + alpha)

    With warmup it rises linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps`` updates, then decays from ``warmup_target`` by the formula above,
    counting steps from the end of the warmup.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        if decay_steps <= 0 or warmup_steps < 0:
            raise ValueError(
                f"need decay_steps > 0 and warmup_steps >= 0, got {decay_steps}, {warmup_steps}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            peak, decay_step = self.initial_learning_rate, step
        else:
            if step < self.warmup_steps:
                fraction = step / self.warmup_steps
                return self.initial_learning_rate + fraction * (
                    self.warmup_target - self.initial_learning_rate
                )
            peak, decay_step = self.warmup_target, step - self.warmup_steps
        progress = min(decay_step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


def as_schedule(value: float | Schedule, name: str, owner: str) -> Schedule:
    """``value`` itself if it is a :class:`Schedule`, a :class:`ConstantSchedule` if it is a
    number; ``ValueError`` naming ``owner`` and the argument ``name`` otherwise."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a number or a Schedule, got {value!r}")
    return ConstantSchedule(checks.number(value, name, owner))


def get(identifier: Any) -> Schedule:
    """A schedule from its serialized dict (:func:`serialize`) or an instance."""
    return SCHEDULES.get(identifier)


def serialize(schedule: Schedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}``, the JSON form of a registered schedule.

    A schedule class that is not registered in :data:`SCHEDULES` is refused here, when the
    file is written, rather than when it is read back.
    """
    if type(schedule).__name__ not in SCHEDULES:
        raise ValueError(
            f"serialize: cannot save a {type(schedule).__name__}; register its class with "
            "tradenn.nn.schedules.SCHEDULES.register"
        )
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
