"""Long-only momentum: hold while the fast EMA is above the slow EMA, flat otherwise."""

import numpy as np
import pandas as pd

from tradenn.backtest import Strategy, increasing
from tradenn.features import ema


class EmaMomentum(Strategy):
    """Long (target exposure 1) while ``EMA(fast) > EMA(slow)`` at the close, flat otherwise.

    Written as a vectorized ``positions()``: the whole rule is a function of prices, so it runs
    at array speed with the same fills and costs as an event-driven strategy."""

    fast = 12
    slow = 48

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        increasing(params, "fast", "slow")

    def positions(self, data: pd.DataFrame) -> pd.Series:
        fast, slow = ema(data["Close"], self.fast), ema(data["Close"], self.slow)
        return pd.Series(np.where(fast > slow, 1.0, 0.0), index=data.index)
