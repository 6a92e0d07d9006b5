"""Inverse volatility: weights proportional to 1 / trailing volatility (a naive risk parity)."""

import numpy as np
import pandas as pd

from tradenn.backtest.portfolio import PortfolioStrategy, active


class InverseVolatility(PortfolioStrategy):
    """Hold every trading asset with weight proportional to ``1 / sigma``, ``sigma`` the standard
    deviation of its last ``lookback`` daily log returns (on its own bars), the weights summing to
    1. Calm assets get more capital, so each contributes roughly the same risk when correlations
    are alike. Rebalanced monthly; an asset needs ``lookback`` returns to be held."""

    lookback = 63
    rebalance_every = "M"
    max_gap = 5

    def weights(self, data: pd.DataFrame) -> pd.DataFrame:
        if not (isinstance(self.lookback, int) and self.lookback >= 2):
            raise ValueError(f"lookback must be an integer >= 2, got {self.lookback!r}")
        columns = {}
        for asset in data["Close"].columns:  # each asset on its own bars: gaps are not returns
            close = data["Close"][asset].dropna()
            returns = np.log(close).diff()
            columns[asset] = returns.rolling(self.lookback).std()
        sigma = pd.DataFrame(columns).reindex(data.index).ffill()
        inverse = (1.0 / sigma.where(sigma > 0)).where(active(data, self.max_gap))
        return inverse.div(inverse.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
