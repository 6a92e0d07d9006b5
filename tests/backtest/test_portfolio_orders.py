"""Orders in the portfolio engine: the same order management as a single-asset strategy (market,
limit and stop entries, stop-loss, take-profit, trailing stops, cancel, moving a stop), filled by
the same account at each asset's own bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.backtest import Backtest, BacktestError, Strategy, Trail
from tradenn.backtest.portfolio import PortfolioBacktest, PortfolioStrategy

COLUMNS = ["Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "SL", "TP", "PnL"]


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return data.load("SPX", start="2010-01-01", end="2012-12-31")


def scaled(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    out = frame.copy()
    for column in ("Open", "High", "Low", "Close"):
        out[column] = out[column] * factor
    return out


def manage(bar: int, close: float, trades, orders, buy, sell) -> None:
    """One asset's order script: every kind of order and every way to manage one."""
    for order in orders:
        if bar - order.placed_bar >= 3 and order.parent is None:
            order.cancel()  # an entry that has not filled in three bars
    for trade in trades:
        if bar - trade.entry_bar == 5 and trade.is_long and trade.trailing is None:
            trade.sl = max(trade.sl or 0.0, close * 0.97)  # tighten the stop
    if trades or any(o.parent is None for o in orders):
        return
    kind = (bar // 15) % 4
    if kind == 0:
        buy(size=5, sl=close * 0.95, tp=close * 1.08)
    elif kind == 1:
        sell(size=5, limit=close * 1.005, trail=Trail(atr=2.0, period=10))
    elif kind == 2:
        buy(size=3, stop=close * 1.01, trail=Trail(pct=0.03))
    else:
        sell(size=4, sl=close * 1.04)


class Single(Strategy):
    def next(self):
        bar = len(self.data) - 1
        manage(bar, self.data.Close[-1], self.trades, self.orders, self.buy, self.sell)


class Several(PortfolioStrategy):
    def next(self):
        for asset in self.assets:
            view = self.data[asset]
            orders = [o for o in self.orders if o.asset == asset]
            buy = lambda asset=asset, **kw: self.buy(asset, **kw)  # noqa: E731
            sell = lambda asset=asset, **kw: self.sell(asset, **kw)  # noqa: E731
            manage(len(view) - 1, view.Close[-1], self.trades_of(asset), orders, buy, sell)


@pytest.mark.parametrize("trade_on_close", [False, True])
def test_each_assets_orders_fill_as_the_single_asset_engine_fills_them(spx, trade_on_close):
    assets = {"SPX": spx, "TWICE": scaled(spx, 2.0)}
    settings = dict(cash=10_000_000, commission=0.001, trade_on_close=trade_on_close)
    folio = PortfolioBacktest(assets, Several, **settings).run()
    assert set(folio.trades.Asset) == {"SPX", "TWICE"}
    for name, frame in assets.items():
        single = Backtest(frame, Single, **settings).run()
        ours = folio.trades[folio.trades.Asset == name][COLUMNS].reset_index(drop=True)
        assert len(single.trades) > 20
        pd.testing.assert_frame_equal(ours, single.trades[COLUMNS].reset_index(drop=True))
        statuses = folio.orders[folio.orders.Asset == name].Status.value_counts()
        assert statuses.to_dict() == single.orders.Status.value_counts().to_dict()
    # Every kind of exit happened: stops, targets, trailing stops.
    assert folio.trades.SL.notna().sum() > 10 and folio.trades.TP.notna().sum() > 3


def two_assets(n: int = 30) -> dict[str, pd.DataFrame]:
    index = pd.bdate_range("2024-01-01", periods=n, name="Date")
    closes = 100 + np.arange(n, dtype=float)

    def bars(c):
        return pd.DataFrame(
            {"Open": c, "High": c + 1, "Low": c - 1, "Close": c, "Volume": 1.0}, index=index
        )

    return {"A": bars(closes), "B": bars(closes[::-1].copy())}


def scripted(actions) -> type[PortfolioStrategy]:
    def next(self):
        action = actions.get(len(self.data["A"]) - 1)
        if action is not None:
            action(self)

    return type("Scripted", (PortfolioStrategy,), {"next": next, **{}})


def test_an_order_for_an_unknown_asset_is_one_error_naming_the_assets():
    with pytest.raises(BacktestError, match=r"Scripted.buy: unknown asset 'C'; assets: A, B"):
        PortfolioBacktest(two_assets(), scripted({0: lambda s: s.buy("C", size=1)})).run()


def test_an_order_waits_for_its_assets_next_bar():
    assets = two_assets()
    assets["B"] = assets["B"].drop(assets["B"].index[1:4])  # B has no bars 1..3
    result = PortfolioBacktest(assets, scripted({0: lambda s: s.buy("B", size=2)})).run()
    order = result.orders.iloc[0]
    assert order.Status == "filled" and order.FillTime == assets["A"].index[4]
    assert result.positions["B"].iloc[3] == 0 and result.positions["B"].iloc[4] == 2


def test_orders_of_a_delisted_asset_are_canceled():
    assets = two_assets()
    assets["B"] = assets["B"].iloc[:10]  # B's data end at bar 9

    def place(s):
        s.buy("B", size=1)
        s.buy("B", size=1, limit=1.0)  # never fills

    result = PortfolioBacktest(assets, scripted({0: place})).run()
    b = result.orders[result.orders.Asset == "B"]
    assert b.Status.tolist() == ["filled", "filled", "canceled"]  # the entry, the delisting sale
    assert b.Reason.iloc[2] == "delisted" and b.Limit.iloc[2] == 1.0
    assert result.positions["B"].iloc[-1] == 0


def test_a_schedule_does_not_flatten_positions_that_orders_opened():
    strategy = scripted({0: lambda s: s.buy("A", size=3)})
    strategy.rebalance_every = 5
    result = PortfolioBacktest(two_assets(), strategy).run()
    assert (result.positions["A"].iloc[1:] == 3).all()


def test_a_rebalance_after_orders_trades_to_the_weights():
    def weigh(s):
        s.rebalance({"A": 0.0, "B": 0.5})

    result = PortfolioBacktest(
        two_assets(), scripted({0: lambda s: s.buy("A", size=3, sl=50.0), 5: weigh})
    ).run()
    assert result.positions["A"].iloc[6] == 0 and result.positions["B"].iloc[6] > 0
    a = result.orders[result.orders.Asset == "A"]
    assert a.Status.tolist() == ["filled", "filled", "canceled"]  # entry, the rebalance, its stop
    assert a.Reason.iloc[2] == "its trade closed"
