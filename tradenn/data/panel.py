"""Several price frames on one calendar: the panel a multi-asset backtest runs over.

A **panel** is a DataFrame indexed by the calendar (a DatetimeIndex named ``Date``) whose columns
are a two-level :class:`~pandas.MultiIndex` ``(field, asset)``: ``panel["Close"]`` is a frame of
closes with one column per asset, ``panel["Close", "SPX"]`` one series.

Missing dates
-------------
Assets rarely share a calendar (listings, delistings, holidays of different exchanges).
:func:`align` either keeps every date any asset has (``how="outer"``, the default) or only the
dates every asset has (``how="inner"``). On the outer calendar an asset with no bar on a date has
NaN in all its fields there: nothing is invented. The portfolio engine
(:mod:`tradenn.backtest.portfolio`) reads those NaNs as follows:

* an asset is **tradable** on a date only if it has a bar that date; orders for it wait for its
  next bar;
* for valuation its last close carries forward over the gap (and after its last bar);
* before its first bar it cannot be held: its target weight is forced to 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from tradenn.data.timezones import same_zone
from tradenn.data.validation import OHLCV, price_frame
from tradenn.errors import DataError

__all__ = ["align", "is_panel", "panel_assets", "panel_frame"]


def align(frames: Mapping[str, pd.DataFrame], how: str = "outer") -> pd.DataFrame:
    """Put price frames on one calendar as a panel with ``(field, asset)`` columns.

    Parameters
    ----------
    frames : mapping of str to DataFrame
        Asset name -> validated price frame (see :func:`tradenn.data.validate`). Only the columns
        Open, High, Low, Close, Volume are kept.
    how : {"outer", "inner"}
        ``"outer"``: the union of all dates, NaN where an asset has no bar (see the module
        docstring for what that means in a backtest). ``"inner"``: only the dates every asset has.

    Returns
    -------
    DataFrame
        The panel: DatetimeIndex named ``Date``, columns ``(field, asset)`` with fields in
        ``OHLCV`` order and assets in the order given. Tz-aware frames are all in the zone of
        the first asset (others are converted: the same instants); see
        :mod:`tradenn.data.timezones`.

    Raises
    ------
    DataError
        No frames, a non-string or duplicate name, an invalid frame, naive frames mixed with
        tz-aware ones, or an inner join with no common date.
    """
    if how not in ("outer", "inner"):
        raise DataError(f"align: how must be 'outer' or 'inner', got {how!r}")
    if not isinstance(frames, Mapping) or len(frames) == 0:
        raise DataError("align: frames must be a non-empty mapping of asset name -> price frame")
    names = list(frames)
    for name in names:
        if not isinstance(name, str) or not name:
            raise DataError(f"align: asset names must be non-empty strings, got {name!r}")
    frames = {name: price_frame(frames[name], name) for name in names}
    try:
        frames = same_zone(frames)
    except DataError as error:
        raise DataError(f"align: {error}") from None
    parts = {name: frames[name][list(OHLCV)].astype("float64") for name in names}
    panel = pd.concat(parts, axis=1, join=how, names=["asset", "field"], sort=True)
    if len(panel) == 0:
        raise DataError(f"align: the frames {', '.join(names)} have no date in common")
    panel = panel.swaplevel(axis=1)
    columns = pd.MultiIndex.from_product([list(OHLCV), names], names=["field", "asset"])
    panel = panel.reindex(columns=columns).sort_index()
    panel.index.name = "Date"
    return panel


def is_panel(data: object) -> bool:
    """True when ``data`` is a panel (a DataFrame with two-level ``(field, asset)`` columns)."""
    return (
        isinstance(data, pd.DataFrame)
        and isinstance(data.columns, pd.MultiIndex)
        and data.columns.nlevels == 2
    )


def panel_assets(panel: pd.DataFrame) -> list[str]:
    """The asset names of a panel, in column order."""
    if not is_panel(panel):
        raise DataError("panel_assets: expected a panel with (field, asset) columns")
    return list(dict.fromkeys(panel.columns.get_level_values(1)))


def panel_frame(panel: pd.DataFrame, asset: str) -> pd.DataFrame:
    """One asset's own price frame out of a panel: its fields, only the dates it has a bar."""
    assets = panel_assets(panel)
    if asset not in assets:
        raise DataError(f"panel_frame: no asset {asset!r}; assets: {', '.join(assets)}")
    frame = panel.xs(asset, axis=1, level=1)
    frame = frame[list(OHLCV)].dropna(subset=["Open", "High", "Low", "Close"], how="all")
    frame.columns.name = None
    frame.attrs["source"] = asset
    return frame
