"""The time-zone rule for price frames, in one place.

tradenn never guesses a time zone and never silently moves a bar in time:

1. **A frame keeps its zone.** A naive ``DatetimeIndex`` (wall-clock times, zone unknown) and a
   tz-aware one (what yfinance and broker APIs return) are both valid price frames. A backtest
   runs on the index as given, and every time in its result (``equity.index``,
   ``position.index``, ``trades["EntryTime"]``/``["ExitTime"]``, ``orders["PlacedTime"]``/
   ``["FillTime"]``, ``stats["Start"]``/``["End"]``) carries the same zone.
2. **Durations and pictures use wall-clock time.** Trade, drawdown and backtest durations are
   measured between the bars' wall-clock times in their zone (:func:`wall_clock`), and plots show
   that wall-clock time; so a tz-aware frame gives exactly the statistics of the same frame
   without its zone (a daily bar held over a daylight-saving change lasts ``1 days``, not
   ``0 days 23:00:00``).
3. **Several assets share the first asset's zone.** :func:`same_zone` (used by
   :func:`tradenn.data.align` and so by every portfolio backtest) converts tz-aware frames in
   other zones to the zone of the first asset: the same instants, so bars line up by when they
   happened. A naive frame mixed with tz-aware ones is an error: the instant of a naive time is
   unknown.
4. **Text keeps the zone where tradenn writes it.** :func:`timestamp_text` writes an ISO 8601
   time with its UTC offset and, for a named zone, the zone in brackets (RFC 9557:
   ``2017-03-13T00:00:00-04:00[America/New_York]``); :func:`parse_timestamp_texts` reads it back
   to the same timestamps in the same zone (the paper-trading ledger stores bar times so).
5. **Files carry UTC offsets, not zones.** CSV dates with offsets (``2020-03-06 09:30-05:00``)
   are read as wall-clock time with the offset dropped (:func:`split_utc_offsets`), whether the
   offset is constant or changes with daylight saving. When dropping changing offsets makes a
   wall-clock time repeat (the fall-back hour of intraday data), reading fails with a
   :class:`~tradenn.errors.DataError` naming the file and line; write such files in UTC or one
   fixed offset, or load them with pandas and pass the tz-aware frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from tradenn.errors import DataError

__all__ = [
    "bar_times",
    "parse_timestamp_texts",
    "same_zone",
    "split_utc_offsets",
    "timestamp_text",
    "wall_clock",
]

Times = TypeVar("Times", pd.DatetimeIndex, pd.Series)

# A UTC offset at the end of a date-time: "Z", "+05:30", "-0500" or "-05", after a time of day
# (so the "-19" of a date "2004-08-19" is never taken for an offset).
_WALL_AND_OFFSET = (
    r"^(?P<wall>.*\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(?P<offset>Z|[+-]\d\d(?::?\d\d)?)$"
)


def wall_clock(times: Times) -> Times:
    """The wall-clock times of ``times`` in their own zone, as naive times (naive input as is).

    Used wherever elapsed time is measured or time is drawn: wall-clock time does not jump at a
    daylight-saving change, so a tz-aware frame gives the same durations as the frame without
    its zone.

    Parameters
    ----------
    times : DatetimeIndex or Series of datetimes

    Returns
    -------
    DatetimeIndex or Series
        The same type, naive.
    """
    if isinstance(times, pd.Series):
        return times.dt.tz_localize(None) if times.dt.tz is not None else times
    return times.tz_localize(None) if times.tz is not None else times


def bar_times(index: pd.DatetimeIndex, bars: Sequence[int | None] | np.ndarray) -> pd.DatetimeIndex:
    """The timestamps of bar positions, in the index's zone; NaT where there is no bar.

    Parameters
    ----------
    index : DatetimeIndex
        The bars' timestamps (naive or tz-aware).
    bars : sequence of int or None
        Bar positions; None, a negative or an out-of-range position gives NaT (e.g. an order that
        never filled).

    Returns
    -------
    DatetimeIndex
        One timestamp per position, with the dtype (unit and zone) of ``index``, unnamed.
    """
    if isinstance(bars, np.ndarray) and bars.dtype.kind in "iu":
        positions = bars.astype(np.int64)  # a copy
    else:
        positions = np.array([-1 if b is None else b for b in bars], dtype=np.int64)
    positions[(positions < 0) | (positions >= len(index))] = -1
    # take() with allow_fill maps -1 to NaT and keeps the zone; numpy datetime64 arrays cannot
    # hold a zone (np.full(..., dtype=index.dtype) fails on tz-aware dtypes).
    return index.take(positions, allow_fill=True, fill_value=pd.NaT).rename(None)


def same_zone(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Put price frames in one time zone: that of the first tz-aware frame.

    Frames already in that zone (and all-naive inputs) are returned as they are; a frame in
    another zone is converted (``tz_convert``: the same instants, other wall-clock labels).

    Parameters
    ----------
    frames : mapping of str to DataFrame
        Asset name -> price frame, first asset first.

    Returns
    -------
    dict of str to DataFrame

    Raises
    ------
    DataError
        When naive and tz-aware frames are mixed.
    """
    zones = {name: frame.index.tz for name, frame in frames.items()}
    naive = [name for name, tz in zones.items() if tz is None]
    aware = [name for name, tz in zones.items() if tz is not None]
    if not aware:
        return dict(frames)
    if naive:
        raise DataError(
            f"assets mix naive and tz-aware times: {naive[0]} has no time zone but {aware[0]} "
            f"is in {zones[aware[0]]}; "
            f"localize {naive[0]} (frame.tz_localize(zone)) or drop the zones "
            "(frame.tz_localize(None)) so all assets are alike"
        )
    target = zones[aware[0]]
    out = {}
    for name, frame in frames.items():
        if str(zones[name]) != str(target):
            frame = frame.copy()
            frame.index = frame.index.tz_convert(target)
        out[name] = frame
    return out


