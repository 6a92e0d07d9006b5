"""Fills, sizing and costs on a six-bar frame, every expected number worked out by hand.

Bars (O, H, L, C): 0 (100, 101, 99, 100), 1 (102, 104, 101, 103), 2 (103, 106, 102, 105),
3 (104, 105, 98, 99), 4 (99, 100, 95, 96), 5 (97, 99, 96, 98).
"""

from __future__ import annotations

import math

import pytest

from tradenn.backtest import Backtest, BacktestError
from tradenn.errors import StrategyFailure

from .conftest import scripted


def run(bars, actions, **kwargs):
    return Backtest(bars, scripted(actions), **kwargs).run()


def test_market_buy_fills_next_open_with_all_cash_in_whole_units_and_pays_commission(bars):
    result = run(bars, {0: lambda s: s.buy(), 2: lambda s: s.position.close()}, commission=0.01)
    trade = result.trades.iloc[0]
    # Buy at bar 1's open 102: floor(10000 / (102 * 1.01)) = floor(97.07) = 97 units,
    # cost 9894 + commission 98.94 -> cash 7.06.
    assert trade.Size == 97 and trade.EntryPrice == 102 and trade.EntryBar == 1
    assert result.equity.iloc[1] == pytest.approx(7.06 + 97 * 103)
    # Close at bar 3's open 104: proceeds 10088 - commission 100.88.
    assert trade.ExitPrice == 104 and trade.ExitBar == 3
    assert result.equity.iloc[-1] == pytest.approx(7.06 + 10088 - 100.88)
    assert trade.PnL == pytest.approx(97 * 2 - 98.94 - 100.88)
    assert trade.ReturnPct == pytest.approx((97 * 2 - 199.82) / (97 * 102))
    assert result.stats["Commissions [$]"] == pytest.approx(98.94 + 100.88)


def test_trade_on_close_fills_at_the_signal_bars_close(bars):
    result = run(bars, {0: lambda s: s.buy()}, commission=0.01, trade_on_close=True)
    # floor(10000 / (100 * 1.01)) = 99 units at bar 0's close.
    assert result.position.iloc[0] == 99
    assert result.orders.FillPrice.iloc[0] == 100


def test_fraction_size_is_a_share_of_equity(bars):
    result = run(bars, {0: lambda s: s.buy(size=0.5)}, commission=0.01)
    # floor(0.5 * 10000 / (102 + 0.01 * 102)) = floor(48.53) = 48
    assert result.position.iloc[1] == 48


def test_whole_unit_size_and_unaffordable_orders_are_rejected_not_resized(bars):
    result = run(bars, {0: lambda s: s.buy(size=200), 1: lambda s: s.buy(size=10)})
    assert result.orders.Status.tolist() == ["rejected", "filled"]
    assert "insufficient buying power" in result.orders.Reason.iloc[0]
    assert result.position.iloc[-1] == 10 and result.stats["# Orders Rejected"] == 1
    # The 10 units fill at bar 2's open (103): equity moves with them from bar 2's close on.
    assert result.equity.iloc[1] == 10_000
    assert result.equity.iloc[2] == pytest.approx(10_000 + 10 * (105 - 103))
    assert result.equity.iloc[3] == pytest.approx(10_000 + 10 * (99 - 103))


def test_short_sale_credits_cash_and_marks_to_market(bars):
    result = run(bars, {0: lambda s: s.sell()}, commission=0.01)
    # floor(10000 / (102 + 1.02)) = 97 short at 102: cash 10000 + 9894 - 98.94.
    assert result.position.iloc[1] == -97
    assert result.equity.iloc[1] == pytest.approx(10000 + 9894 - 98.94 - 97 * 103)


def test_spread_and_slippage_move_fills_against_the_trader(bars):
    result = run(
        bars,
        {0: lambda s: s.buy(size=1), 1: lambda s: s.sell(size=1)},
        spread=0.02,
        slippage_bps=10,
    )
    impact = 0.01 + 0.001
    buy, sell = result.orders.FillPrice.tolist()
    assert buy == pytest.approx(102 * (1 + impact)) and sell == pytest.approx(103 * (1 - impact))


def test_fixed_commission_is_paid_on_every_fill(bars):
    result = run(
        bars, {0: lambda s: s.buy(size=1), 1: lambda s: s.sell(size=1)}, fixed_commission=2.5
    )
    assert result.stats["Commissions [$]"] == 5.0
    assert result.equity.iloc[-1] == pytest.approx(10_000 + (103 - 102) - 5.0)


def test_limit_buy_fills_at_its_price_or_the_better_gap_open(bars):
    actions = {0: lambda s: s.buy(size=1, limit=99.5), 3: lambda s: s.buy(size=1, limit=100)}
    result = run(bars, actions)
    fills = result.orders[["FillTime", "FillPrice"]]
    assert fills.FillPrice.tolist() == [99.5, 99.0]  # bar 3 touches 98; bar 4 opens at 99 < 100
    assert [bars.index.get_loc(t) for t in fills.FillTime] == [3, 4]


