"""Aggregate bars to a coarser frequency (hourly -> daily, daily -> weekly, ...)."""

from __future__ import annotations

import pandas as pd

from tradenn.errors import DataError

__all__ = ["OHLCV_AGG", "resample"]

OHLCV_AGG: dict[str, str] = {
    "Open": "first",
    "High": "max",
    "Low": "min",
    "Close": "last",
    "Adj Close": "last",
    "Volume": "sum",
}
"""How a column of that name aggregates into a coarser bar (any other column: ``"last"``);
:func:`resample` and :func:`tradenn.backtest.lib.resample_apply` both use it."""


def resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Aggregate a price frame to the pandas offset ``rule`` (``"W"``, ``"ME"``, ``"4h"``, ...).

    Each output bar takes the first Open, the highest High, the lowest Low, the last Close (and
    Adj Close) and the summed Volume of the bars in its period; other columns take their last value.
    Periods with no bars (weekends, holidays) are dropped rather than filled.

    Each output bar is stamped with the timestamp of the **last input bar it contains**, not the
    period's label: a weekly bar made of Monday..Friday closes is known only at Friday's close, and
    stamping it Monday (or the following Sunday) would let a backtest trade on it too early (or
    misalign it with other data).
    """
    try:
        grouper = df.resample(rule)
    except (ValueError, TypeError) as error:
        raise DataError(f"resample: invalid rule {rule!r} ({error})") from None
    spec = {c: OHLCV_AGG.get(c, "last") for c in df.columns}
    bars = grouper.agg(spec)
    stamps = pd.Series(df.index, index=df.index).resample(rule).last()
    keep = stamps.notna().to_numpy()
    out = bars[keep]
    out.index = pd.DatetimeIndex(stamps[keep].to_numpy(), name=df.index.name or "Date")
    return out
