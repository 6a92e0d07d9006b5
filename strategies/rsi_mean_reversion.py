"""Mean reversion on RSI: buy oversold, sell when the bounce is done, with a stop-loss."""

from tradenn.backtest import Strategy
from tradenn.features import rsi


class RsiMeanReversion(Strategy):
    """Buy when RSI(n) falls below ``oversold``; exit when it rises above ``exit_level``.

    Every entry carries a stop-loss ``stop_pct`` below the close it was decided on. Long only."""

    n = 14
    oversold = 30.0
    exit_level = 55.0
    stop_pct = 0.08

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        if not params["n"] >= 2:
            raise ValueError(f"n must be at least 2, got {params['n']}")
        if not 0 < params["oversold"] < params["exit_level"] < 100:
            raise ValueError("need 0 < oversold < exit_level < 100")
        if not 0 < params["stop_pct"] < 1:
            raise ValueError(f"stop_pct must be in (0, 1), got {params['stop_pct']}")

    def init(self):
        self.rsi = self.I(rsi, self.data.Close, self.n)

    def next(self):
        value = self.rsi[-1]
        if not self.position and value < self.oversold:
            self.buy(sl=self.data.Close[-1] * (1 - self.stop_pct))
        elif self.position and value > self.exit_level:
            self.position.close()
