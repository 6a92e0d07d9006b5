"""Moving-average crossover: long when the fast SMA crosses above the slow one, short below."""

from tradenn.backtest import Strategy, crossover, increasing
from tradenn.features import sma


class SmaCross(Strategy):
    """Always in the market: reverse to long when the fast SMA crosses above the slow SMA, to
    short when it crosses below. The textbook trend-following baseline."""

    fast = 10
    slow = 20

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        increasing(params, "fast", "slow")

    def init(self):
        self.fast_sma = self.I(sma, self.data.Close, self.fast)
        self.slow_sma = self.I(sma, self.data.Close, self.slow)

    def next(self):
        if crossover(self.fast_sma, self.slow_sma):
            self.position.close()
            self.buy()
        elif crossover(self.slow_sma, self.fast_sma):
            self.position.close()
            self.sell()
