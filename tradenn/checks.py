"""Argument checks: one function per kind of argument, one signature, one message form.

Every check takes ``(value, name, owner=None)`` first, returns the value converted to its plain
Python type (``int``, ``float``, ...) and otherwise raises ``error`` (``ValueError`` unless the
caller passes its own exception class) with the one-line message::

    {owner}: {name} must be {rule}, got {value!r}

``owner`` is whoever takes the argument (a class, ``Class.method`` or a function name); without
it the message starts at ``name``. ``rule`` says what is accepted, in the same words everywhere:
``a positive integer``, ``a non-negative integer``, ``an integer >= 2``, ``a finite number > 0``,
``in [0, 1)``, ``one of 'a', 'b'``, with `` or None`` when None is accepted.

What counts as what:

* an integer is an ``int`` or a numpy integer; ``bool`` (and ``numpy.bool_``) is not, though
  Python says ``True == 1``, and neither is a whole float such as ``2.0``;
* a number is an integer or a real float (numpy's included), never ``bool``, a string or a
  complex; NaN and the infinities are refused;
* an array check scans for NaN and inf and names the first one by its index.

The module imports only the standard library and numpy, so every part of ``tradenn``, the
neural-network library included, may use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "choice",
    "finite_array",
    "integer",
    "non_negative_int",
    "number",
    "positive_int",
    "positive_number",
    "seed",
]

_FINITE_SCAN_ELEMENTS = 1 << 20  # elements per block of the NaN/inf scan (bounds its temporary)


def _fail(value: Any, name: str, owner: str | None, rule: str, error: type[Exception]):
    """The one message form, raised as ``error``."""
    prefix = f"{owner}: " if owner else ""
    raise error(f"{prefix}{name} must be {rule}, got {value!r}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _bound(value: float) -> str:
    """A bound as it reads in a message: ``1`` for 1 and 1.0, ``0.5``, ``1e+15``."""
    return f"{value:g}"


def integer(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> int | None:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional).

    Parameters
    ----------
    value : Any
        The argument as given.
    name : str
        The argument's name, as the caller knows it.
    owner : str, optional
        Who takes the argument; the prefix of the message.
    low, high : int, optional
        Inclusive bounds.
    allow_none : bool
        Accept None (and return it).
    error : type of Exception
        What to raise; ``ValueError`` by default.

    Returns
    -------
    int or None
        ``int(value)``, or None when ``value`` is None and ``allow_none``.

    Raises
    ------
    error
        ``{owner}: {name} must be {rule}, got {value!r}`` where ``rule`` is ``a positive
        integer`` (low 1), ``a non-negative integer`` (low 0), ``an integer >= low``,
        ``an integer <= high`` or ``an integer in [low, high]``.
    """
    if value is None and allow_none:
        return None
    if not (
        _is_integer(value) and (low is None or value >= low) and (high is None or value <= high)
    ):
        if high is not None:
            rule = f"an integer <= {high}" if low is None else f"an integer in [{low}, {high}]"
        elif low == 1:
            rule = "a positive integer"
        elif low == 0:
            rule = "a non-negative integer"
        elif low is not None:
            rule = f"an integer >= {low}"
        else:
            rule = "an integer"
        _fail(value, name, owner, rule + (" or None" if allow_none else ""), error)
    return int(value)


