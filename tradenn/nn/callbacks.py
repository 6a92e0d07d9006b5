"""Training callbacks: History, EarlyStopping, ModelCheckpoint, LearningRateScheduler.

A callback sees the model (``self.model``) and the per-epoch ``logs`` dict (``"loss"``,
``"val_loss"`` when validating). Set ``model.stop_training = True`` to end ``fit`` after
the current epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


class Callback:
    """Base class; override any of the hooks."""

    def __init__(self) -> None:
        self.model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        """Called once after the last epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Called before epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Called after epoch ``epoch`` with its logs."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Called after each training step with that batch's loss."""


class CallbackList:
    """Dispatches each hook to several callbacks in order."""

    def __init__(self, callbacks: Iterable[Callback], model: Any) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Callbacks must derive from nn.callbacks.Callback, got {callback!r}"
                )
            callback.set_model(model)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def dispatch(*args: Any) -> None:
            for callback in self.callbacks:
                getattr(callback, hook)(*args)

        return dispatch


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"][epoch]``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(float(min_delta))
        self.best = math.inf if mode == "min" else -math.inf

    def _current(self, logs: dict[str, float] | None) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} monitors '{self.monitor}' but the logs only have "
                f"{sorted(logs)}; pass validation data or monitor one of those"
            )
        return float(logs[self.monitor])

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        Logged quantity to watch (``"val_loss"`` by default).
    min_delta : float
        Smallest change that counts as an improvement.
    patience : int
        Epochs without improvement before stopping.
    mode : {"auto", "min", "max"}
        Whether lower or higher is better ("auto": max for accuracies, else min).
    restore_best_weights : bool
        At the end of training, put back the weights of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self._best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best = math.inf if self.mode == "min" else -math.inf
        self._best_weights = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        value = self._current(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = [w.copy() for w in self.model.get_weights()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)


class ModelCheckpoint(_Monitor):
    """Saves the model after each epoch (or only when ``monitor`` improved).

    Parameters
    ----------
    filepath : str
        Destination; may contain ``{epoch}`` (1-based) and log keys, e.g.
        ``"ckpt-{epoch:03d}-{val_loss:.4f}.npz"``.
    monitor, mode
        As in :class:`EarlyStopping`; used with ``save_best_only``.
    save_best_only : bool
        Save only when the monitored quantity improved.
    """

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, mode)
        self.filepath = str(filepath)
        self.save_best_only = bool(save_best_only)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if self.save_best_only:
            value = self._current(logs)
            if not self._improved(value):
                return
            self.best = value
        self.model.save(self.filepath.format(epoch=epoch + 1, **(logs or {})))


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new lr`` with the 0-based epoch and the current rate.
    """

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        optimizer = self.model.optimizer
        optimizer.learning_rate = float(self.schedule(epoch, optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate
