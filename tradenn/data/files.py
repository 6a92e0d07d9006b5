"""Read price CSVs from common exports: auto-detected date column, date format, column names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tradenn.data.validation import OHLCV, validate
from tradenn.errors import DataError

# Header spellings seen in exports from brokers, Yahoo, Stooq, Dukascopy, MetaTrader and Kaggle.
_COLUMN_ALIASES = {
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
_DATE_NAMES = {"date", "datetime", "time", "timestamp", "gmt time", "local time", "day", "dt"}

# Tried in order; the first that reads every value wins. Month-first before day-first, as in the
# US exports that dominate; an all-day-first file fails month-first on its first day above 12.
_DATE_FORMATS = (
    "ISO8601",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d",
    "%Y%m%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%d-%m-%Y",
    "%d-%b-%Y",
    "%b %d, %Y",
)


def _canonical(name: object) -> str:
    text = str(name).strip()
    return _COLUMN_ALIASES.get(text.lower(), text)


def _find_date_column(frame: pd.DataFrame) -> str:
    for column in frame.columns:
        if str(column).strip().lower() in _DATE_NAMES:
            return column
    return frame.columns[0]


def parse_dates(values: pd.Series, source: str, column: str) -> pd.DatetimeIndex:
    """Parse a column of date strings with the first format that reads all of them.

    Raises :class:`DataError` naming the first value that no format reads.
    """
    text = values.astype("string").str.strip()
    best, best_count = None, -1
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        count = int(parsed.notna().sum())
        if count == len(text):
            index = pd.DatetimeIndex(parsed)
            return index.tz_localize(None) if index.tz is not None else index
        if count > best_count:
            best, best_count = parsed, count
    first_bad = int(np.flatnonzero(best.isna().to_numpy())[0])
    raise DataError(
        f"{source}: cannot read date {text.iloc[first_bad]!r} in column {column!r} at line "
        f"{first_bad + 2} (expected e.g. 2004-08-19, 1/4/1999 or 01.01.2017 22:00:00.000)"
    )


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a price CSV into a validated price frame.

    The date column is the one named like a date (``Date``, ``Time``, ``Datetime``, ...) or else
    the first column; common date formats are detected. Column names are matched case-insensitively
    (``close``, ``Adj Close``, ``vol``, ...). A file without a volume column gets ``Volume = 0``
    (FX and index exports often have none). Timezone offsets are dropped, keeping wall-clock time.

    Raises
    ------
    DataError
        With the file name and the first bad line, for anything :func:`validate` rejects, an
        unreadable file, or dates that no known format reads.
    """
    source = str(path)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{source}: no such file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DataError(f"{source}: not a readable CSV file ({reason})") from None
    if frame.empty:
        raise DataError(f"{source}: no rows of data")
    date_column = _find_date_column(frame)
    if frame[date_column].isna().any():
        line = int(np.flatnonzero(frame[date_column].isna().to_numpy())[0]) + 2
        raise DataError(f"{source}: missing date in column {date_column!r} at line {line}")
    index = parse_dates(frame.pop(date_column), source, str(date_column))
    frame.columns = [_canonical(c) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"{source}: column {duplicated[0]!r} appears more than once")
    if "Volume" not in frame.columns and all(c in frame.columns for c in OHLCV[:4]):
        frame["Volume"] = 0.0
    frame.index = index.rename("Date")
    validate(frame, source, line_offset=2)
    numeric = [c for c in (*OHLCV, "Adj Close") if c in frame.columns]
    frame[numeric] = frame[numeric].apply(pd.to_numeric).astype(np.float64)
    return frame
