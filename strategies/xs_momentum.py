"""Cross-sectional momentum: long the assets that rose most over the lookback, optionally short
the ones that rose least."""

import numpy as np
import pandas as pd

from tradenn.backtest.portfolio import PortfolioStrategy, active


class XsMomentum(PortfolioStrategy):
    """Rank the trading assets by their return over the last ``lookback`` bars; hold the
    ``top_k`` best in equal weights (together 1 of equity, or 0.5 with ``short``), and with
    ``short=True`` short the ``top_k`` worst (together -0.5). Rebalanced monthly. An asset needs
    ``lookback`` bars of history to be ranked; with fewer than ``2 top_k`` ranked assets and
    ``short``, or fewer than ``top_k`` without, the portfolio holds only what it can rank."""

    lookback = 126
    top_k = 2
    short = False
    rebalance_every = "M"
    max_gap = 5

    def weights(self, data: pd.DataFrame) -> pd.DataFrame:
        if not (isinstance(self.lookback, int) and self.lookback >= 1):
            raise ValueError(f"lookback must be a positive integer, got {self.lookback!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        close = data["Close"].ffill()
        momentum = close / close.shift(self.lookback) - 1.0
        momentum = momentum.where(active(data, self.max_gap))
        best = momentum.rank(axis=1, ascending=False, method="first")
        worst = momentum.rank(axis=1, ascending=True, method="first")
        ranked = momentum.notna().sum(axis=1).to_numpy()[:, None]
        long_side = 0.5 if self.short else 1.0
        k = np.minimum(self.top_k, ranked)
        longs = (best <= self.top_k).to_numpy() & (best.notna().to_numpy())
        weights = np.where(longs, long_side / np.maximum(k, 1), 0.0)
        if self.short:
            # the bottom top_k, never an asset already held long (few ranked assets)
            shorts = (worst <= self.top_k).to_numpy() & ~longs & worst.notna().to_numpy()
            n_short = np.maximum(shorts.sum(axis=1, keepdims=True), 1)
            weights = weights - np.where(shorts, 0.5 / n_short, 0.0)
        return pd.DataFrame(weights, index=data.index, columns=close.columns)
