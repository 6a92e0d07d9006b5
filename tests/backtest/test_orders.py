"""Order management: canceling orders, moving a trade's stop-loss and take-profit, trailing
stops, and bracket legs that are marketable the moment their entry fills.

The six-bar frame of ``conftest.py`` (O, H, L, C): 0 (100, 101, 99, 100), 1 (102, 104, 101,
103), 2 (103, 106, 102, 105), 3 (104, 105, 98, 99), 4 (99, 100, 95, 96), 5 (97, 99, 96, 98).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn.backtest import Backtest, Strategy, Trail
from tradenn.errors import StrategyFailure

from .conftest import scripted


def run(bars, actions, **kwargs):
    return Backtest(bars, scripted(actions), **kwargs).run()


# ------------------------------------------------------------------------------ cancel


def test_a_canceled_order_never_fills_and_is_recorded_as_canceled(bars):
    kept = {}

    def place(s):
        kept["order"] = s.buy(size=1, limit=98.5)  # bar 3's low 98 would fill it

    result = run(bars, {0: place, 1: lambda s: kept["order"].cancel()})
    assert result.trades.empty and result.position.iloc[-1] == 0
    assert result.orders.Status.tolist() == ["canceled"]
    kept["order"].cancel()  # canceling twice changes nothing
    assert kept["order"].status == "canceled"


def test_canceling_a_filled_order_leaves_it_filled(bars):
    kept = {}
    actions = {0: lambda s: kept.update(order=s.buy(size=1)), 2: lambda s: kept["order"].cancel()}
    result = run(bars, actions)
    assert result.orders.Status.tolist() == ["filled"] and result.position.iloc[-1] == 1


def test_canceling_a_bracket_leg_removes_it_from_its_trade(bars):
    seen = {}

    def cancel_stop(s):
        s.trades[0].sl_order.cancel()
        seen["sl"], seen["tp"] = s.trades[0].sl, s.trades[0].tp

    result = run(bars, {0: lambda s: s.buy(size=1, sl=100.5, tp=200.0), 1: cancel_stop})
    assert seen == {"sl": None, "tp": 200.0}
    assert result.trades.empty and result.position.iloc[-1] == 1  # bar 3's low 98 closed nothing


# ------------------------------------------------------------------- sl / tp of a trade


def test_setting_a_trades_stop_loss_closes_it_when_reached(bars):
    def protect(s):
        s.trades[0].sl = 100.5  # bar 3's low 98 reaches it; it opens at 104, above

    result = run(bars, {0: lambda s: s.buy(size=1), 2: protect})
    trade = result.trades.iloc[0]
    assert trade.ExitBar == 3 and trade.ExitPrice == 100.5


def test_moving_and_removing_a_stop_loss(bars):
    def move(s):
        assert s.trades[0].sl == 95.0
        s.trades[0].sl = 100.5  # tighter: hit at bar 3

    result = run(bars, {0: lambda s: s.buy(size=1, sl=95.0), 1: move})
    assert result.trades.iloc[0].ExitPrice == 100.5
    assert len(result.orders) == 2  # the stop moved in place: no new order

    def remove(s):
        s.trades[0].sl = None

    result = run(bars, {0: lambda s: s.buy(size=1, sl=100.5), 1: remove})
    assert result.trades.empty and result.position.iloc[-1] == 1  # nothing closed it
    assert result.orders.Status.tolist() == ["filled", "canceled"]


def test_setting_a_take_profit_on_an_open_trade(bars):
    def target(s):
        s.trades[0].tp = 105.5

    result = run(bars, {0: lambda s: s.buy(size=1), 1: target})
    trade = result.trades.iloc[0]
    assert trade.ExitBar == 2 and trade.ExitPrice == 105.5


def test_a_pending_orders_brackets_can_be_changed_before_it_fills(bars):
    kept = {}

    def place(s):
        # a stop buy at 105.5 triggers in bar 2 (H 106); its stop-loss 105 would be hit in
        # the same bar (L 102)
        kept["order"] = s.buy(size=1, stop=105.5, sl=105.0)

    def edit(s):
        kept["order"].tp = 105.8
        kept["order"].sl = None

    unchanged = run(bars, {0: place})
    assert unchanged.trades.iloc[0].ExitPrice == 105.0
    trade = run(bars, {0: place, 1: edit}).trades.iloc[0]
    assert trade.EntryBar == 2 and trade.EntryPrice == 105.5
    assert trade.ExitBar == 2 and trade.ExitPrice == 105.8


@pytest.mark.parametrize(
    "bad,message",
    [(-3.0, "sl must be a positive price, got -3.0"), (float("nan"), "got nan"), ("x", "got 'x'")],
)
def test_a_bad_stop_loss_is_the_strategys_error_named_at_its_line(bars, bad, message):
    def protect(s):
        s.trades[0].sl = bad

    with pytest.raises(StrategyFailure, match=message):
        run(bars, {0: lambda s: s.buy(size=1), 2: protect})


def test_a_closed_trades_stop_cannot_be_set(bars):
    kept = {}

    def late(s):
        kept["trade"].sl = 90.0

    actions = {
        0: lambda s: s.buy(size=1),
        1: lambda s: (kept.update(trade=s.trades[0]), s.position.close()),
        3: late,
    }
    with pytest.raises(StrategyFailure, match="cannot set sl of a closed trade"):
        run(bars, actions)


# -------------------------------------------------------------------------- trailing


def test_a_trailing_stop_by_distance_follows_the_close_up_and_never_down(bars):
    stops = []

    class Trailing(Strategy):
        def next(self):
            if len(self.data) == 1:
                self.buy(size=1, trail=Trail(distance=2.0))
            elif self.trades:
                stops.append(self.trades[0].sl)

    result = Backtest(bars, Trailing).run()
    # entered at bar 1's open 102; from bar 1's close (103) the stop is 101, which next() sees
    # at bar 2; from bar 2's close (105) it is 103, and bar 3 (O 104, L 98) falls through it
    assert stops == [None, 101.0]
    trade = result.trades.iloc[0]
    assert trade.ExitBar == 3 and trade.ExitPrice == 103.0


def test_a_trailing_stop_by_percent_for_a_short(bars):
    class Short(Strategy):
        def next(self):
            if len(self.data) == 3:  # bar 2's close 105
                self.sell(size=1, trail=Trail(pct=0.03))

    result = Backtest(bars, Short).run()
    trade = result.trades.iloc[0]
    # short at bar 3's open 104; after bar 3 (C 99) the stop is 99 x 1.03 = 101.97, after
    # bar 4 (C 96) 98.88; bar 5 (H 99) reaches it
    assert trade.EntryPrice == 104 and trade.ExitBar == 5
    assert trade.ExitPrice == pytest.approx(96 * 1.03)


def _walk(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.008, n)))
    index = pd.bdate_range("2015-01-01", periods=n, name="Date")
    return pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": 1e6}, index=index
    )


def _atr(high, low, close, period: int) -> np.ndarray:
    """backtesting.py TrailingStrategy's ATR: the rolling mean of the true range."""
    high, low, close = (pd.Series(np.asarray(x, dtype=float)) for x in (high, low, close))
    before = close.shift(1)
    ranges = pd.concat([high - low, (high - before).abs(), (low - before).abs()], axis=1)
    return ranges.max(axis=1).rolling(period).mean().to_numpy()


