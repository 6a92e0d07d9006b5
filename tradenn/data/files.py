"""Read price CSVs from common exports: auto-detected date column, date format, column names."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import pandas as pd

from tradenn.data.timezones import split_utc_offsets, wall_clock
from tradenn.data.validation import OHLCV, canonical_columns, date_column, validate
from tradenn.errors import DataError

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

# the day-first reading of each month-first format: both may read every value of a file
_DAY_FIRST = {
    "%m/%d/%Y": "%d/%m/%Y",
    "%m/%d/%Y %H:%M": "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S": "%d/%m/%Y %H:%M:%S",
}

# the format every date is read with instead of detecting one (None: detect); see date_format
_forced_format: ContextVar[str | None] = ContextVar("tradenn_date_format", default=None)


@contextmanager
def date_format(fmt: str | None) -> Iterator[None]:
    """Within the block, every price CSV read (:func:`read_csv`, ``data.load``) takes its dates
    in the strftime format ``fmt`` instead of detecting one (``None``: detect). The command
    line's ``tradenn --date-format FMT`` sets it for one command."""
    token = _forced_format.set(fmt)
    try:
        yield
    finally:
        _forced_format.reset(token)


def _find_date_column(frame: pd.DataFrame) -> str:
    return date_column(frame) or frame.columns[0]


class _MixedOffsets(Exception):
    """pandas refused a column whose UTC offsets differ ("Mixed timezones detected")."""


def _parse_all(
    text: pd.Series, formats: tuple[str, ...] = _DATE_FORMATS
) -> tuple[pd.DatetimeIndex | None, int, str]:
    """The values parsed with the first of ``formats`` that reads all of them and that format,
    else (None, position of the first value the best format could not read, that format)."""
    best, best_count, best_format = None, -1, formats[0]
    for fmt in formats:
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        except ValueError as error:  # errors="coerce" does not cover offsets that differ
            raise _MixedOffsets from error
        count = int(parsed.notna().sum())
        if count == len(text):
            return pd.DatetimeIndex(parsed), -1, fmt
        if count > best_count:
            best, best_count, best_format = parsed, count, fmt
    return None, int(np.flatnonzero(best.isna().to_numpy())[0]), best_format


def _warn_if_day_first_reads_too(
    index: pd.DatetimeIndex, text: pd.Series, fmt: str, source: str
) -> None:
    """Warn when a month-first file reads day-first as well, with another spacing (monthly
    day-first dates read as the first days of one month), saying how to force the other."""
    other = _DAY_FIRST.get(fmt)
    if other is None or len(index) < 2:
        return
    try:
        alternative = pd.DatetimeIndex(pd.to_datetime(text, format=other, errors="coerce"))
    except ValueError:
        return
    if alternative.isna().any() or alternative.equals(index):
        return
    day = np.timedelta64(1, "D")
    spacing = float(np.median(np.diff(index.to_numpy()) / day))
    other_spacing = float(np.median(np.diff(alternative.to_numpy()) / day))
    if not alternative.is_monotonic_increasing or np.isclose(spacing, other_spacing, rtol=0.01):
        return
    warnings.warn(
        f"{source}: dates like {text.iloc[1]!r} read month-first ({index[0].date()} .. "
        f"{index[-1].date()}, {_days(spacing)} apart); day-first they read "
        f"{alternative[0].date()} .. {alternative[-1].date()}, {_days(other_spacing)} apart. "
        f"For day-first: tradenn --date-format '{other}' ... (read_csv(date_format=...))",
        stacklevel=4,
    )


def _read_offsets(text: pd.Series, source: str, column: str) -> tuple[pd.Series, pd.Series]:
    """Split values with UTC offsets that differ (daylight saving) into wall-clock text and
    offsets; an offset pandas cannot read is an error naming its line."""
    wall, offsets = split_utc_offsets(text)
    for offset in offsets.dropna().unique():
        probe = pd.to_datetime(f"2000-01-01T00:00:00{offset}", format="ISO8601", errors="coerce")
        if pd.isna(probe):
            line = int(np.flatnonzero((offsets == offset).fillna(False).to_numpy())[0]) + 2
            raise DataError(
                f"{source}: invalid UTC offset {offset!r} in date {text.iloc[line - 2]!r} in "
                f"column {column!r} at line {line}"
            )
    return wall, offsets


