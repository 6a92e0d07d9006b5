"""The price-frame contract and its check.

A price frame is a :class:`pandas.DataFrame` with a strictly increasing (so unique)
:class:`~pandas.DatetimeIndex` and float columns ``Open, High, Low, Close, Volume``; more columns
are allowed. :func:`validate` enforces it and names the first offending row.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from tradenn.errors import DataError

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
OHLCV = (*PRICE_COLUMNS, "Volume")
MAX_PRICE = 1e15
"""Prices at or above this are refused: no instrument trades there, and cash times such a price
overflows a float (equity would print inf or nan)."""


# Header spellings seen in exports from brokers, Yahoo, Stooq, Dukascopy, MetaTrader and Kaggle.
COLUMN_ALIASES = {
    "open": "Open",
    "o": "Open",
    "high": "High",
    "h": "High",
    "low": "Low",
    "l": "Low",
    "close": "Close",
    "c": "Close",
    "last": "Close",
    "price": "Close",
    "adj close": "Adj Close",
    "adj_close": "Adj Close",
    "adjclose": "Adj Close",
    "adjusted close": "Adj Close",
    "adjusted_close": "Adj Close",
    "volume": "Volume",
    "vol": "Volume",
    "v": "Volume",
    "tickvol": "Volume",
    "tick_volume": "Volume",
}
DATE_NAMES = frozenset(
    {"date", "datetime", "time", "timestamp", "gmt time", "local time", "day", "dt"}
)


def date_column(frame: pd.DataFrame) -> object | None:
    """The column named like a date (``Date``, ``time``, ``Timestamp``, ...), if any."""
    for column in frame.columns:
        if str(column).strip().lower() in DATE_NAMES:
            return column
    return None


def canonical_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with its columns named as the contract names them (``close``, ``Last``,
    ``vol``, ``adj_close`` -> ``Close``, ``Close``, ``Volume``, ``Adj Close``; case and spaces
    ignored) and ``Volume = 0`` when it has prices but no volume (FX and index exports often
    have none). Returns ``frame`` itself when nothing changes, else a shallow copy."""
    names = [COLUMN_ALIASES.get(str(c).strip().lower(), str(c).strip()) for c in frame.columns]
    duplicated = pd.Index(names)[pd.Index(names).duplicated()]
    if len(duplicated):
        raise DataError(f"{source}: column {duplicated[0]!r} appears more than once")
    add_volume = "Volume" not in names and all(c in names for c in PRICE_COLUMNS)
    if names == list(frame.columns) and not add_volume:
        return frame
    frame = frame.copy(deep=False)
    frame.columns = names
    if add_volume:
        frame["Volume"] = 0.0
    return frame


