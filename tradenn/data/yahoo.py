"""Yahoo Finance prices through yfinance, with an on-disk cache so research runs offline.

The cache holds one CSV per ticker and interval (``~/.cache/tradenn/yf`` by default; set
``TRADENN_CACHE_DIR`` or pass ``cache_dir``) and a JSON sidecar saying what span was fetched and
when. :func:`load` serves from the cache when it covers the request and is fresh enough, refreshes
it otherwise, and falls back to a stale cache (with a warning) when the network is down.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from tradenn.data.validation import validate
from tradenn.errors import DataError

# How far back Yahoo serves intraday bars; daily and longer bars go back to the first trade.
_INTRADAY_LIMIT = {
    "1m": timedelta(days=7),
    "2m": timedelta(days=59),
    "5m": timedelta(days=59),
    "15m": timedelta(days=59),
    "30m": timedelta(days=59),
    "90m": timedelta(days=59),
    "60m": timedelta(days=729),
    "1h": timedelta(days=729),
}
INTERVALS = (*_INTRADAY_LIMIT, "1d", "5d", "1wk", "1mo", "3mo")
MAX_AGE = timedelta(hours=12)


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The folder that holds downloaded prices: ``override``, ``$TRADENN_CACHE_DIR``, or
    ``$XDG_CACHE_HOME/tradenn`` (``~/.cache/tradenn``), each with a ``yf`` subfolder."""
    if override is not None:
        return Path(override) / "yf"
    root = os.environ.get("TRADENN_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tradenn"
    return Path(root) / "yf"


def _readable_cache(csv_path: Path, meta_path: Path) -> dict | None:
    """The cache's metadata when both files are there and readable (the prices validate and the
    metadata is a JSON object), else None."""
    if not (csv_path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        validate(pd.read_csv(csv_path, index_col=0, parse_dates=True), str(csv_path))
    except (ValueError, TypeError, OSError, DataError):
        return None
    return meta if isinstance(meta, dict) else None


def _paths(ticker: str, interval: str, adjusted: bool, folder: Path) -> tuple[Path, Path]:
    stem = f"{quote(ticker.upper(), safe='')}_{interval}{'' if adjusted else '_raw'}"
    return folder / f"{stem}.csv", folder / f"{stem}.json"


def _timestamp(value, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"{name}: cannot read date {value!r} (use YYYY-MM-DD)") from None


def fetch(
    ticker: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    interval: str = "1d",
    adjusted: bool = True,
) -> pd.DataFrame:
    """Download bars from Yahoo Finance into a price frame (no cache).

    Prices are split- and dividend-adjusted by default (``auto_adjust``), as research wants.
    Raises :class:`DataError` when nothing comes back: offline, unknown ticker, or an empty range.
    """
    import yfinance  # imported here: it is slow to import and only this path needs it

    if interval not in INTERVALS:
        raise DataError(
            f"yf:{ticker}: unknown interval {interval!r} (one of {', '.join(INTERVALS)})"
        )
    kwargs: dict = {
        "interval": interval,
        "auto_adjust": adjusted,
        "actions": False,
        "progress": False,
        "threads": False,
    }
    if start is None and end is None and interval not in _INTRADAY_LIMIT:
        kwargs["period"] = "max"
    else:
        if start is None:
            start = pd.Timestamp.now().normalize() - _INTRADAY_LIMIT.get(interval, timedelta(0))
        kwargs["start"] = start.strftime("%Y-%m-%d")
        if end is not None:
            # yfinance's end is exclusive; ours is inclusive of the end date.
            kwargs["end"] = (end.normalize() + timedelta(days=1)).strftime("%Y-%m-%d")
    try:
        with _quiet_yfinance() as said:
            raw = yfinance.download(ticker, **kwargs)
    except Exception as error:  # yfinance raises many kinds; all mean "no data this time"
        raise DataError(f"yf:{ticker}: download failed ({type(error).__name__}: {error})") from None
    if raw is None or raw.empty:
        reason = f"; Yahoo said: {said[0]}" if said else ""
        raise DataError(
            f"yf:{ticker}: Yahoo Finance returned no data (offline, unknown ticker, or no bars in "
            f"the requested range){reason}"
        )
    return _to_price_frame(raw, ticker)


@contextlib.contextmanager
def _quiet_yfinance():
    """yfinance's own log lines, prints and warnings held back (offline, it writes a dozen
    before tradenn's one-line error); yields the list of what it said, first line of each."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage().strip()
            if text:
                said.append(text.splitlines()[0][:200])

    logger = logging.getLogger("yfinance")
    handler, propagate = Keep(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    printed = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.simplefilter("ignore")
            with contextlib.redirect_stderr(printed):
                yield said
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        said.extend(line.strip()[:200] for line in printed.getvalue().splitlines() if line.strip())


def _to_price_frame(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    frame = raw.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        # yfinance >= 0.2.48 labels columns (Price, Ticker) even for one ticker.
        level = next(
            i for i in range(frame.columns.nlevels) if "Close" in frame.columns.get_level_values(i)
        )
        frame.columns = frame.columns.get_level_values(level)
    index = pd.DatetimeIndex(frame.index)
    frame.index = (index.tz_localize(None) if index.tz is not None else index).rename("Date")
    keep = [
        c for c in ("Open", "High", "Low", "Close", "Adj Close", "Volume") if c in frame.columns
    ]
    frame = frame[keep].astype("float64")
    # Yahoo sometimes returns a trailing row with NaN prices for a bar in progress; drop such rows
    # rather than the whole download.
    frame = frame.dropna(subset=["Open", "High", "Low", "Close"])
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    validate(frame, f"yf:{ticker}")
    return frame


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def download(
    ticker: str,
    start=None,
    end=None,
    *,
    interval: str = "1d",
    adjusted: bool = True,
    cache: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Fetch ``ticker`` and merge it into the cache; return the cached frame and its path.

    New bars replace cached bars with the same timestamp; the cache file is replaced atomically,
    so an interrupted download never leaves a half-written file.
    """
    start_ts, end_ts = _timestamp(start, "start"), _timestamp(end, "end")
    fresh = fetch(ticker, start_ts, end_ts, interval=interval, adjusted=adjusted)
    folder = cache_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, meta_path = _paths(ticker, interval, adjusted, folder)
    meta = {
        "start": None if start_ts is None else start_ts.isoformat(),
        "end": None if end_ts is None else end_ts.isoformat(),
    }
    old_meta = _readable_cache(csv_path, meta_path)
    if old_meta is not None:  # a damaged cache is replaced, not merged
        old = pd.read_csv(csv_path, index_col=0, parse_dates=True)
        fresh = pd.concat([old, fresh])
        fresh = fresh[~fresh.index.duplicated(keep="last")].sort_index()
        starts = [old_meta.get("start"), meta["start"]]
        meta["start"] = None if None in starts else min(starts)
        if end_ts is not None and old_meta.get("end") is None:
            meta["end"] = None  # an earlier open-ended fetch already reaches further
    meta["fetched_at"] = datetime.now().isoformat(timespec="seconds")
    fresh.index.name = "Date"
    _write_atomically(csv_path, fresh.to_csv)
    _write_atomically(meta_path, lambda p: p.write_text(json.dumps(meta, indent=1)))
    return fresh, csv_path


def load(
    ticker: str,
    start=None,
    end=None,
    *,
    interval: str = "1d",
    adjusted: bool = True,
    cache: str | os.PathLike | None = None,
    max_age: timedelta = MAX_AGE,
) -> pd.DataFrame:
    """Prices for ``ticker`` from the cache when it covers the request, else from Yahoo.

    The cache covers a request when its fetched span starts at or before ``start`` and either
    reaches ``end`` or, for an open-ended request, was fetched less than ``max_age`` ago. When a
    refresh fails, a cached copy is used with a warning; with nothing cached, :class:`DataError`.
    """
    if not ticker:
        raise DataError("yf: a ticker is required, e.g. yf:SPY")
    start_ts, end_ts = _timestamp(start, "start"), _timestamp(end, "end")
    csv_path, meta_path = _paths(ticker, interval, adjusted, cache_dir(cache))
    cached = None
    if csv_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            cached = pd.read_csv(csv_path, index_col=0, parse_dates=True)
            validate(cached, str(csv_path))
            fetched_at = pd.Timestamp(meta["fetched_at"])
            span_start = None if meta.get("start") is None else pd.Timestamp(meta["start"])
            span_end = pd.Timestamp(meta["end"]) if meta.get("end") else fetched_at
            if any(t is not None and pd.isna(t) for t in (fetched_at, span_start, span_end)):
                raise ValueError("a date in the cache's metadata is missing")
        except (ValueError, TypeError, KeyError, AttributeError, OSError, DataError):
            cached = None  # a damaged cache (data or metadata) is refetched, never trusted
        if cached is not None:
            covers_start = span_start is None or (start_ts is not None and start_ts >= span_start)
            if end_ts is not None:
                covers_end = span_end >= end_ts
            else:
                covers_end = meta.get("end") is None and datetime.now() - fetched_at < max_age
            if covers_start and covers_end:
                return cached
    try:
        frame, _ = download(ticker, None, None, interval=interval, adjusted=adjusted, cache=cache)
    except DataError as error:
        if cached is None:
            raise DataError(f"{error}; nothing cached in {csv_path.parent}") from None
        warnings.warn(f"{error}; using the cached copy from {csv_path}", stacklevel=2)
        return cached
    return frame