def test_stop_buy_fills_at_its_price_or_the_worse_gap_open(bars):
    actions = {0: lambda s: s.buy(size=1, stop=105), 1: lambda s: s.buy(size=1, stop=101.5)}
    result = run(bars, actions)
    # Stop 105 is reached inside bar 2 (H 106); stop 101.5 is gapped over by bar 2's open 103.
    assert result.orders.FillPrice.tolist() == [105.0, 103.0]


def test_stop_limit_waits_for_its_trigger_then_fills_when_marketable(bars):
    result = run(bars, {0: lambda s: s.sell(size=1, stop=100, limit=99)})
    # Bar 3 trades down through 100 (L 98), trigger at 100 >= limit 99: fills at 100.
    order = result.orders.iloc[0]
    assert order.Type == "stop-limit" and order.FillPrice == 100.0
    assert bars.index.get_loc(order.FillTime) == 3


def test_take_profit_and_stop_loss_close_the_trade(bars):
    result = run(bars, {0: lambda s: s.buy(size=1, sl=100.5, tp=105.5)})
    trade = result.trades.iloc[0]
    assert trade.ExitPrice == 105.5 and trade.ExitBar == 2  # bar 2's high 106 reaches the TP


def test_when_one_bar_reaches_both_brackets_the_stop_loss_is_assumed(bars):
    result = run(bars, {0: lambda s: s.buy(size=1, sl=101.5, tp=103.5)})
    trade = result.trades.iloc[0]
    # Bar 1 (O 102, H 104, L 101) reaches both 101.5 and 103.5: assume the worse, the stop.
    assert trade.ExitPrice == 101.5 and trade.ExitBar == 1


def test_stop_loss_gapped_through_fills_at_the_open(bars):
    frame = bars.copy()
    frame.loc[frame.index[3], ["Low", "Close"]] = [99.5, 99.6]
    result = run(frame, {0: lambda s: s.buy(size=1, sl=99.2)})
    # Entered at bar 1's open 102; no bar reaches 99.2 until bar 4 opens below it, at 99.
    assert result.trades.iloc[0].ExitPrice == 99.0 and result.trades.iloc[0].ExitBar == 4


def test_selling_a_long_closes_it_fifo_before_going_short(bars):
    actions = {0: lambda s: s.buy(size=3), 1: lambda s: s.buy(size=2), 2: lambda s: s.sell(size=4)}
    result = run(bars, actions)
    closed = result.trades
    assert closed.Size.tolist() == [3, 1] and closed.EntryPrice.tolist() == [102, 103]
    assert result.position.iloc[-1] == 1


def test_exclusive_orders_close_the_position_before_a_new_order(bars):
    result = run(
        bars, {0: lambda s: s.buy(size=2), 1: lambda s: s.buy(size=1)}, exclusive_orders=True
    )
    assert result.trades.Size.tolist() == [2] and result.position.iloc[-1] == 1


def test_open_trades_count_in_equity_and_only_when_finalized_in_trade_stats(bars):
    open_ = run(bars, {0: lambda s: s.buy(size=1)})
    assert open_.stats["# Trades"] == 0 and open_.equity.iloc[-1] == 10_000 + 98 - 102
    final = run(bars, {0: lambda s: s.buy(size=1)}, finalize_trades=True)
    assert final.stats["# Trades"] == 1 and final.trades.iloc[0].ExitPrice == 98


def test_margin_allows_leverage(bars):
    result = run(bars, {0: lambda s: s.buy()}, margin=0.5)
    # floor(10000 / (102 * 0.5)) = 196 units with 2x leverage, no commission.
    assert result.position.iloc[1] == 196


def test_fractional_units(bars):
    result = run(bars, {0: lambda s: s.buy()}, fractional=True)
    assert result.position.iloc[1] == pytest.approx(10_000 / 102)


def test_a_margin_call_liquidates_when_equity_is_exhausted(bars):
    frame = bars.copy()
    frame.loc[frame.index[3], ["High", "Close"]] = [230.0, 230.0]  # the short is wiped out
    result = run(frame, {0: lambda s: s.sell()})
    assert result.position.iloc[3] == 0 and result.position.iloc[-1] == 0
    assert result.equity.iloc[3] <= 0
    assert math.isclose(result.equity.iloc[-1], result.equity.iloc[3])
    assert "margin call" in result.orders.Tag.iloc[-1]


def test_unknown_parameters_and_bad_settings_are_clear_errors(bars):
    with pytest.raises(BacktestError, match="has no parameter 'fats'"):
        Backtest(bars, scripted({})).run(fats=3)
    with pytest.raises(BacktestError, match=r"commission must be in \[0, 1\), got 1.5"):
        Backtest(bars, scripted({}), commission=1.5)
    # a nonsense order names the strategy and where it was placed (issue 19); the cause is kept
    with pytest.raises(StrategyFailure, match=r"Script\.next .* size must be a positive") as bad:
        run(bars, {0: lambda s: s.buy(size=-1)})
    assert isinstance(bad.value.__cause__, ValueError)
