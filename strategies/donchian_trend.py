"""Turtle-style channel breakout: trade new highs and lows, exit on a shorter channel."""

import numpy as np

from tradenn.backtest import Strategy
from tradenn.features import atr, donchian


def _previous(values: np.ndarray) -> np.ndarray:
    """The channel of the bars before this one: a breakout must beat it, not include itself."""
    return np.concatenate(([np.nan], values[:-1]))


def prior_channel(high, low, n):
    upper, lower = donchian(high, low, n)
    return _previous(upper), _previous(lower)


class DonchianTrend(Strategy):
    """Long when the close exceeds the highest high of the previous ``entry`` bars, short when it
    falls below the lowest low; exit a long below the ``exit``-bar low (a short above the
    ``exit``-bar high). Each entry has a stop ``atr_stop`` ATRs away."""

    entry = 20
    exit = 10
    atr_n = 20
    atr_stop = 2.0

    @classmethod
    def check_parameters(cls, params):
        super().check_parameters(params)
        entry, exit_ = params["entry"], params["exit"]
        if not 0 < exit_ <= entry:
            raise ValueError(f"need 0 < exit <= entry, got exit={exit_}, entry={entry}")
        if not params["atr_n"] >= 1 or not params["atr_stop"] > 0:
            raise ValueError("need atr_n >= 1 and atr_stop > 0")

    def init(self):
        d = self.data
        self.entry_high, self.entry_low = self.I(prior_channel, d.High, d.Low, self.entry)
        self.exit_high, self.exit_low = self.I(prior_channel, d.High, d.Low, self.exit)
        self.atr = self.I(atr, d.High, d.Low, d.Close, self.atr_n)

    def next(self):
        close, stop = self.data.Close[-1], self.atr_stop * self.atr[-1]
        if self.position.is_long and close < self.exit_low[-1]:
            self.position.close()
        elif self.position.is_short and close > self.exit_high[-1]:
            self.position.close()
        elif not self.position:
            if close > self.entry_high[-1]:
                self.buy(sl=close - stop)
            elif close < self.entry_low[-1]:
                self.sell(sl=close + stop)
