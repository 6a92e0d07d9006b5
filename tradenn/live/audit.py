"""The accounting identities a ledger's rows must satisfy, checked without its strategy.

A ledger written by the run loop satisfies, row by row (``c_0`` is the run's starting cash;
a fill's sign ``s`` is +1 for a buy and -1 for a sell)::

    bars      seq 0, 1, 2, ...; times strictly increasing; prices finite and positive,
              Low <= min(Open, Close) <= max(Open, Close) <= High; Volume >= 0
    fills     units > 0, price > 0, commission >= 0, at the time of a recorded bar, of an
              order that exists;  position_k = position_{k-1} + s_k units_k
              cash_k = cash_{k-1} - s_k units_k price_k - commission_k
    equity    one row per traded bar (seq history, history + 1, ...) at that bar's time;
              cash and units are those of the last fill at or before the bar (c_0 and 0
              before any), and equity = cash + units * Close
    positions units = the last fill's position
    orders    a known status; a filled order has a fill; sizes and prices positive
    state     the restart snapshot is of the last bar

:func:`first_problem` returns the first broken identity as a sentence naming the table and
the row; ``paper status``, ``paper trades`` and a restart refuse a ledger that has one
(``paper verify`` goes further: it replays the strategy and compares every row).
Cash is compared with a relative tolerance of 1e-9 (the identities hold to rounding), every
other value exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["first_problem"]

STATUSES = frozenset({"pending", "filled", "rejected", "canceled"})
_TOLERANCE = 1e-9


def first_problem(
    tables: Mapping[str, pd.DataFrame], *, cash: float, history: int, state_seq: int | None
) -> str | None:
    """The first row of ``tables`` (``bars``, ``orders``, ``fills``, ``positions``,
    ``equity``: the ledger's tables as stored, each in key order) that breaks an identity of
    this module's docstring, as a sentence; None when every row holds."""
    for check in (_bars, _fills, _orders, _positions, _equity):
        problem = check(tables, cash, history)
        if problem:
            return problem
    return _state(tables["bars"], state_seq)


def _row_label(frame: pd.DataFrame, table: str, key: str, timed: bool = True):
    """The function that names row ``row`` of ``table`` in a problem: by its ``key`` column and,
    when ``timed``, its time (``"fills row id 7 (2024-01-02 ...)"``)."""

    def label(row: int) -> str:
        name = f"{table} row {key} {frame[key].iloc[row]}"
        return f"{name} ({frame['time'].iloc[row]})" if timed else name

    return label


def _first(bad: np.ndarray) -> int | None:
    """The first row where ``bad`` holds, or None."""
    rows = np.flatnonzero(bad)
    return int(rows[0]) if len(rows) else None


def _first_off(stored: np.ndarray, expected: np.ndarray, *terms: np.ndarray) -> int | None:
    """The first row where ``stored`` differs from ``expected`` by more than ``_TOLERANCE`` of
    the size of the ``terms`` that make ``expected`` (plus 1, so zeros compare absolutely)."""
    scale = sum(np.abs(term) for term in terms) + 1.0
    return _first(np.abs(stored - expected) > _TOLERANCE * scale)


def _first_broken(label, rules) -> str | None:
    """``"<row>: <rule>"`` for the first row that breaks the first broken rule of ``rules``
    (``(rule, bad)`` pairs, ``bad`` a mask over the rows), or None when none is broken."""
    for rule, bad in rules:
        row = _first(bad)
        if row is not None:
            return f"{label(row)}: {rule}"
    return None


def _numbers(frame: pd.DataFrame, columns: tuple[str, ...], label) -> tuple[dict, str | None]:
    """``columns`` of ``frame`` as float arrays, or a sentence naming the first value that is
    not a number (SQLite stores whatever it is given)."""
    arrays = {}
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        given = frame[column].notna().to_numpy()
        row = _first(given & ~np.isfinite(values))
        if row is not None:
            return arrays, f"{label(row)}: {column} {frame[column].iloc[row]!r} is not a number"
        arrays[column] = values
    return arrays, None


def _bars(tables, cash, history) -> str | None:
    bars = tables["bars"]
    label = _row_label(bars, "bars", "seq")
    seq = bars["seq"].to_numpy()
    row = _first(seq != np.arange(len(bars)))
    if row is not None:
        return f"{label(row)}: expected seq {row} (bars are numbered from 0)"
    # instants: a time may carry its zone's name after it ("...-05:00[America/New_York]")
    text = bars["time"].astype("string").str.replace(r"\[[^\]]*\]$", "", regex=True)
    times = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    row = _first(times.isna().to_numpy())
    if row is not None:
        return f"{label(row)}: time {bars['time'].iloc[row]!r} is not a timestamp"
    row = _first(np.diff(times.dt.tz_convert(None).to_numpy()) <= np.timedelta64(0))
    if row is not None:
        return f"{label(row + 1)}: not after the bar before it"
    values, problem = _numbers(bars, ("open", "high", "low", "close", "volume"), label)
    if problem:
        return problem
    o, h, low, c, v = (values[k] for k in ("open", "high", "low", "close", "volume"))
    rules = (
        ("a price is not positive", (np.minimum(np.minimum(o, c), low) <= 0) | np.isnan(h)),
        ("high is below open, low or close", h < np.maximum(np.maximum(o, c), low)),
        ("low is above open or close", low > np.minimum(o, c)),
        ("volume is negative", v < 0),
    )
    return _first_broken(label, rules)


def _fills(tables, cash, history) -> str | None:
    fills, bars, orders = tables["fills"], tables["bars"], tables["orders"]
    label = _row_label(fills, "fills", "id")
    values, problem = _numbers(fills, ("units", "price", "commission", "position", "cash"), label)
    if problem:
        return problem
    at = _bar_numbers(fills, bars)
    side = fills["side"].to_numpy()
    sign = np.where(side == "buy", 1.0, -1.0)
    checks = (
        ("side is neither buy nor sell", ~np.isin(side, ["buy", "sell"])),
        ("units are not positive", ~(values["units"] > 0)),
        ("price is not positive", ~(values["price"] > 0)),
        ("commission is negative", values["commission"] < 0),
        ("its time is not a recorded bar's", np.isnan(at)),
        ("it is before the fill before it", _earlier(at)),
        ("its order is not in orders", ~fills["order_id"].isin(orders["id"]).to_numpy()),
    )
    problem = _first_broken(label, checks)
    if problem:
        return problem
    position = np.cumsum(sign * values["units"])
    row = _first(~np.isclose(values["position"], position, rtol=_TOLERANCE, atol=1e-9))
    if row is not None:
        return (
            f"{label(row)}: position {values['position'][row]:g}, but the fills up to it "
            f"add up to {position[row]:g}"
        )
    before = np.concatenate([[cash], values["cash"][:-1]])
    flow = sign * values["units"] * values["price"]
    expected = before - flow - values["commission"]
    row = _first_off(values["cash"], expected, before, flow)
    if row is not None:
        return (
            f"{label(row)}: cash {values['cash'][row]:,.2f}, but the cash before it and this "
            f"fill give {expected[row]:,.2f}"
        )
    return None


def _bar_numbers(fills: pd.DataFrame, bars: pd.DataFrame) -> np.ndarray:
    """The seq of the bar each fill happened at (NaN for a time that is no bar's)."""
    seq = pd.Series(bars["seq"].to_numpy(dtype=float), index=bars["time"].to_numpy())
    return fills["time"].map(seq).to_numpy(dtype=float)


def _earlier(at: np.ndarray) -> np.ndarray:
    """Which fills happened at a bar before the previous fill's."""
    earlier = np.zeros(len(at), dtype=bool)
    earlier[1:] = at[1:] < at[:-1]
    return earlier


def _orders(tables, cash, history) -> str | None:
    orders, fills = tables["orders"], tables["fills"]
    label = _row_label(orders, "orders", "id", timed=False)
    values, problem = _numbers(orders, ("size", "limit_price", "stop_price", "sl", "tp"), label)
    if problem:
        return problem
    status = orders["status"].to_numpy()
    filled = orders["id"].isin(fills["order_id"]).to_numpy()
    checks = [
        ("side is neither buy nor sell", ~np.isin(orders["side"].to_numpy(), ["buy", "sell"])),
        (f"status is not one of {', '.join(sorted(STATUSES))}", ~np.isin(status, list(STATUSES))),
        ("it is filled but has no fill", (status == "filled") & ~filled),
    ]
    checks += [(f"{name} is not positive", values[name] <= 0) for name in values]
    return _first_broken(label, checks)


def _positions(tables, cash, history) -> str | None:
    positions, fills = tables["positions"], tables["fills"]
    held = 0.0 if fills.empty else float(fills["position"].iloc[-1])
    units = pd.to_numeric(positions["units"], errors="coerce").to_numpy(dtype=float)
    if len(units) > 1:
        return f"positions: {len(units)} rows, a ledger trades one symbol"
    stored = float(units[0]) if len(units) else 0.0
    if stored != held:
        where = f"positions row {positions['symbol'].iloc[0]}" if len(units) else "positions"
        return f"{where}: units {stored:g}, but the last fill leaves {held:g}"
    return None


def _equity(tables, cash, history) -> str | None:
    equity, bars, fills = tables["equity"], tables["bars"], tables["fills"]
    label = _row_label(equity, "equity", "seq")
    seq = equity["seq"].to_numpy()
    start = history
    if len(equity) != max(len(bars) - start, 0):
        return (
            f"equity: {len(equity)} rows for {len(bars) - start} traded bars "
            f"(bars {start}..{len(bars) - 1})"
        )
    if equity.empty:
        return None
    row = _first(seq != np.arange(start, len(bars)))
    if row is not None:
        return f"{label(row)}: expected seq {start + row} (one row per traded bar)"
    row = _first(equity["time"].to_numpy() != bars["time"].to_numpy()[start:])
    if row is not None:
        return f"{label(row)}: its time is not bar {seq[row]}'s"
    values, problem = _numbers(equity, ("cash", "units", "equity"), label)
    if problem:
        return problem
    # the last fill at or before each bar
    last = np.searchsorted(_bar_numbers(fills, bars), seq, side="right") - 1
    fill_cash = np.concatenate([[cash], pd.to_numeric(fills["cash"]).to_numpy(dtype=float)])
    fill_units = np.concatenate([[0.0], pd.to_numeric(fills["position"]).to_numpy(dtype=float)])
    want_cash, want_units = fill_cash[last + 1], fill_units[last + 1]
    row = _first(values["units"] != want_units)
    if row is not None:
        return f"{label(row)}: units {values['units'][row]:g}, the fills leave {want_units[row]:g}"
    row = _first(values["cash"] != want_cash)
    if row is not None:
        return (
            f"{label(row)}: cash {values['cash'][row]:,.2f}, the fills leave {want_cash[row]:,.2f}"
        )
    close = pd.to_numeric(bars["close"]).to_numpy(dtype=float)[start:]
    marked = values["cash"] + values["units"] * close
    row = _first_off(values["equity"], marked, values["cash"], values["units"] * close)
    if row is not None:
        return (
            f"{label(row)}: equity {values['equity'][row]:,.2f}, but cash + units x close "
            f"is {marked[row]:,.2f}"
        )
    return None


def _state(bars: pd.DataFrame, state_seq: int | None) -> str | None:
    if state_seq is None or bars.empty:
        return None
    last = int(bars["seq"].iloc[-1])
    if state_seq != last:
        return f"state: the restart snapshot is of bar {state_seq}, the last bar is {last}"
    return None
