"""The columns of ``result.trades`` beyond prices and PnL: each trade's stop-loss and take-profit
when it closed (SL, TP) and its maximum adverse and favourable excursions (MAE, MFE).

The six-bar frame of ``conftest.py`` (O, H, L, C): 0 (100, 101, 99, 100), 1 (102, 104, 101,
103), 2 (103, 106, 102, 105), 3 (104, 105, 98, 99), 4 (99, 100, 95, 96), 5 (97, 99, 96, 98).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn.backtest import Backtest, PortfolioBacktest, PortfolioStrategy, Strategy, Trail
from tradenn.backtest.result import excursions

from .conftest import scripted


def run(bars, actions, **kwargs):
    return Backtest(bars, scripted(actions), **kwargs).run()


def close_all(s):
    s.position.close()


# ------------------------------------------------------------------------------ MAE, MFE


def test_a_long_trades_excursions_are_the_lowest_low_and_highest_high_it_lived_through(bars):
    result = run(bars, {0: lambda s: s.buy(size=1), 3: close_all})
    trade = result.trades.iloc[0]
    # in at bar 1's open 102, out at bar 4's open 99: bars 1..4, lowest low 95, highest high 106
    assert (trade.EntryBar, trade.ExitBar, trade.EntryPrice) == (1, 4, 102.0)
    assert trade.MAE == pytest.approx(95 / 102 - 1)  # -6.86%
    assert trade.MFE == pytest.approx(106 / 102 - 1)  # +3.92%


def test_a_short_trades_excursions_are_mirrored(bars):
    result = run(bars, {1: lambda s: s.sell(size=1), 3: close_all})
    trade = result.trades.iloc[0]
    # short at bar 2's open 103, covered at bar 4's open 99: bars 2..4, high 106, low 95
    assert (trade.EntryBar, trade.ExitBar, trade.EntryPrice) == (2, 4, 103.0)
    assert trade.MAE == pytest.approx(1 - 106 / 103)  # the rise to 106 went against it
    assert trade.MFE == pytest.approx(1 - 95 / 103)
    assert trade.MAE <= 0 <= trade.MFE


def test_a_trade_opened_and_closed_in_one_bar_uses_that_bars_range(bars):
    # long at bar 2's open 103 with a take-profit at 105.5, reached by bar 2's high 106
    result = run(bars, {1: lambda s: s.buy(size=1, tp=105.5)})
    trade = result.trades.iloc[0]
    assert trade.EntryBar == trade.ExitBar == 2 and trade.ExitPrice == 105.5
    assert trade.MAE == pytest.approx(102 / 103 - 1)
    assert trade.MFE == pytest.approx(106 / 103 - 1)


def test_a_trade_that_never_went_against_the_position_has_mae_zero(bars):
    # a long in at bar 2's open 103 and out at its take-profit in the same bar, on a bar 2
    # whose low is its open: the price never went below the entry
    frame = bars.copy()
    frame.loc[frame.index[2], "Low"] = 103.0  # bar 2 never trades below its open
    result = run(frame, {1: lambda s: s.buy(size=1, tp=105.5)})
    trade = result.trades.iloc[0]
    assert trade.MAE == 0.0 and np.signbit(trade.MAE) == False  # noqa: E712 (no -0.0)
    assert trade.MFE == pytest.approx(106 / 103 - 1)


def test_excursions_of_many_overlapping_trades_equal_a_loop_over_each_trade():
    rng = np.random.default_rng(7)
    n, k = 300, 400
    low = 100 + rng.normal(0, 5, n)
    high = low + rng.uniform(0, 3, n)
    entry = rng.integers(0, n, k)
    exit_ = np.minimum(entry + rng.integers(0, 40, k), n - 1)  # some end on the last bar
    exit_[:5] = entry[:5]  # some open and close in one bar
    entry[5:8], exit_[5:8] = (n - 1, n - 3, 0), (n - 1, n - 1, n - 1)  # to the last bar
    size = rng.choice([-3.0, 2.0], k)
    price = rng.uniform(90, 110, k)
    mae, mfe = excursions(size, entry, exit_, price, high, low)
    for j in range(k):
        lo, hi = low[entry[j] : exit_[j] + 1].min(), high[entry[j] : exit_[j] + 1].max()
        if size[j] > 0:
            expected = min(0.0, lo / price[j] - 1), max(0.0, hi / price[j] - 1)
        else:
            expected = min(0.0, 1 - hi / price[j]), max(0.0, 1 - lo / price[j])
        assert (mae[j], mfe[j]) == pytest.approx(expected, rel=1e-12), j


def test_positions_and_next_give_the_same_excursions(bars):
    class Events(Strategy):
        def next(self):
            bar = len(self.data) - 1
            if bar == 0:
                self.buy(size=0.99)
            elif bar == 2:
                self.position.close()
                self.sell(size=0.99)

    class Targets(Strategy):
        def positions(self, data):
            return np.array([0.99, 0.99, -0.99, -0.99, -0.99, -0.99])[: len(data)]

    events = Backtest(bars, Events, finalize_trades=True).run().trades
    targets = Backtest(bars, Targets, finalize_trades=True).run().trades
    assert len(events) == len(targets) == 2
    columns = ["EntryBar", "ExitBar", "MAE", "MFE"]
    pd.testing.assert_frame_equal(events[columns], targets[columns])


# -------------------------------------------------------------------------------- SL, TP


def test_sl_and_tp_are_the_levels_a_trade_had_when_it_closed(bars):
    result = run(bars, {0: lambda s: s.buy(size=1, sl=90.0, tp=120.0), 3: close_all})
    trade = result.trades.iloc[0]
    assert trade.ExitBar == 4 and (trade.SL, trade.TP) == (90.0, 120.0)


def test_a_trade_closed_by_its_take_profit_keeps_its_stop_loss_too(bars):
    result = run(bars, {0: lambda s: s.buy(size=1, sl=95.5, tp=105.5)})
    trade = result.trades.iloc[0]
    assert trade.ExitPrice == 105.5 and (trade.SL, trade.TP) == (95.5, 105.5)


def test_a_moved_stop_is_recorded_where_it_was_at_the_close(bars):
    def move(s):
        s.trades[0].sl = 100.5  # bar 3's low 98 reaches it

    result = run(bars, {0: lambda s: s.buy(size=1, sl=95.0), 1: move})
    trade = result.trades.iloc[0]
    assert trade.ExitPrice == 100.5 and trade.SL == 100.5 and np.isnan(trade.TP)


def test_a_removed_or_canceled_leg_is_not_recorded(bars):
    def remove(s):
        s.trades[0].sl = None
        s.trades[0].tp_order.cancel()  # the order itself: the trade no longer has it

    result = run(bars, {0: lambda s: s.buy(size=1, sl=95.0, tp=120.0), 1: remove, 3: close_all})
    trade = result.trades.iloc[0]
    assert np.isnan(trade.SL) and np.isnan(trade.TP)


def test_a_trailing_stop_is_recorded_where_it_trailed_to(bars):
    class Trailing(Strategy):
        def next(self):
            if len(self.data) == 1:
                self.buy(size=1, trail=Trail(distance=2.0))

    trade = Backtest(bars, Trailing).run().trades.iloc[0]
    # from bar 2's close 105 the stop is 103, where bar 3 falls through it
    assert trade.ExitPrice == 103.0 and trade.SL == 103.0


def test_each_part_of_a_partly_closed_trade_records_the_levels_of_its_own_close(bars):
    def half(s):
        s.trades[0].close(0.5)

    def move(s):
        s.trades[0].sl = 97.0

    result = run(bars, {0: lambda s: s.buy(size=2, sl=90.0), 1: half, 2: move})
    first, second = result.trades.itertuples()
    assert (first.Size, first.ExitBar, first.SL) == (1.0, 2, 90.0)  # closed before the move
    # the rest: its moved stop 97 is reached by bar 4's low 95
    assert (second.Size, second.ExitBar, second.ExitPrice, second.SL) == (1.0, 4, 97.0, 97.0)


def test_target_strategies_and_trades_without_brackets_have_nan_levels(bars):
    class Targets(Strategy):
        def positions(self, data):
            return np.array([1.0, 1.0, 0.0, -1.0, 0.0, 0.0])[: len(data)]

    trades = Backtest(bars, Targets).run().trades
    assert len(trades) == 2 and trades[["SL", "TP"]].isna().all().all()
    trades = run(bars, {0: lambda s: s.buy(size=1), 3: close_all}).trades
    assert trades[["SL", "TP"]].isna().all().all()


def test_the_trades_table_lists_its_columns_in_order(bars):
    trades = run(bars, {0: lambda s: s.buy(size=1, sl=90.0), 3: close_all}).trades
    assert list(trades.columns) == [
        "Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "SL", "TP", "EntryTime",
        "ExitTime", "PnL", "ReturnPct", "MAE", "MFE", "Commission", "Duration", "Tag",
    ]  # fmt: skip
    empty = Backtest(bars, scripted({})).run().trades
    assert list(empty.columns) == list(trades.columns) and empty.empty


# ---------------------------------------------------------------------------- portfolios


def test_portfolio_trades_have_each_assets_excursions_and_no_levels(bars):
    other = bars * 2.0  # the same bars at twice the price
    other["Volume"] = bars["Volume"]

    class Both(PortfolioStrategy):
        def weights(self, data):
            w = pd.DataFrame(0.0, index=data.index, columns=["A", "B"])
            w.iloc[0:2] = 0.4  # held from bar 1's open to bar 3's open
            return w

    result = PortfolioBacktest({"A": bars, "B": other}, Both, fractional=True).run()
    trades = result.trades.set_index("Asset")
    # both: in at bar 1's open, out at bar 3's open; bars 1..3, low 98 (196), high 106 (212)
    for asset in ("A", "B"):
        trade = trades.loc[asset]
        assert (trade.EntryBar, trade.ExitBar) == (1, 3)
        assert trade.MAE == pytest.approx(98 / 102 - 1)
        assert trade.MFE == pytest.approx(106 / 102 - 1)
        assert np.isnan(trade.SL) and np.isnan(trade.TP)
