"""The vectorized path (positions) and the event path (next) share one fill and cost model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest, BacktestError, Strategy
from tradenn.data import load, ornstein_uhlenbeck
from tradenn.features import sma


class CrossEvents(SmaCross):
    """Reverse on SMA crossovers, event by event (the bundled strategy, slower SMA)."""

    slow = 30


class CrossTargets(CrossEvents):
    """The same rule as target exposures: +1 after an up-cross, -1 after a down-cross."""

    def positions(self, data):
        f = sma(data.Close.to_numpy(), self.fast)
        s = sma(data.Close.to_numpy(), self.slow)
        above = np.where(np.isnan(f) | np.isnan(s), np.nan, np.sign(f - s))
        before = np.concatenate(([np.nan], above[:-1]))
        crossed = (above != before) & ~np.isnan(before) & (above != 0) & (before != 0)
        return pd.Series(np.where(crossed, above, np.nan)).ffill().fillna(0.0)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"commission": 0.002},
        {"commission": 0.001, "spread": 0.0005, "slippage_bps": 2},
        {"commission": 0.001, "trade_on_close": True},
        {"commission": 0.001, "fractional": True},
        {"commission": 0.001, "margin": 0.5},
    ],
)
def test_event_and_vectorized_paths_give_the_same_equity(settings):
    data = load("SPX", end="2008-12-31")
    events = Backtest(data, CrossEvents, **settings).run()
    targets = Backtest(data, CrossTargets, **settings).run()
    assert len(events.trades) > 50
    relative = np.abs(events.equity - targets.equity) / events.equity.abs()
    assert relative.max() < 1e-9
    pd.testing.assert_frame_equal(events.trades, targets.trades)


def test_positions_scale_exposure_and_go_flat():
    data = ornstein_uhlenbeck(300, half_life=10, seed=2)

    class Half(Strategy):
        def positions(self, data):
            w = np.zeros(len(data))
            w[10:100] = 0.5
            w[100:200] = -0.25
            return w

    result = Backtest(data, Half, fractional=True).run()
    expected_units = 0.5 * 10_000 / data.Open.iloc[11]  # decided at bar 10's close, bar 11 open
    assert result.position.iloc[11] == pytest.approx(expected_units)
    assert result.position.iloc[150] < 0 and result.position.iloc[-1] == 0


def test_positions_out_of_range_are_an_error():
    class TooBig(Strategy):
        def positions(self, data):
            return np.full(len(data), 1.5)

    with pytest.raises(BacktestError, match=r"must lie in \[-1, 1\]; got 1.5 at bar 0"):
        Backtest(load("SPX", end="1999-03-31"), TooBig).run()


def test_both_paths_liquidate_a_wiped_out_short_at_the_same_bar(bars):
    frame = bars.copy()
    frame.loc[frame.index[3], ["High", "Close"]] = [230.0, 230.0]

    class ShortEvents(Strategy):
        def next(self):
            if len(self.data) == 1:
                self.sell()

    class ShortTargets(Strategy):
        def positions(self, data):
            return np.r_[-1.0, np.full(len(data) - 1, -1.0)]

    events, targets = Backtest(frame, ShortEvents).run(), Backtest(frame, ShortTargets).run()
    assert events.equity.iloc[3] <= 0 and events.position.iloc[3] == 0
    pd.testing.assert_series_equal(events.equity, targets.equity)


def test_a_rebalance_smaller_than_one_unit_is_units_not_a_fraction():
    """Regression: the vectorized path's orders of < 1 unit were read as fractions of equity."""
    spx = load("SPX", "2010-01-01", "2010-03-31")

    class Steps(Strategy):
        def positions(self, data):
            w = np.where(np.arange(len(data)) < 20, 0.5, 0.55)
            w[:5] = 0.0
            return pd.Series(w, index=data.index)

    result = Backtest(spx, Steps, fractional=True, trade_on_close=True).run()
    units = result.position.to_numpy()
    close = spx.Close.to_numpy()
    before, after = units[19], units[20]
    # the second change adds 5% of equity: well under one unit of a 1,100-point index
    assert 0 < after - before < 1
    assert after * close[20] == pytest.approx(0.55 * result.equity.iloc[20], rel=1e-9)


def test_positions_may_change_the_frame_it_is_given_without_touching_the_data():
    data = load("SPX").iloc[:300]
    before = data.copy()

    class Vandal(Strategy):
        def positions(self, frame):
            frame["Close"] *= 2.0
            frame.iloc[0, 0] = -1.0
            frame["Extra"] = 1.0
            return np.ones(len(frame))

    bt = Backtest(data, Vandal)
    bt.run()
    pd.testing.assert_frame_equal(bt.data, before)
    pd.testing.assert_frame_equal(data, before)
