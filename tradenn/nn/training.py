"""The training loop every model's ``fit`` runs: epochs, mini-batches, validation, callbacks.

::

    history = fit_loop(model, (x, y), epochs=10, batch_size=32, validation_data=(x_val, y_val))

The model supplies one step and one score; the loop owns everything around them:

* ``model.train_on_batch(*batch) -> float``: one update on a mini-batch, returning its loss
  (the mean over the batch, measured before the update);
* ``model.evaluate(*validation_data, batch_size=...) -> float``: the validation loss;
* ``model.stop_training``, which callbacks set to end training after the current epoch.

Each epoch visits every sample once, in batches of ``batch_size`` rows taken from a fresh
permutation (or in order with ``shuffle=False``; the last batch may be smaller). The epoch's
``loss`` is the sample-weighted mean of the batch losses, ``sum_b n_b L_b / N``; with
validation data, ``val_loss`` is logged after the epoch. The logs go to the callbacks
(:mod:`tradenn.nn.callbacks`) and into the returned :class:`~tradenn.nn.callbacks.History`.
:meth:`tradenn.nn.Model.fit` and :meth:`tradenn.models.TransformerLM.fit` both train through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from .. import checks
from .base import get_rng
from .callbacks import Callback, CallbackList, History


def check_fit_arguments(caller: str, epochs: Any, batch_size: Any, verbose: Any) -> None:
    """Raise a one-line ValueError naming ``caller`` for a bad ``epochs``, ``batch_size``
    or ``verbose``.

    Parameters
    ----------
    caller : str
        What the message starts with, e.g. ``"Sequential.fit"``.
    epochs : int
        Must be an integer >= 0 (0 trains nothing).
    batch_size : int
        Must be an integer >= 1.
    verbose : int
        Must be 0, 1 or 2.
    """
    checks.non_negative_int(epochs, "epochs", caller)
    checks.positive_int(batch_size, "batch_size", caller)
    checks.integer(verbose, "verbose", caller, low=0, high=2)


def fit_loop(
    model: Any,
    data: Sequence[np.ndarray],
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Sequence[np.ndarray] | None = None,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    callbacks: Iterable[Callback] = (),
    verbose: int = 1,
) -> History:
    """Train ``model`` on ``data`` for ``epochs`` passes of mini-batches.

    Parameters
    ----------
    model : Model
        Has ``train_on_batch(*batch)``, ``evaluate(*validation_data, batch_size=...)`` and
        ``stop_training`` (see the module docstring); callbacks receive it.
    data : sequence of array
        The training arrays, e.g. ``(x, y)`` or ``(windows,)``, each with the same number of
        samples ``N`` along axis 0; a batch is the same rows of each.
    epochs, batch_size : int
        Passes over the data, and samples per step (the last batch may be smaller).
    validation_data : sequence of array, optional
        Arguments of ``model.evaluate``, scored after every epoch into ``val_loss``.
    shuffle : bool
        Visit the samples in a new random order every epoch.
    rng : numpy.random.Generator, optional
        Draws the orders; defaults to the package generator (:func:`tradenn.nn.set_seed`).
    callbacks : iterable of Callback
        E.g. :class:`~tradenn.nn.callbacks.EarlyStopping`; called in the order given, then
        the returned ``History`` (so it records what they add to the logs).
    verbose : int
        0 silent, 1 a tqdm progress bar per epoch, 2 one line per epoch.

    Returns
    -------
    History
        ``history.history["loss"]`` (and ``"val_loss"``, and whatever callbacks log) per
        epoch, ``history.epoch`` the 0-based epochs run.
    """
    caller = f"{type(model).__name__}.fit"
    check_fit_arguments(caller, epochs, batch_size, verbose)
    data = tuple(data)
    samples = {len(array) for array in data}
    if len(samples) != 1 or 0 in samples:
        shapes = ", ".join(str(np.shape(array)) for array in data)
        raise ValueError(f"{caller}: the training arrays need the same N >= 1 rows, got {shapes}")
    epochs, batch_size = int(epochs), int(batch_size)

    history = History()
    hooks = CallbackList([*callbacks, history], model=model)  # history sees the final logs
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        order = None
        if shuffle:
            order = (rng if rng is not None else get_rng()).permutation(len(data[0]))
        bar = tqdm(
            total=math.ceil(len(data[0]) / batch_size),
            desc=f"Epoch {epoch + 1}/{epochs}",
            unit="batch",
            disable=verbose != 1,
        )
        with bar:
            logs = {"loss": _train_epoch(model, data, order, batch_size, bar, hooks)}
            if validation_data is not None:
                logs["val_loss"] = model.evaluate(*validation_data, batch_size=batch_size)
            bar.set_postfix_str(_format_logs(logs))
        hooks.on_epoch_end(epoch, logs)
        if verbose == 2:
            print(f"Epoch {epoch + 1}/{epochs} - {_format_logs(logs)}")
        if model.stop_training:
            break
    hooks.on_train_end()
    return history


def _train_epoch(
    model: Any,
    data: tuple[np.ndarray, ...],
    order: np.ndarray | None,
    batch_size: int,
    bar: tqdm,
    hooks: CallbackList,
) -> float:
    """One pass over the data in mini-batches; returns the sample-weighted mean loss."""
    count = len(data[0])
    total = 0.0
    for step, start in enumerate(range(0, count, batch_size)):
        rows = slice(start, start + batch_size)
        index = order[rows] if order is not None else rows
        value = model.train_on_batch(*(array[index] for array in data))
        seen = min(start + batch_size, count)
        total += value * (seen - start)
        bar.update(1)
        bar.set_postfix_str(f"loss={total / seen:.4g}", refresh=False)
        hooks.on_train_batch_end(step, {"loss": value})
    return total / count


def _format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{key}={value:.4g}" for key, value in logs.items())