def _check_fall_back(
    index: pd.DatetimeIndex, offsets: pd.Series, text: pd.Series, source: str
) -> None:
    """Refuse wall-clock times that repeat or go back where the UTC offset changes: dropping the
    offsets of a daylight-saving fall-back would merge or reorder an hour of bars."""
    back = np.flatnonzero(np.diff(index.asi8) <= 0)
    if not len(back):
        return
    i = int(back[0]) + 1
    before, after = offsets.iloc[i - 1], offsets.iloc[i]
    if pd.isna(before) or pd.isna(after) or before == after:
        return  # an ordinary duplicate or disorder: validate() reports it
    problem, effect = (
        ("duplicate timestamp", "repeats the wall-clock time")
        if index[i] == index[i - 1]
        else ("timestamps out of order", "takes the wall-clock time back to")
    )
    raise DataError(
        f"{source}: {problem} at line {i + 2} ({text.iloc[i]} after {text.iloc[i - 1]}): "
        "dropping the UTC offsets, which change there (as at a daylight-saving fall-back), "
        f"{effect} {index[i]}; write the file in UTC or one fixed offset"
    )


def _warn_if_offsets_disagree(offsets: pd.Series, source: str) -> None:
    """Offsets further apart than a daylight-saving hour, or values with and without one, are
    read as wall-clock times as well, but say so: they may be times from different places."""
    lines = {}
    for offset in offsets.dropna().unique():
        probe = pd.Timestamp(f"2000-01-01T00:00:00{offset}")
        first = int(np.flatnonzero((offsets == offset).fillna(False).to_numpy())[0]) + 2
        lines[probe.utcoffset()] = (offset, first)
    missing = np.flatnonzero(offsets.isna().to_numpy())
    spread = max(lines) - min(lines) if lines else pd.Timedelta(0)
    if spread <= pd.Timedelta(hours=1) and not len(missing):
        return
    low, high = lines[min(lines)], lines[max(lines)]
    named = f"{low[0]} (line {low[1]}) and {high[0]} (line {high[1]})" if spread else low[0]
    none = f" and some none (line {missing[0] + 2})" if len(missing) else ""
    warnings.warn(
        f"{source}: dates carry UTC offsets {named}{none}; read as wall-clock times with the "
        "offsets dropped (write the file in UTC or one offset if they are instants)",
        stacklevel=4,
    )


def _days(count: float) -> str:
    return "1 day" if count == 1 else f"{count:g} days"


def parse_dates(
    values: pd.Series, source: str, column: str, fmt: str | None = None
) -> pd.DatetimeIndex:
    """Parse a column of date strings with ``fmt``, or else the first format that reads all
    of them (a warning when month-first wins but day-first reads them all too, with another
    spacing).

    UTC offsets are dropped, keeping wall-clock time (see :mod:`tradenn.data.timezones`), also
    when they change with daylight saving. Raises :class:`DataError` naming the first value that
    no format reads, an invalid offset, or a wall-clock time that repeats because the offset
    changed (a daylight-saving fall-back in intraday data).
    """
    text = values.astype("string").str.strip()
    formats = _DATE_FORMATS if fmt is None else (fmt,)
    offsets, wall = None, text
    try:
        index, first_bad, used = _parse_all(text, formats)
    except _MixedOffsets:
        wall, offsets = _read_offsets(text, source, column)
        try:
            index, first_bad, used = _parse_all(wall, formats)
        except _MixedOffsets:
            index, first_bad, used = None, 0, formats[0]
    if index is None and fmt is not None:
        raise DataError(
            f"{source}: date {text.iloc[first_bad]!r} in column {column!r} at line "
            f"{first_bad + 2} does not match the date format {fmt!r}"
        )
    if index is None:
        raise DataError(
            f"{source}: cannot read date {text.iloc[first_bad]!r} in column {column!r} at line "
            f"{first_bad + 2} (expected e.g. 2004-08-19, 1/4/1999 or 01.01.2017 22:00:00.000)"
        )
    if fmt is None:
        _warn_if_day_first_reads_too(index, wall, used, source)
    if index.tz is not None:  # one offset for the whole column: drop it, keep wall-clock time
        index = wall_clock(index)
    if offsets is not None:
        _check_fall_back(index, offsets, text, source)
        _warn_if_offsets_disagree(offsets, source)
    return index


