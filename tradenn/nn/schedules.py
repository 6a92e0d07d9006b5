"""Learning-rate schedules: functions of the optimizer's step count (Keras 3 semantics).

Pass one as ``learning_rate`` to any optimizer; it is evaluated at every step with the
number of updates done so far (0 on the first update).
"""

from __future__ import annotations

import math
from typing import Any

from .registry import Registry

SCHEDULES = Registry("learning rate schedule")


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``."""

    name = "schedule"

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError


@SCHEDULES.register("step_decay")
class StepDecay(LearningRateSchedule):
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
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
        }


@SCHEDULES.register("exponential_decay")
class ExponentialDecay(LearningRateSchedule):
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
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


@SCHEDULES.register("cosine_decay")
class CosineDecay(LearningRateSchedule):
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
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


def get(identifier: Any) -> LearningRateSchedule:
    """A schedule from a serialized dict or an instance."""
    return SCHEDULES.get(identifier)


def serialize(schedule: LearningRateSchedule) -> Any:
    """The JSON-ready form of ``schedule``."""
    return SCHEDULES.serialize(schedule)
