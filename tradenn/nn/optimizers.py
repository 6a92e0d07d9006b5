"""Optimizers: SGD (momentum, Nesterov), RMSprop, Adam, AdamW — Keras 3 update rules.

An optimizer updates parameters in place from their gradients::

    optimizer.step(model)            # every trainable param of model, after model.backward

``step`` works on anything :func:`tradenn.nn.base.parameters` can traverse (a layer, a
``Sequential``, a hand-written model exposing ``layers``). Per-parameter state (momenta)
is keyed by the parameter's position in that traversal, so it can be saved with the model
and restored into a freshly built copy of it.

All updates are written into the live parameter arrays with preallocated scratch buffers,
so a step allocates nothing after the first.

Optional ``global_clipnorm``: if the global norm ``sqrt(sum_i ||g_i||^2)`` of all gradients
exceeds it, every gradient is scaled (in place) by ``global_clipnorm / norm`` first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import checks
from . import schedules as schedule_lib
from .base import parameters
from .registry import Registry


class Optimizer:
    """Base class: learning rate (constant or schedule), clipping, state bookkeeping.

    Subclasses list their per-parameter ``slot_names`` and the ``hyperparameters`` their
    constructor adds (attributes of the same names, saved by :meth:`get_config`), and
    implement ``_update(param, grad, slots, scratch, lr)``, which must modify ``param``
    in place.

    Parameters
    ----------
    learning_rate : float or Schedule
        Step size; a schedule is evaluated at ``iterations`` on every step.
    global_clipnorm : float, optional
        Clip the global gradient norm to this value.
    """

    name = "optimizer"
    slot_names: tuple[str, ...] = ()
    hyperparameters: tuple[str, ...] = ()

    def __init__(self, learning_rate: Any = 0.001, global_clipnorm: float | None = None):
        self.learning_rate = learning_rate
        if global_clipnorm is not None and global_clipnorm <= 0:
            raise ValueError(f"global_clipnorm must be positive, got {global_clipnorm}")
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.iterations = 0
        self._slots: dict[int, dict[str, np.ndarray]] = {}
        self._scratch: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ learning rate

    @property
    def learning_rate(self) -> float:
        """The rate the next step will use (a schedule evaluated at ``iterations``)."""
        if isinstance(self._learning_rate, schedule_lib.Schedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, dict):
            value = schedule_lib.get(value)
        if not isinstance(value, schedule_lib.Schedule):
            value = checks.number(value, "learning_rate", type(self).__name__, low=0)
        self._learning_rate = value

    # ------------------------------------------------------------------ stepping

    def step(self, module: Any) -> None:
        """Update every trainable parameter of ``module`` from its ``grads``."""
        indexed = [
            (index, layer.params[key], layer.grads[key])
            for index, (layer, key, trainable) in enumerate(parameters(module))
            if trainable
        ]
        self._apply(indexed)

    def apply_gradients(self, grads_and_params: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Update each ``param`` in place from ``grad``; state is keyed by list position."""
        self._apply([(i, p, g) for i, (g, p) in enumerate(grads_and_params)])

    def _apply(self, indexed: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        if self.global_clipnorm is not None:
            clip_by_global_norm([g for _, _, g in indexed], self.global_clipnorm)
        lr = self.learning_rate
        for index, param, grad in indexed:
            slots, scratch = self._slots_for(index, param), self._scratch_for(index, param)
            self._update(param, grad, slots, scratch, lr)
        self.iterations += 1

    def _update(
        self,
        param: np.ndarray,
        grad: np.ndarray,
        slots: dict[str, np.ndarray],
        scratch: np.ndarray,
        lr: float,
    ) -> None:
        raise NotImplementedError

    def _slots_for(self, index: int, param: np.ndarray) -> dict[str, np.ndarray]:
        slots = self._slots.get(index)
        if slots is None:
            slots = self._slots[index] = {n: np.zeros_like(param) for n in self.slot_names}
            return slots
        for slot_name, value in slots.items():
            if value.shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: state '{slot_name}' of parameter {index} has shape "
                    f"{value.shape} but the parameter has shape {param.shape}; "
                    f"the optimizer was used with (or loaded for) a different model"
                )
            if value.dtype != param.dtype:
                slots[slot_name] = value.astype(param.dtype)
        return slots

    def _scratch_for(self, index: int, param: np.ndarray) -> np.ndarray:
        scratch = self._scratch.get(index)
        if scratch is None or scratch.shape != param.shape or scratch.dtype != param.dtype:
            scratch = self._scratch[index] = np.empty_like(param)
        return scratch

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Hyperparameters (the learning rate may be a serialized schedule)."""
        rate = self._learning_rate
        if isinstance(rate, schedule_lib.Schedule):
            rate = schedule_lib.serialize(rate)
        return {
            "learning_rate": rate,
            "global_clipnorm": self.global_clipnorm,
            **{name: getattr(self, name) for name in self.hyperparameters},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        return cls(**config)

    def get_state(self) -> dict[str, np.ndarray]:
        """Step count and per-parameter slots as named arrays (``"3/m"``: slot m of param 3)."""
        state = {"iterations": np.asarray(self.iterations, dtype=np.int64)}
        for index, slots in self._slots.items():
            for slot_name, value in slots.items():
                state[f"{index}/{slot_name}"] = value
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned (slot shapes are checked on the next step)."""
        iterations = np.asarray(state.get("iterations", 0))
        if iterations.ndim or iterations.dtype.kind not in "iu" or iterations < 0:
            raise ValueError(f"{type(self).__name__}: step count {iterations} is not a count")
        self.iterations = int(iterations)
        self._slots = {}
        for key, value in state.items():
            if key == "iterations":
                continue
            index, _, slot_name = key.partition("/")
            if not index.isdigit() or slot_name not in self.slot_names:
                raise ValueError(f"{type(self).__name__}: unexpected state entry '{key}'")
            self._slots.setdefault(int(index), {})[slot_name] = np.array(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def global_norm(grads: Iterable[np.ndarray]) -> float:
    """``sqrt(sum_i ||g_i||^2)`` over all arrays."""
    total = 0.0
    for g in grads:
        flat = g.ravel()
        total += float(flat @ flat)
    return math.sqrt(total)


def clip_by_global_norm(grads: list[np.ndarray], clip_norm: float) -> float:
    """Scale ``grads`` in place so their global norm is at most ``clip_norm``; return the norm."""
    norm = global_norm(grads)
    if norm > clip_norm:
        scale = clip_norm / norm
        for g in grads:
            g *= scale
    return norm


OPTIMIZERS = Registry("optimizer", base=Optimizer)


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Plain: ``p <- p - lr g``. With momentum ``mu`` and velocity ``v`` (starts at 0)::

        v <- mu v - lr g
        p <- p + v                     (classical)
        p <- p + mu v - lr g           (nesterov=True)
    """

    hyperparameters = ("momentum", "nesterov")

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        global_clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, global_clipnorm)
        self.momentum = checks.number(
            momentum, "momentum", type(self).__name__, low=0, high=1, high_open=True
        )
        self.nesterov = bool(nesterov)
        self.slot_names = ("velocity",) if self.momentum else ()

    def _update(self, param, grad, slots, scratch, lr):
        step = np.multiply(grad, lr, out=scratch)  # lr g
        if not self.momentum:
            param -= step
            return
        velocity = slots["velocity"]
        velocity *= self.momentum
        velocity -= step
        if self.nesterov:
            param -= step
            param += np.multiply(velocity, self.momentum, out=scratch)
        else:
            param += velocity


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """Divides the gradient by a running root-mean-square of its recent values.

    With ``s`` the mean square (and ``a`` the mean gradient when ``centered``)::

        s <- rho s + (1 - rho) g^2
        a <- rho a + (1 - rho) g                          (centered only)
        u = lr g / sqrt(s - a^2 + eps)                    (a = 0 if not centered)
        p <- p - u                                        (momentum = 0)
        m <- momentum m + u;  p <- p - m                  (momentum > 0)

    Note Keras puts ``epsilon`` inside the square root.
    """

    hyperparameters = ("rho", "momentum", "epsilon", "centered")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        global_clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, global_clipnorm)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        names = ["velocity"]
        if self.momentum:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        self.slot_names = tuple(names)

    def _update(self, param, grad, slots, scratch, lr):
        mean_square = slots["velocity"]
        np.multiply(grad, grad, out=scratch)
        scratch -= mean_square
        scratch *= 1.0 - self.rho
        mean_square += scratch  # s += (1 - rho) (g^2 - s)
        if self.centered:
            average = slots["average_gradient"]
            np.subtract(grad, average, out=scratch)
            scratch *= 1.0 - self.rho
            average += scratch
            np.multiply(average, average, out=scratch)
            np.subtract(mean_square, scratch, out=scratch)
            scratch += self.epsilon
        else:
            np.add(mean_square, self.epsilon, out=scratch)
        np.sqrt(scratch, out=scratch)
        np.divide(grad, scratch, out=scratch)
        scratch *= lr
        if self.momentum:
            momentum = slots["momentum"]
            momentum *= self.momentum
            momentum += scratch
            param -= momentum
        else:
            param -= scratch


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam: momentum on the gradient and on its square, with bias correction.

    At step ``t`` (1-based), Keras' form (bias correction folded into the step size)::

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        alpha = lr sqrt(1 - b2^t) / (1 - b1^t)
        p <- p - alpha m / (sqrt(v) + eps)
    """

    slot_names = ("m", "v")
    hyperparameters = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        global_clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, global_clipnorm)
        owner = type(self).__name__
        self.beta_1 = checks.number(beta_1, "beta_1", owner, low=0, high=1, high_open=True)
        self.beta_2 = checks.number(beta_2, "beta_2", owner, low=0, high=1, high_open=True)
        self.epsilon = float(epsilon)

    def _update(self, param, grad, slots, scratch, lr):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        m, v = slots["m"], slots["v"]
        np.subtract(grad, m, out=scratch)
        scratch *= 1.0 - self.beta_1
        m += scratch  # m += (1 - b1) (g - m)
        np.multiply(grad, grad, out=scratch)
        scratch -= v
        scratch *= 1.0 - self.beta_2
        v += scratch  # v += (1 - b2) (g^2 - v)
        np.sqrt(v, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= alpha
        param -= scratch


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    Before the Adam update every parameter shrinks: ``p <- p (1 - lr weight_decay)``.
    Unlike an L2 penalty, the decay does not pass through Adam's per-coordinate scaling.
    As in Keras, all trainable parameters are decayed.
    """

    hyperparameters = (*Adam.hyperparameters, "weight_decay")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        global_clipnorm: float | None = None,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, global_clipnorm)
        self.weight_decay = checks.number(weight_decay, "weight_decay", type(self).__name__, low=0)

    def _update(self, param, grad, slots, scratch, lr):
        param *= 1.0 - lr * self.weight_decay
        super()._update(param, grad, slots, scratch, lr)


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``, with default hyperparameters), dict or instance."""
    return OPTIMIZERS.get(identifier)


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """The JSON-ready form of ``optimizer`` (always a dict: configs are never empty)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
