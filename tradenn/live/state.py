"""Restart snapshots as JSON: what a runner needs to continue, stored with every bar.

The paper loop writes :meth:`tradenn.backtest.runner.Runner.state` into the ledger in the same
transaction as the bar. Values are plain JSON where they can be; the rest is tagged:

* non-finite floats ``{"$float": "nan"}``, tuples ``{"$tuple": [...]}``,
* numpy arrays ``{"$array": [...], "dtype": "float64", "shape": [...]}`` (numeric and bool
  only), numpy scalars as Python numbers, timestamps ``{"$time": "2018-12-31T00:00:00"}``,
* dicts with non-string keys as ``{"$items": [[key, value], ...]}``.

Nothing else is stored: decoding builds only these types, never an object named by the data
(no pickle). A strategy that keeps something else between bars (an open file, a model object)
raises :class:`StateError` naming the attribute; the loop then restarts that ledger by replay.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from tradenn.errors import TradennError

__all__ = ["StateError", "decode", "dumps_state", "encode", "loads_state"]

_MAX_ARRAY = 10_000_000  # elements: a declared shape above this is refused before allocating


class StateError(TradennError):
    """A value that cannot be saved in (or read back from) a restart snapshot."""


def encode(value: Any, where: str = "state") -> Any:
    """``value`` as JSON-ready data (see the module docstring); ``where`` names it in errors."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"$float": repr(number)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, list):
        return [encode(v, f"{where}[{k}]") for k, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, f"{where}[{k}]") for k, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            "$items": [
                [encode(k, f"{where} key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()
            ]
        }
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {
            "$array": [encode(v) for v in value.ravel().tolist()],
            "dtype": value.dtype.str,
            "shape": list(value.shape),
        }
    if isinstance(value, pd.Timestamp):
        return {"$time": value.isoformat()}
    raise StateError(
        f"{where} is a {type(value).__name__}, which a restart snapshot cannot hold "
        "(numbers, strings, lists, tuples, dicts, numeric numpy arrays and timestamps can)"
    )


def decode(data: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$float" in data:
        return float(data["$float"])
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$items" in data:
        return {decode(k): decode(v) for k, v in data["$items"]}
    if "$time" in data:
        return pd.Timestamp(data["$time"])
    if "$array" in data:
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in "biuf":
            raise StateError(f"snapshot array of dtype {dtype} is not allowed")
        shape = tuple(int(s) for s in data["shape"])
        size = math.prod(shape)
        if size > _MAX_ARRAY or size != len(data["$array"]):
            raise StateError(
                f"snapshot array declares shape {shape} for {len(data['$array'])} values"
            )
        return np.array([decode(v) for v in data["$array"]], dtype=dtype).reshape(shape)
    return {k: decode(v) for k, v in data.items()}


def dumps_state(state: dict[str, Any]) -> str:
    """A runner's :meth:`~tradenn.backtest.runner.Runner.state` as JSON text.

    The account part holds only numbers, strings, booleans, None, lists and dicts with string
    keys, so it goes to ``json`` as it is (non-finite floats as ``NaN``/``Infinity``, which
    :func:`loads_state` reads back); the strategy's own state is tagged with :func:`encode`.
    An order tag that is not such a value raises :class:`StateError`.
    """
    tagged = {**state, "strategy": encode(state["strategy"], "the strategy's attribute")}

    def refuse(value: Any) -> Any:
        raise StateError(f"an order tag {value!r} cannot be saved in a restart snapshot")

    return json.dumps(tagged, allow_nan=True, default=refuse, separators=(",", ":"))


def loads_state(text: str) -> dict[str, Any]:
    """The state :func:`dumps_state` wrote."""
    state = json.loads(text)
    state["strategy"] = decode(state["strategy"])
    return state
