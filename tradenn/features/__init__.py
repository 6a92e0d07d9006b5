"""Causal features and indicators.

Every indicator uses bars up to ``t`` only for its value at ``t``, takes a numpy array or pandas
Series and returns the same kind; see :mod:`tradenn.features.indicators` for the conventions.
"""

from tradenn.features.indicators import (
    atr,
    bollinger,
    donchian,
    ema,
    log_returns,
    macd,
    momentum,
    rolling_std,
    rolling_zscore,
    rsi,
    sma,
)

__all__ = [
    "atr",
    "bollinger",
    "donchian",
    "ema",
    "log_returns",
    "macd",
    "momentum",
    "rolling_std",
    "rolling_zscore",
    "rsi",
    "sma",
]
