"""Causal features, targets, windowing and scalers.

Every feature and indicator uses bars up to ``t`` only for its value at ``t`` and takes a numpy
array or pandas Series (indicators) or a price frame (the pipeline). Targets are indexed by the
bar at which they are realized; :func:`make_windows` pairs each decision bar with the target
``horizon`` bars later. Scalers are fit on training windows only. See
:mod:`tradenn.features.indicators`, :mod:`tradenn.features.pipeline`,
:mod:`tradenn.features.windows` and :mod:`tradenn.features.scaling`.
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
from tradenn.features.pipeline import build_features, minimal_features
from tradenn.features.scaling import RobustScaler, StandardScaler, scaler_from_config
from tradenn.features.windows import Windows, direction_target, make_windows, return_target

__all__ = [
    "RobustScaler",
    "StandardScaler",
    "Windows",
    "atr",
    "bollinger",
    "build_features",
    "direction_target",
    "donchian",
    "ema",
    "log_returns",
    "macd",
    "make_windows",
    "minimal_features",
    "momentum",
    "return_target",
    "rolling_std",
    "rolling_zscore",
    "rsi",
    "scaler_from_config",
    "sma",
]
