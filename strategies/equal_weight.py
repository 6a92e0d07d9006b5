"""Equal weight: the same fraction of equity in every asset that trades, rebalanced monthly."""

import pandas as pd

from tradenn.backtest.portfolio import PortfolioStrategy, active


class EqualWeight(PortfolioStrategy):
    """Hold ``1 / N`` of equity in each of the ``N`` assets trading at the time (an asset joins
    at its first bar and leaves ``max_gap`` bars after its last), rebalanced on the first bar of
    every month. The diversified benchmark every allocation rule has to beat."""

    rebalance_every = "M"
    max_gap = 5

    def weights(self, data: pd.DataFrame) -> pd.DataFrame:
        trading = active(data, self.max_gap).astype(float)
        return trading.div(trading.sum(axis=1).where(lambda n: n > 0), axis=0).fillna(0.0)