class _Entries(Strategy):
    """Long every 40 bars while flat, short every 40 bars in between."""

    def enter(self, **kwargs):
        bar = len(self.data) - 1
        if not self.position and bar >= 20 and bar % 20 == 0:
            (self.buy if bar % 40 == 0 else self.sell)(size=1, **kwargs)


class ByHand(_Entries):
    """Sets each trade's stop every bar, as backtesting.py's TrailingStrategy does."""

    def init(self):
        data = self.data
        self.atr = self.I(_atr, data.High, data.Low, data.Close, 10, name="ATR")

    def next(self):
        self.enter()
        bar, close = len(self.data) - 1, self.data.Close[-1]
        for trade in self.trades:
            if trade.is_long:
                trade.sl = max(trade.sl or -np.inf, close - 2.5 * self.atr[-1])
            else:
                trade.sl = min(trade.sl or np.inf, close + 2.5 * self.atr[-1])
        assert bar >= 0


class ByTrail(_Entries):
    def next(self):
        self.enter(trail=Trail(atr=2.5, period=10))


def test_an_atr_trail_gives_the_trades_of_setting_the_stop_by_hand_each_bar():
    frame = _walk()
    by_hand = Backtest(frame, ByHand).run()
    by_trail = Backtest(frame, ByTrail).run()
    assert len(by_hand.trades) >= 8 and set(by_hand.trades.Size) == {1.0, -1.0}
    pd.testing.assert_frame_equal(by_trail.trades, by_hand.trades)
    pd.testing.assert_series_equal(by_trail.equity, by_hand.equity)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "exactly one of distance=, pct= or atr="),
        ({"distance": 1.0, "pct": 0.1}, "exactly one of"),
        ({"pct": 1.5}, "trail pct must be in (0, 1), got 1.5"),
        ({"distance": -1.0}, "trail distance must be a finite number > 0, got -1.0"),
        ({"atr": 2.0, "period": 0}, "trail period must be a positive integer, got 0"),
    ],
)
def test_bad_trailing_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Trail(**kwargs)