def split_utc_offsets(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split date-time strings into wall-clock time and UTC offset.

    ``"2020-11-01 01:30:00-04:00"`` -> ``("2020-11-01 01:30:00", "-04:00")``; a value without an
    offset (or without a time of day) is kept whole, with a missing offset.

    Parameters
    ----------
    text : Series of str

    Returns
    -------
    wall : Series of str
        The values without their offsets.
    offsets : Series of str
        The offsets (``"Z"``, ``"-04:00"``, ...), ``<NA>`` where there is none.
    """
    parts = text.str.extract(_WALL_AND_OFFSET)
    has_offset = parts["offset"].notna()
    wall = text.where(~has_offset, parts["wall"])
    return wall, parts["offset"]


def timestamp_text(time: pd.Timestamp) -> str:
    """ISO 8601 text of ``time`` that :func:`parse_timestamp_texts` reads back exactly.

    Naive and fixed-offset times are plain ISO 8601 (``2017-03-10T00:00:00-05:00``); a time in a
    named zone adds the zone in brackets (RFC 9557), since its offset alone cannot say where the
    next daylight-saving change falls: ``2017-03-13T00:00:00-04:00[America/New_York]``.
    """
    time = pd.Timestamp(time)
    text = time.isoformat()
    key = getattr(time.tzinfo, "key", None) or getattr(time.tzinfo, "zone", None)  # zoneinfo, pytz
    return f"{text}[{key}]" if isinstance(key, str) else text


def parse_timestamp_texts(values: pd.Series | Sequence[str]) -> pd.DatetimeIndex:
    """Read times written by :func:`timestamp_text` (or plain ISO 8601) as a DatetimeIndex.

    Times with a ``[zone]`` suffix come back in that zone (the last one named, if several);
    plain times with one UTC offset keep it; plain times whose offsets differ (written without
    their zone) come back in UTC, the same instants.
    """
    text = pd.Series(values, dtype="string")
    zone = None
    if text.str.contains("[", regex=False).any():
        parts = text.str.extract(r"^(?P<time>[^\[]*)(?:\[(?P<zone>[^\]]+)\])?$")
        text, zones = parts["time"], parts["zone"].dropna()
        zone = zones.iloc[-1] if len(zones) else None
    if zone is not None:
        return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True)).tz_convert(zone)
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601"))
    except ValueError:  # "Mixed timezones detected": offsets differ and no zone is named
        return pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True))