def positive_int(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as an ``int`` >= 1: :func:`integer` with ``low=1``.

    Raises ``error`` with ``{owner}: {name} must be a positive integer, got {value!r}``.
    """
    return integer(value, name, owner, low=1, allow_none=allow_none, error=error)


def non_negative_int(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as an ``int`` >= 0: :func:`integer` with ``low=0``.

    Raises ``error`` with ``{owner}: {name} must be a non-negative integer, got {value!r}``.
    """
    return integer(value, name, owner, low=0, allow_none=allow_none, error=error)


def seed(
    value: Any, owner: str | None = None, *, error: type[Exception] = ValueError
) -> int | None:
    """A random seed: a non-negative ``int``, or None for fresh entropy.

    Raises ``error`` with ``{owner}: seed must be a non-negative integer or None, got
    {value!r}``.
    """
    return integer(value, "seed", owner, low=0, allow_none=True, error=error)


def number(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> float | None:
    """``value`` as a finite ``float`` between ``low`` and ``high`` (either bound optional).

    Parameters
    ----------
    value : Any
        The argument as given.
    name : str
        The argument's name, as the caller knows it.
    owner : str, optional
        Who takes the argument; the prefix of the message.
    low, high : float, optional
        Bounds, inclusive unless ``low_open`` / ``high_open``.
    low_open, high_open : bool
        Exclude the bound itself (``> low``, ``< high``).
    allow_none : bool
        Accept None (and return it).
    error : type of Exception
        What to raise; ``ValueError`` by default.

    Returns
    -------
    float or None
        ``float(value)``, or None when ``value`` is None and ``allow_none``.

    Raises
    ------
    error
        ``{owner}: {name} must be {rule}, got {value!r}`` where ``rule`` is ``a finite number``
        with one bound (``a finite number > 0``, ``a finite number <= 1``), ``in [low, high)``
        style with both, or ``a finite number`` with none. NaN and inf are always refused.
    """
    if value is None and allow_none:
        return None
    if not (
        _is_number(value)
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    ):
        if low is not None and high is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            rule = f"in {left}{_bound(low)}, {_bound(high)}{right}"
        elif low is not None:
            rule = f"a finite number {'>' if low_open else '>='} {_bound(low)}"
        elif high is not None:
            rule = f"a finite number {'<' if high_open else '<='} {_bound(high)}"
        else:
            rule = "a finite number"
        _fail(value, name, owner, rule + (" or None" if allow_none else ""), error)
    return float(value)


def positive_number(
    value: Any,
    name: str,
    owner: str | None = None,
    *,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> float:
    """``value`` as a finite ``float`` > 0: :func:`number` with ``low=0, low_open=True``.

    Raises ``error`` with ``{owner}: {name} must be a finite number > 0, got {value!r}``.
    """
    return number(value, name, owner, low=0, low_open=True, allow_none=allow_none, error=error)


def choice(
    value: Any,
    name: str,
    choices: Sequence[Any],
    owner: str | None = None,
    *,
    error: type[Exception] = ValueError,
) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==``).

    Raises ``error`` with ``{owner}: {name} must be one of 'a', 'b', got {value!r}``.
    """
    if not any(_same(value, option) for option in choices):
        _fail(value, name, owner, "one of " + ", ".join(map(repr, choices)), error)
    return value


def _same(value: Any, option: Any) -> bool:
    # ``in`` would call ``value == option`` on arrays too, whose truth value is ambiguous
    try:
        return bool(value == option)
    except (TypeError, ValueError):
        return False


def finite_array(
    values: np.ndarray,
    name: str,
    owner: str | None = None,
    *,
    error: type[Exception] = ValueError,
) -> np.ndarray:
    """``values`` itself, after checking it holds no NaN or inf.

    The scan runs over blocks of the first axis, so its boolean temporary stays small on a large
    array. Integer and boolean arrays pass without a scan.

    Parameters
    ----------
    values : ndarray
        Numeric array of any shape.
    name, owner : str
        The argument and who takes it, for the message.
    error : type of Exception
        What to raise; ``ValueError`` by default.

    Raises
    ------
    error
        ``{owner}: {name} contains NaN or inf (first at index (i, j, ...))``, the index being
        numpy's (a tuple, ``(7,)`` for a vector).
    """
    if values.dtype.kind not in "fc" or values.size == 0:
        return values
    rows = values if values.ndim else values.reshape(1)
    step = max(1, _FINITE_SCAN_ELEMENTS // max(1, rows[0].size))
    for start in range(0, len(rows), step):
        bad = ~np.isfinite(rows[start : start + step])
        if bad.any():
            index = np.unravel_index(int(np.argmax(bad)), bad.shape)
            first = (start + int(index[0]), *map(int, index[1:])) if values.ndim else ()
            prefix = f"{owner}: " if owner else ""
            raise error(f"{prefix}{name} contains NaN or inf (first at index {first})")
    return values