# ------------------------------------------------------- marketable brackets at the entry


def test_a_take_profit_already_passed_when_the_entry_fills_closes_the_trade_at_once(bars):
    # the buy fills at bar 1's open 102, above its take-profit 101.5: a sell limit at 101.5
    # is marketable there, so it fills at once, at 102 (not dropped, as it used to be)
    result = run(bars, {0: lambda s: s.buy(size=1, tp=101.5)}, commission=0.001)
    trade = result.trades.iloc[0]
    assert (trade.EntryBar, trade.ExitBar, trade.EntryPrice, trade.ExitPrice) == (1, 1, 102, 102)
    assert trade.PnL == pytest.approx(-2 * 0.102)
    assert result.orders.Status.tolist() == ["filled", "filled"]
    assert result.position.iloc[-1] == 0


def test_a_shorts_marketable_take_profit_and_stop_loss_fill_at_the_entry_price(bars):
    # short at bar 3's open 104; a buy limit at 104.5 and a buy stop at 103 are both
    # marketable there: the stop-loss goes first, at 104
    result = run(bars, {2: lambda s: s.sell(size=1, tp=104.5, sl=103.0)})
    trade = result.trades.iloc[0]
    assert (trade.EntryBar, trade.ExitBar, trade.ExitPrice) == (3, 3, 104)
    assert result.orders.Status.tolist() == ["filled", "filled", "canceled"]


def test_a_limit_entry_with_a_marketable_leg_closes_at_the_limit_price(bars):
    # a buy limit 101.5 fills in bar 1 (L 101) at 101.5; its stop-loss 102 is above that
    result = run(bars, {0: lambda s: s.buy(size=1, limit=101.5, sl=102.0)})
    trade = result.trades.iloc[0]
    assert trade.EntryPrice == 101.5 and trade.ExitPrice == 101.5 and trade.ExitBar == 1


# ------------------------------------------------------------------------ partial closes


def test_partial_closes_trade_whole_units_unless_fractional(bars):
    actions = {
        0: lambda s: s.buy(size=5),
        1: lambda s: s.trades[0].close(0.5),  # 2.5 -> 2 (rounded as backtesting.py does)
        2: lambda s: s.buy(size=10),
        3: lambda s: s.position.close(0.5),  # 13 held: 6.5 -> 6
    }
    whole = run(bars, actions)
    assert whole.trades.Size.tolist() == [2.0, 3.0, 3.0]  # FIFO: the 3 left, then 3 of the 10
    assert whole.position.tolist()[-1] == 7.0 and whole.position.iloc[2] == 3.0
    fractional = run(bars, actions, fractional=True)
    assert fractional.trades.Size.tolist() == [2.5, 2.5, 3.75]  # 12.5 held: 6.25 closed
    assert fractional.position.iloc[-1] == 6.25
    one = run(bars, {0: lambda s: s.buy(size=1), 1: lambda s: s.position.close(0.3)})
    assert one.trades.Size.tolist() == [1.0]  # at least one unit


def test_a_filled_bracket_leg_has_no_cancel_reason_and_the_other_is_canceled(bars):
    result = run(bars, {0: lambda s: s.buy(size=1, sl=100.5, tp=105.5)})
    orders = result.orders
    assert orders.Status.tolist() == ["filled", "canceled", "filled"]
    assert orders.Reason.tolist() == ["", "its trade closed", ""]