def _check_dates(index: pd.DatetimeIndex, source: str) -> None:
    """Dates a price file cannot hold: a bar after tomorrow is an error (no one has tomorrow's
    prices; a year typed as 3000 or 2100 would annualize over a century); a gap of more than a
    year between two bars of denser data is a warning naming both lines."""
    stamps = index.tz_localize(None) if index.tz is not None else index
    tomorrow = pd.Timestamp.now().normalize() + pd.Timedelta(days=2)
    late = np.flatnonzero(stamps >= tomorrow)
    if len(late):
        raise DataError(
            f"{source}: line {late[0] + 2} ({stamps[late[0]].date()}) is in the future "
            f"(today is {pd.Timestamp.now().date()})"
        )
    if len(stamps) > 2:
        days = np.diff(stamps.to_numpy()) / np.timedelta64(1, "D")  # whatever the index's unit
        gaps = np.flatnonzero((days > 366) & (days > 50 * float(np.median(days))))
        if len(gaps):
            i = int(gaps[0])
            warnings.warn(
                f"{source}: {(stamps[i + 1] - stamps[i]).days:,} days between line {i + 2} "
                f"({stamps[i].date()}) and line {i + 3} ({stamps[i + 1].date()}): a mistyped "
                "date?",
                stacklevel=3,
            )


def read_csv(path: str | Path, date_format: str | None = None) -> pd.DataFrame:
    """Read a price CSV into a validated price frame.

    The date column is the one named like a date (``Date``, ``Time``, ``Datetime``, ...) or else
    the first column; common date formats are detected. Column names are matched case-insensitively
    (``close``, ``Adj Close``, ``vol``, ...). A file without a volume column gets ``Volume = 0``
    (FX and index exports often have none). UTC offsets are dropped, keeping wall-clock time, also
    when they change with daylight saving (see :mod:`tradenn.data.timezones`). ``date_format``
    (a strftime format such as ``"%d/%m/%Y"``) reads every date with that format instead of
    detecting one; within :func:`date_format` its format is the default.

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
    except PermissionError:
        raise DataError(f"{source}: permission denied (the file cannot be read)") from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a folder, not a CSV file") from None
    except OSError as error:
        raise DataError(f"{source}: cannot be read ({error.strerror or error})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DataError(f"{source}: not a readable CSV file ({reason})") from None
    if frame.empty:
        raise DataError(f"{source}: no rows of data")
    date_column = _find_date_column(frame)
    if frame[date_column].isna().any():
        line = int(np.flatnonzero(frame[date_column].isna().to_numpy())[0]) + 2
        raise DataError(f"{source}: missing date in column {date_column!r} at line {line}")
    fmt = date_format if date_format is not None else _forced_format.get()
    index = parse_dates(frame.pop(date_column), source, str(date_column), fmt)
    frame = canonical_columns(frame, source)
    frame.index = index.rename("Date")
    validate(frame, source, line_offset=2)
    _check_dates(frame.index, source)
    numeric = [c for c in (*OHLCV, "Adj Close") if c in frame.columns]
    frame[numeric] = frame[numeric].apply(pd.to_numeric).astype(np.float64)
    return frame
