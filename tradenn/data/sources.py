"""One entry point for price data: bundled names, CSV paths and ``yf:TICKER``."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tradenn.data import files, yahoo
from tradenn.errors import DataError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class BundledDataset:
    """A dataset that ships with tradenn (see ``data/README.md`` for provenance)."""

    name: str
    description: str
    bar: str

    @property
    def path(self) -> Path:
        return BUNDLED_DIR / f"{self.name}.csv"


BUNDLED = {
    d.name: d
    for d in (
        BundledDataset("SPX", "S&P 500 index", "daily"),
        BundledDataset("NASDAQ", "NASDAQ Composite index", "daily"),
        BundledDataset("MSFT", "Microsoft stock, split-adjusted", "daily"),
        BundledDataset("GOOGL", "Alphabet class A stock", "daily"),
        BundledDataset("EURUSD_1H", "EUR/USD exchange rate, ask", "hourly"),
    )
}


def _bound(value, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"{name}: cannot read date {value!r} (use YYYY-MM-DD)") from None


def _date_only(value) -> bool:
    """True when ``value`` names a whole day (``"2018-12-31"``), so ``end`` includes that day."""
    if isinstance(value, str):
        return len(value.strip()) <= 10
    return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)


def load(source: str | os.PathLike, start=None, end=None, **yahoo_options) -> pd.DataFrame:
    """Load a validated price frame.

    Parameters
    ----------
    source : str or path
        A CSV path, a bundled name (``"SPX"``, ``"nasdaq"``, ... case-insensitive; see
        :data:`BUNDLED`), or ``"yf:TICKER"`` (Yahoo Finance, adjusted prices, cached on disk). A
        file that exists wins over the bundled data set of the same name.
    start, end : date-like, optional
        Keep bars from ``start`` to ``end`` inclusive; a date without a time includes that day.
    **yahoo_options
        For ``yf:`` sources: ``interval``, ``adjusted``, ``cache``, ``max_age``.

    Returns
    -------
    DataFrame
        DatetimeIndex named ``Date``; float columns Open, High, Low, Close, Volume (+ extras).

    Raises
    ------
    DataError
        Unknown source, unreadable or invalid data, bad dates, or an empty selection.
    """
    start_ts, end_ts = _bound(start, "start"), _bound(end, "end")
    if end_ts is not None and _date_only(end):
        end_ts = end_ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise DataError(f"start {start_ts.date()} is after end {end_ts.date()}")
    text = os.fspath(source)
    if text.lower().startswith("yf:"):
        frame = yahoo.load(text[3:].strip(), start_ts, end_ts, **yahoo_options)
    elif yahoo_options:
        raise DataError(f"{text}: options {sorted(yahoo_options)} apply to yf: sources only")
    elif Path(text).is_file():  # a file that exists wins over a bundled name ("spx" here)
        frame = files.read_csv(text)
    elif text.upper() in BUNDLED:
        frame = files.read_csv(BUNDLED[text.upper()].path, date_format="ISO8601")
        text = text.upper()
    else:
        raise DataError(
            f"{text}: unknown data source: not a bundled name ({', '.join(BUNDLED)}), not an "
            "existing CSV file, and not yf:TICKER"
        )
    selected = frame.loc[start_ts:end_ts] if start_ts is not None or end_ts is not None else frame
    if selected.empty:
        raise DataError(
            f"{text}: no bars between {start or 'the start'} and {end or 'the end'} "
            f"(the data covers {frame.index[0]} .. {frame.index[-1]})"
        )
    selected = selected.copy()
    selected.attrs["source"] = text
    return selected