def price_frame(df: pd.DataFrame, source: str = "<frame>") -> pd.DataFrame:
    """``df`` as a valid price frame, accepting from a DataFrame what the CSV reader accepts
    from a file: column names in any case or a common alias, no ``Volume`` column, and the
    dates in a date-named column instead of the index. Returns ``df`` itself when it already
    keeps the contract, else a normalized shallow copy; then :func:`validate` checks it.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    frame = canonical_columns(df, source)
    column = None if isinstance(frame.index, pd.DatetimeIndex) else date_column(frame)
    if column is not None:
        try:
            index = pd.DatetimeIndex(pd.to_datetime(frame[column], format="ISO8601"))
        except (ValueError, TypeError) as error:
            raise DataError(
                f"{source}: cannot read the dates in column {column!r} ({error})"
            ) from None
        frame = frame.drop(columns=[column]).set_axis(index.rename("Date"), axis=0)
    validate(frame, source)
    return frame


def _where(df: pd.DataFrame, position: int, line_offset: int | None) -> str:
    """Describe row ``position`` for a message: its timestamp, and its line number in a file."""
    label = df.index[position]
    if isinstance(label, pd.Timestamp):
        label = label.isoformat(sep=" ").removesuffix(" 00:00:00").removesuffix("T00:00:00")
    if line_offset is None:
        return f"row {position + 1} ({label})"
    return f"line {position + line_offset} ({label})"


def validate(df: pd.DataFrame, source: str = "<frame>", *, line_offset: int | None = None) -> None:
    """Check that ``df`` is a valid price frame; raise :class:`DataError` on the first problem.

    Checks, in order: not empty; columns Open, High, Low, Close, Volume present; values numeric
    (these and ``Adj Close`` if present); no NaN; nothing infinite; prices positive and below
    :data:`MAX_PRICE`, volume non-negative;
    ``High >= max(Open, Close)`` and ``Low <= min(Open, Close)``; a
    :class:`~pandas.DatetimeIndex` that strictly increases (sorted, no duplicate timestamps).
    The index may be naive or tz-aware in one zone; a backtest keeps that zone in its results
    (the rule is in :mod:`tradenn.data.timezones`).

    Parameters
    ----------
    df : DataFrame
        The frame to check.
    source : str
        Where it came from (a path, bundled name or ``yf:TICKER``); every message starts with it.
    line_offset : int, optional
        For frames read from a file: the line number of the first data row, so messages can say
        ``line N`` instead of ``row N``.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"{source}: no rows of data")
    missing = [c for c in OHLCV if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {', '.join(map(str, df.columns))})"
        )
    numeric_columns = [*OHLCV, *(["Adj Close"] if "Adj Close" in df.columns else [])]
    for column in numeric_columns:
        values = df[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = np.flatnonzero(numeric.isna().to_numpy() & values.notna().to_numpy())
            if len(bad):
                raise DataError(
                    f"{source}: non-numeric {column} {str(values.iloc[bad[0]])!r} at "
                    f"{_where(df, bad[0], line_offset)}"
                )
    if all(pd.api.types.is_numeric_dtype(df[c]) for c in numeric_columns):
        columns = [df[c].to_numpy(dtype=np.float64) for c in numeric_columns]
    else:
        coerced = df[numeric_columns].apply(pd.to_numeric, errors="coerce")
        columns = [coerced[c].to_numpy(dtype=np.float64) for c in numeric_columns]
    # Whole-column reductions first (one pass, no temporary array); where one reports a
    # problem, the mask finds the first row.
    if any(math.isnan(float(col.sum())) for col in columns):  # a NaN (or inf - inf) somewhere
        nans = [np.isnan(col) for col in columns]
        if any(m.any() for m in nans):
            row = min(int(np.argmax(m)) for m in nans if m.any())
            column = next(c for c, m in zip(numeric_columns, nans, strict=True) if m[row])
            raise DataError(
                f"{source}: missing value (NaN) in {column} at {_where(df, row, line_offset)}"
            )
    for column, col in zip(numeric_columns, columns, strict=True):
        if math.isinf(float(col.max())) or math.isinf(float(col.min())):
            bad = np.flatnonzero(np.isinf(col))
            raise DataError(
                f"{source}: infinite {column} at {_where(df, bad[0], line_offset)} (a number "
                f"beyond 1.8e308, such as 1e400, reads as infinite)"
            )
    open_, high, low, close, volume = columns[:5]
    prices = [*PRICE_COLUMNS, *numeric_columns[5:]]
    for column, col in zip(prices, [*columns[:4], *columns[5:]], strict=True):
        if col.max() >= MAX_PRICE:
            bad = np.flatnonzero(col >= MAX_PRICE)
            raise DataError(
                f"{source}: implausible {column} {col[bad[0]]:g} at "
                f"{_where(df, bad[0], line_offset)}: prices must be below {MAX_PRICE:g}"
            )
        if col.min() <= 0:
            bad = np.flatnonzero(col <= 0)
            raise DataError(
                f"{source}: non-positive {column} {col[bad[0]]:g} at "
                f"{_where(df, bad[0], line_offset)}"
            )
    bad = np.flatnonzero(volume < 0) if volume.min() < 0 else ()
    if len(bad):
        raise DataError(
            f"{source}: negative Volume {volume[bad[0]]:g} at {_where(df, bad[0], line_offset)}"
        )
    bad = np.flatnonzero(high < np.maximum(open_, close))
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{source}: High {high[i]:g} is below max(Open, Close) = {max(open_[i], close[i]):g} "
            f"at {_where(df, i, line_offset)}"
        )
    bad = np.flatnonzero(low > np.minimum(open_, close))
    if len(bad):
        i = bad[0]
        raise DataError(
            f"{source}: Low {low[i]:g} is above min(Open, Close) = {min(open_[i], close[i]):g} "
            f"at {_where(df, i, line_offset)}"
        )
    if not isinstance(df.index, pd.DatetimeIndex):
        # pandas leaves timestamps of several zones or offsets (a DST change) in an object index.
        zones = sorted({str(t.tzinfo) for t in df.index if isinstance(t, datetime) and t.tzinfo})
        if zones and any(isinstance(t, datetime) and t.tzinfo is None for t in df.index):
            zones.append("no zone")
        if len(zones) > 1:
            raise DataError(
                f"{source}: the index mixes time zones or UTC offsets ({', '.join(zones[:4])}"
                f"{', ...' if len(zones) > 4 else ''}); put it in one zone, e.g. "
                "pd.to_datetime(index, utc=True).tz_convert(zone)"
            )
        raise DataError(f"{source}: index must be a DatetimeIndex, got {type(df.index).__name__}")
    if df.index.hasnans:
        bad = np.flatnonzero(df.index.isna())[0]
        raise DataError(f"{source}: missing timestamp at {_where(df, bad, line_offset)}")
    steps = np.diff(df.index.asi8)
    if len(steps) and (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        problem = "duplicate timestamp" if steps[i - 1] == 0 else "timestamps out of order"
        raise DataError(
            f"{source}: {problem} at {_where(df, i, line_offset)}, after {df.index[i - 1]} "
            "(sort the rows by time and remove duplicates)"
        )
