"""Market data: bundled datasets, CSV files and Yahoo Finance, all as validated price frames.

>>> from tradenn import data
>>> spx = data.load("SPX", start="2010-01-01")       # bundled S&P 500, daily
>>> weekly = data.resample(spx, "W")
>>> ou = data.ornstein_uhlenbeck(5000, half_life=10, seed=0)   # synthetic, mean-reverting

Synthetic generators (:func:`gbm`, :func:`ornstein_uhlenbeck`, :func:`regime_switching`,
:func:`garch`) give frames with known statistics, reproducible from ``seed``.

A price frame has a strictly increasing DatetimeIndex named ``Date`` and float columns ``Open,
High, Low, Close, Volume`` (more allowed); :func:`validate` enforces it. The index may be naive or
tz-aware; :mod:`tradenn.data.timezones` states the time-zone rule (a frame keeps its zone).
"""

from tradenn.data.panel import align
from tradenn.data.resample import resample
from tradenn.data.sources import BUNDLED, BundledDataset, load
from tradenn.data.synthetic import garch, gbm, ornstein_uhlenbeck, regime_switching
from tradenn.data.validation import OHLCV, price_frame, validate
from tradenn.data.yahoo import download
from tradenn.errors import DataError

__all__ = [
    "BUNDLED",
    "OHLCV",
    "BundledDataset",
    "DataError",
    "align",
    "download",
    "garch",
    "gbm",
    "load",
    "ornstein_uhlenbeck",
    "price_frame",
    "regime_switching",
    "resample",
    "validate",
]
