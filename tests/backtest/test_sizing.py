"""risk_size and atr_size: units that lose a chosen fraction of equity at the stop."""

from __future__ import annotations

import math

import pytest

from tradenn.backtest import Backtest, Strategy, atr_size, risk_size


def test_risk_size_is_the_risk_budget_over_the_stop_distance():
    # 1% of 10,000 is 100; a stop 2 below the entry loses 2 a unit: 50 units.
    assert risk_size(10_000, 50.0, 48.0, 0.01) == 50.0


def test_a_short_stop_above_the_entry_sizes_the_same():
    assert risk_size(10_000, 50.0, 52.0, 0.01) == 50.0


def test_whole_units_are_rounded_down_so_the_loss_stays_within_the_budget():
    # 100 / 3 = 33.33 units: 33 lose 99 at the stop, 34 would lose 102
    assert risk_size(10_000, 100.0, 97.0, 0.01) == 33.0


def test_an_exact_whole_number_is_not_lost_to_float_round_off():
    # 1.1 - 1.0 is 0.10000000000000009, so 100 / (1.1 - 1.0) is 999.9999999999991
    assert 0.01 * 10_000 / (1.1 - 1.0) < 1_000
    assert risk_size(10_000, 1.1, 1.0, 0.01) == 1_000.0


def test_fractional_units_are_not_rounded():
    assert risk_size(10_000, 100.0, 97.0, 0.01, fractional=True) == pytest.approx(100 / 3)


def test_a_budget_below_one_whole_unit_means_do_not_trade():
    # 1% of 1,000 is 10; a unit risks 3,000: 0.0033 units -> 0 (never read as a fraction)
    assert risk_size(1_000, 60_000.0, 57_000.0, 0.01) == 0.0


def test_fractional_units_below_one_cannot_be_ordered_and_raise():
    with pytest.raises(ValueError, match="fewer than one"):
        risk_size(1_000, 60_000.0, 57_000.0, 0.01, fractional=True)


def test_atr_size_puts_the_stop_multiple_atrs_away():
    # distance 2 x 1.25 = 2.5: 100 / 2.5 = 40 units
    assert atr_size(10_000, 1.25, multiple=2.0, risk=0.01) == 40.0
    assert atr_size(10_000, 1.25, 2.0, 0.01) == risk_size(10_000, 50.0, 47.5, 0.01)


def test_atr_size_gives_smaller_positions_when_the_market_moves_more():
    assert atr_size(10_000, 2.5) == atr_size(10_000, 1.25) / 2


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: risk_size(0, 50, 48), "equity"),
        (lambda: risk_size(-1, 50, 48), "equity"),
        (lambda: risk_size(math.nan, 50, 48), "equity"),
        (lambda: risk_size(math.inf, 50, 48), "equity"),
        (lambda: risk_size(10_000, 0, 48), "entry"),
        (lambda: risk_size(10_000, 50, math.nan), "stop"),
        (lambda: risk_size(10_000, 50, -1), "stop"),
        (lambda: risk_size(10_000, 50, 50), "stop"),
        (lambda: risk_size(10_000, 50, 48, 0), "risk"),
        (lambda: risk_size(10_000, 50, 48, 1.5), "risk"),
        (lambda: risk_size(10_000, 50, 48, math.nan), "risk"),
        (lambda: atr_size(10_000, 0), "atr"),
        (lambda: atr_size(10_000, math.nan), "atr"),
        (lambda: atr_size(10_000, 1.0, -2.0), "multiple"),
        (lambda: atr_size(10_000, 1.0, 2.0, -0.01), "risk"),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument} must") as error:
        call()
    assert "\n" not in str(error.value)


def test_a_trade_stopped_out_loses_the_risk_budget(bars):
    # Fill at the close of bar 0 (100) with the stop at 95: 1% of 10,000 / 5 = 20 units. Bar 3
    # trades down through 95 from an open of 104, so the stop fills at 95: a loss of 20 x 5.
    class RiskOnePercent(Strategy):
        def next(self):
            if len(self.data) == 1:
                stop = 95.0
                size = risk_size(self.equity, self.data.Close[-1], stop, 0.01)
                self.buy(size=size, sl=stop)

    result = Backtest(bars, RiskOnePercent, cash=10_000, trade_on_close=True).run()
    (trade,) = result.trades.itertuples()
    assert (trade.Size, trade.EntryPrice, trade.ExitPrice) == (20, 100.0, 95.0)
    assert trade.PnL == pytest.approx(-0.01 * 10_000)


def test_a_size_of_one_unit_is_ordered_as_one_unit_not_as_all_the_equity(bars):
    # 0.5% of 10,000 is 50, the stop is 50 below the close of 100: exactly 1 unit.
    class OneUnit(Strategy):
        def next(self):
            if len(self.data) == 1:
                self.buy(size=risk_size(self.equity, self.data.Close[-1], 50.0, 0.005))

    result = Backtest(bars, OneUnit, cash=10_000, trade_on_close=True).run()
    assert result.orders["Status"].tolist() == ["filled"]
    assert result.position.tolist() == [1.0] * len(bars)


def test_the_strategy_methods_size_from_the_runs_equity_close_and_units_mode(bars):
    sizes = {}

    class Methods(Strategy):
        def next(self):
            if len(self.data) == 1:  # close 100, equity 10,000
                sizes["risk"] = self.risk_size(95.0)
                sizes["entry"] = self.risk_size(95.0, 0.02, entry=99.0)
                sizes["atr"] = self.atr_size(2.5, multiple=2.0)

    Backtest(bars, Methods).run()
    assert sizes == {"risk": 20.0, "entry": 50.0, "atr": 20.0}
    Backtest(bars, Methods, fractional=True).run()
    assert sizes["entry"] == pytest.approx(0.02 * 10_000 / 4)
