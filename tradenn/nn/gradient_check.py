"""Finite-difference gradient checks for layers, models and losses.

:func:`gradcheck` compares what ``backward`` computes with central differences of the
scalar objective ``L = sum(forward(x) * r) + weight penalties`` for a fixed random
``r``; by linearity ``dL/dy = r``, so ``backward(r)`` must give ``dL/dx`` and ``dL/dparams``.
The check runs in float64 whatever the module's dtype: it casts parameters, gradients and
state to float64 for the duration and puts the original arrays back afterwards. Random
generators (dropout masks) and state (moving averages) are rewound before every forward
pass, so each pass sees the same function.

The error of one tensor is ``||a - n|| / (||a|| + ||n||)`` (analytic ``a``, numerical ``n``),
0 for agreement and 1 for unrelated vectors; float64 with ``eps=1e-6`` typically gives
1e-10 or less on a correct backward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .base import get_rng, parameters, regularization_loss, walk


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(a + eps e_i) - f(a - eps e_i)) / (2 eps)`` for every entry.

    ``f`` reads ``array`` (modified in place and restored entry by entry).
    """
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array to perturb in place")
    grad = np.zeros(array.shape, dtype=np.float64)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        upper = f()
        flat[i] = original - eps
        lower = f()
        flat[i] = original
        out[i] = (upper - lower) / (2.0 * eps)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """``||a - n|| / (||a|| + ||n||)``, and 0 when both vanish."""
    difference = float(np.linalg.norm(np.asarray(analytic, np.float64) - numerical))
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numerical))
    return 0.0 if scale < 1e-12 else difference / scale


def gradcheck(
    module: Any,
    x: Any,
    *,
    training: bool = False,
    eps: float = 1e-6,
    seed: int = 0,
    return_errors: bool = False,
) -> float | dict[str, float]:
    """Check ``module.backward`` against finite differences; return the largest error.

    Parameters
    ----------
    module
        A layer, a model, or any object with ``forward``/``backward`` whose parameters
        :func:`tradenn.nn.base.parameters` finds.
    x : ndarray or tuple of ndarrays
        Input; a tuple for multi-input layers (``forward(*x)``, one gradient per input).
        Integer inputs (ids) are not differentiated. A module whose ``forward`` returns a
        list or tuple of arrays (``return_state``) gets one projection per output, and its
        ``backward`` receives the list of them.
    training : bool
        Mode passed to ``forward``.
    eps : float
        Finite-difference step.
    seed : int
        Seed of the random projection ``r``.
    return_errors : bool
        Return ``{"input": e, "dense/kernel": e, ...}`` instead of the maximum.
    """
    multi_input = isinstance(x, (tuple, list))
    inputs = [np.array(a) for a in (x if multi_input else (x,))]
    if not getattr(module, "built", True):
        shapes = [a.shape for a in inputs]
        module.build(shapes if multi_input else shapes[0])
    inputs = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs]

    with _in_float64(module), _rewinder(module) as rewind:

        def run() -> np.ndarray:
            rewind()
            return module.forward(*inputs, training=training)

        first = run()
        multi_output = isinstance(first, (tuple, list))
        generator = np.random.default_rng(seed)
        projections = [
            generator.standard_normal(np.shape(y)) for y in (first if multi_output else (first,))
        ]

        def objective() -> float:
            outputs = run()
            outputs = outputs if multi_output else (outputs,)
            total = sum(float(np.vdot(y, r)) for y, r in zip(outputs, projections, strict=True))
            return total + regularization_loss(module)

        run()
        input_grads = module.backward(projections if multi_output else projections[0])
        if not multi_input:
            input_grads = (input_grads,)
        analytic: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for i, (value, grad) in enumerate(zip(inputs, input_grads, strict=True)):
            if grad is not None and value.dtype.kind == "f":
                analytic["input" if not multi_input else f"input_{i}"] = (value, np.array(grad))
        for layer, key, _ in parameters(module):
            analytic[f"{layer.name}/{key}"] = (layer.params[key], layer.grads[key].copy())

        errors = {
            name: relative_error(grad, numerical_gradient(objective, value, eps))
            for name, (value, grad) in analytic.items()
        }
    if return_errors:
        return errors
    return max(errors.values(), default=0.0)


def gradcheck_loss(loss: Any, y_true: Any, y_pred: Any, eps: float = 1e-6) -> float:
    """Check ``loss.value_and_grad`` against finite differences of ``loss(y_true, y_pred)``."""
    y_pred = np.array(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true)
    if y_true.dtype.kind == "f":
        y_true = y_true.astype(np.float64)
    _, analytic = loss.value_and_grad(y_true, y_pred)
    numerical = numerical_gradient(lambda: loss(y_true, y_pred), y_pred, eps)
    return relative_error(analytic, numerical)


@contextlib.contextmanager
def _in_float64(module: Any) -> Iterator[None]:
    """Swap every parameter, gradient and state array for a float64 copy, then swap back."""
    saved = []
    for layer in walk(module):
        arrays = [getattr(layer, group, {}) for group in ("params", "grads", "state")]
        saved.append((layer, getattr(layer, "dtype", None), [dict(a) for a in arrays]))
        for group in arrays:
            for key, value in group.items():
                group[key] = value.astype(np.float64)
        if hasattr(layer, "dtype"):
            layer.dtype = np.dtype(np.float64)
    try:
        yield
    finally:
        for layer, dtype, originals in saved:
            for group_name, original in zip(("params", "grads", "state"), originals, strict=True):
                getattr(layer, group_name, {}).update(original)
            if dtype is not None:
                layer.dtype = dtype


@contextlib.contextmanager
def _rewinder(module: Any) -> Iterator[Callable[[], None]]:
    """Yield a function that resets generators and state to their values at entry."""
    generators = [get_rng()]
    states: list[tuple[np.ndarray, np.ndarray]] = []
    for layer in walk(module):
        generators += [v for v in vars(layer).values() if isinstance(v, np.random.Generator)]
    for layer in walk(module):
        states += [(v, v.copy()) for v in getattr(layer, "state", {}).values()]
    snapshots = [g.bit_generator.state for g in generators]

    def rewind() -> None:
        for generator, snapshot in zip(generators, snapshots, strict=True):
            generator.bit_generator.state = snapshot
        for live, original in states:
            np.copyto(live, original)

    try:
        yield rewind
    finally:
        rewind()
