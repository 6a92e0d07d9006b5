"""No look-ahead: a decision at bar t can use data up to bar t only, and the engine enforces it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest, LookAheadError, Strategy
from tradenn.data import load
from tradenn.errors import StrategyFailure
from tradenn.features import sma


def test_next_sees_only_bars_up_to_now(bars):
    seen = []

    class Spy(Strategy):
        def next(self):
            now = len(self.data) - 1
            seen.append((now, self.data.Close[-1], len(self.data.Close.values)))
            with pytest.raises(LookAheadError, match="is in the future"):
                self.data.Close[now + 1]

    Backtest(bars, Spy).run()
    assert seen == [(i, bars.Close.iloc[i], i + 1) for i in range(len(bars))]


def test_init_cannot_read_prices_directly(bars):
    class Peek(Strategy):
        def init(self):
            self.last = self.data.Close[-1]

    # named with the strategy and its line (issue 19); the cause is the series' IndexError
    with pytest.raises(StrategyFailure, match=r"Peek\.init .* only 0 bars so far") as peek:
        Backtest(bars, Peek).run()
    assert isinstance(peek.value.__cause__, IndexError)


def test_an_indicator_that_uses_future_bars_is_rejected():
    class Centered(Strategy):
        def init(self):
            self.I(lambda c: pd.Series(c).rolling(5, center=True).mean(), self.data.Close)

    with pytest.raises(LookAheadError, match="uses future data"):
        Backtest(load("SPX", end="2001-12-31"), Centered).run()


def test_positions_that_use_the_next_bar_are_rejected():
    class Peeking(Strategy):
        def positions(self, data):
            return np.sign(data.Close.shift(-1) - data.Close).fillna(0.0)

    with pytest.raises(LookAheadError, match="uses future data"):
        Backtest(load("SPX", end="2001-12-31"), Peeking).run()


def test_changing_the_future_does_not_change_the_past():
    data = load("SPX", end="2004-12-31")
    cut = 600
    shocked = data.copy()
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 1.5, size=len(data) - cut)[:, None]
    shocked.iloc[cut:, :4] = data.iloc[cut:, :4].to_numpy() * scale
    shocked["High"] = shocked[["Open", "High", "Low", "Close"]].max(axis=1)
    shocked["Low"] = shocked[["Open", "High", "Low", "Close"]].min(axis=1)
    a = Backtest(data, SmaCross, commission=0.001).run()
    b = Backtest(shocked, SmaCross, commission=0.001).run()
    # Equity through bar cut-1 and every trade decided before it are identical.
    pd.testing.assert_series_equal(a.equity.iloc[:cut], b.equity.iloc[:cut])
    done_a = a.trades[a.trades.ExitBar < cut].reset_index(drop=True)
    done_b = b.trades[b.trades.ExitBar < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(done_a, done_b)
    assert len(done_a) > 10 and not a.equity.equals(b.equity)


def test_next_starts_once_every_indicator_has_a_value():
    first = []

    class Warm(Strategy):
        def init(self):
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self):
            first.append(len(self.data) - 1)

    Backtest(load("SPX", end="1999-06-30"), Warm).run()
    assert first[0] == 29


def test_on_long_data_positions_is_proved_causal_on_prefixes_of_its_first_20000_bars():
    from tradenn.data import gbm

    frame = gbm(50_000, sigma=0.2, bars_per_year=252 * 390, freq="min", seed=3)
    seen = []

    class Recorded(Strategy):
        def positions(self, data):
            seen.append(len(data))
            return (data["Close"] > data["Close"].rolling(50).mean()).astype(float)

    class Peeking(Strategy):
        def positions(self, data):
            return (data["Close"] > data["Close"].mean()).astype(float)  # the whole sample's mean

    Backtest(frame, Recorded).run()
    assert seen == [50_000, 6_666, 13_333]  # a third and two thirds of 20,000, not of 50,000
    with pytest.raises(LookAheadError, match=r"Peeking\.positions uses future data"):
        Backtest(frame, Peeking).run()
