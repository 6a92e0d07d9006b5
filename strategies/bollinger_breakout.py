"""Volatility breakout: go long when the close breaks above the upper Bollinger band."""

from tradenn.backtest import Strategy, crossover
from tradenn.features import bollinger


class BollingerBreakout(Strategy):
    """Long when the close crosses above the upper band (SMA(n) + k std); exit when it crosses
    back below the middle band. Long only."""

    n = 20
    k = 2.0

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        if not params["n"] >= 2:
            raise ValueError(f"n must be at least 2, got {params['n']}")
        if not params["k"] > 0:
            raise ValueError(f"k must be > 0, got {params['k']}")

    def init(self):
        self.middle, self.upper, self.lower = self.I(bollinger, self.data.Close, self.n, self.k)

    def next(self):
        close = self.data.Close
        if not self.position and crossover(close, self.upper):
            self.buy()
        elif self.position and crossover(self.middle, close):
            self.position.close()
