"""Multi-asset portfolios: the one-asset case equals the single-asset engine, hand-checked
weights, costs, leverage, missing dates, look-ahead protection and the example strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest, BacktestError, LookAheadError, Strategy
from tradenn.backtest.portfolio import PortfolioBacktest, PortfolioStrategy
from tradenn.data.panel import align, panel_frame
from tradenn.errors import DataError

BUNDLED = ["SPX", "NASDAQ", "MSFT", "GOOGL"]


def frame(closes, start="2024-01-01", opens=None, dates=None) -> pd.DataFrame:
    closes = np.asarray(closes, dtype=float)
    opens = closes if opens is None else np.asarray(opens, dtype=float)
    index = pd.DatetimeIndex(dates, name="Date") if dates is not None else None
    if index is None:
        index = pd.bdate_range(start, periods=len(closes), name="Date")
    out = pd.DataFrame(
        {
            "Open": opens,
            "High": np.maximum(opens, closes) + 1,
            "Low": np.minimum(opens, closes) - 1,
            "Close": closes,
            "Volume": 1000.0,
        },
        index=index,
    )
    return out


def fixed_weights(table: dict[str, np.ndarray], **attrs) -> type[PortfolioStrategy]:
    """A portfolio strategy whose weights are given per bar (causal by construction)."""

    def weights(self, panel):
        return pd.DataFrame({k: v[: len(panel)] for k, v in table.items()}, index=panel.index)

    return type("Fixed", (PortfolioStrategy,), {"weights": weights, **attrs})


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return data.load("SPX", start="2010-01-01", end="2013-12-31")


@pytest.fixture(scope="module")
def bundled() -> dict[str, pd.DataFrame]:
    return {name: data.load(name) for name in BUNDLED}


# ------------------------------------------------------------------ one asset = single asset


@pytest.mark.parametrize("fractional", [False, True])
def test_one_asset_portfolio_equals_single_asset_engine(spx, fractional):
    rng = np.random.default_rng(3)
    n = len(spx)
    levels = np.array([-1.0, -0.4, 0.0, 0.3, 0.75, 1.0])
    targets = np.repeat(rng.choice(levels, size=n // 7 + 1), 7)[:n]

    class Single(Strategy):
        def positions(self, frame):
            return pd.Series(targets[: len(frame)], index=frame.index)

    costs = dict(commission=0.001, fixed_commission=1.0, spread=0.0004, slippage_bps=2.0)
    single = Backtest(spx, Single, fractional=fractional, **costs).run()
    folio = PortfolioBacktest(
        spx, fixed_weights({"SPX": targets}), fractional=fractional, **costs
    ).run()

    assert isinstance(folio.equity, pd.Series) and len(folio.trades) > 10
    np.testing.assert_array_equal(folio.equity.to_numpy(), single.equity.to_numpy())
    np.testing.assert_array_equal(folio.positions["SPX"].to_numpy(), single.position.to_numpy())
    assert folio.stats["Commissions [$]"] == single.stats["Commissions [$]"]
    fills = ["FillTime", "FillPrice", "Size", "Side"]
    ours = folio.orders[folio.orders.Status == "filled"][fills].reset_index(drop=True)
    theirs = single.orders[single.orders.Status == "filled"][fills].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)
    columns = ["Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "PnL", "Commission"]
    pd.testing.assert_frame_equal(folio.trades[columns], single.trades[columns])


def test_event_driven_rebalance_matches_vectorized_weights(spx):
    n = len(spx)
    targets = np.where((np.arange(n) // 20) % 2 == 0, 0.8, -0.5)

    class Events(PortfolioStrategy):
        def next(self):
            self.rebalance({"SPX": targets[len(self.data) - 1]})

    events = PortfolioBacktest(spx, Events, commission=0.001).run()
    vector = PortfolioBacktest(spx, fixed_weights({"SPX": targets}), commission=0.001).run()
    np.testing.assert_array_equal(events.equity.to_numpy(), vector.equity.to_numpy())


def test_single_frame_runs_as_a_portfolio_named_by_its_source(spx):
    backtest = PortfolioBacktest(spx, load_strategy("equal_weight"))
    assert backtest.assets == ["SPX"]
    unnamed = spx.copy()
    unnamed.attrs = {}
    assert PortfolioBacktest(unnamed, load_strategy("equal_weight")).assets == ["asset"]


# ------------------------------------------------------------------ hand calculations


def two_assets():
    a = frame([100, 102, 104, 103, 106], opens=[100, 101, 103, 104, 105])
    b = frame([50, 49, 52, 55, 54], opens=[50, 51, 50, 53, 56])
    return {"A": a, "B": b}


def test_two_assets_against_a_hand_calculation():
    frames = two_assets()
    w = {"A": np.full(5, 0.6), "B": np.full(5, 0.4)}
    result = PortfolioBacktest(frames, fixed_weights(w), fractional=True, cash=1000.0).run()
    units_a, units_b = 0.6 * 1000 / 101, 0.4 * 1000 / 51  # bought at bar 1's opens
    expected = (
        1000
        - units_a * 101
        - units_b * 51
        + units_a * frames["A"].Close
        + units_b * (frames["B"].Close)
    )
    expected.iloc[0] = 1000.0
    np.testing.assert_allclose(result.equity.to_numpy(), expected.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.positions.iloc[-1], [units_a, units_b], rtol=1e-12)
    pnl = result.pnl.iloc[-1]
    np.testing.assert_allclose(pnl["A"], units_a * (106 - 101), rtol=1e-12)
    np.testing.assert_allclose(pnl["B"], units_b * (54 - 51), rtol=1e-12)
    assert result.weights.iloc[-1].sum() == pytest.approx(1.0)


def test_per_asset_commission():
    frames = two_assets()
    w = {"A": np.full(5, 0.5), "B": np.full(5, 0.5)}
    result = PortfolioBacktest(
        frames, fixed_weights(w), fractional=True, cash=1000.0, commission={"A": 0.01, "B": 0.0}
    ).run()
    units_a = 0.5 * 1000 / (101 * 1.01)  # the commission is paid out of the weight
    fees = result.asset_stats["Commissions [$]"]
    assert fees["A"] == pytest.approx(0.01 * units_a * 101)
    assert fees["B"] == 0.0
    assert result.stats["Commissions [$]"] == pytest.approx(fees.sum())
    with pytest.raises(BacktestError, match="no value for asset 'B'"):
        PortfolioBacktest(frames, fixed_weights(w), commission={"A": 0.01})


def test_leverage_limit_scales_down_or_rejects():
    frames = two_assets()
    w = {"A": np.full(5, 1.0), "B": np.full(5, -1.0)}
    scaled = PortfolioBacktest(frames, fixed_weights(w), fractional=True).run()
    np.testing.assert_allclose(scaled.target_weights.iloc[1], [0.5, -0.5])
    with pytest.raises(BacktestError, match="exceeds max_leverage 1"):
        PortfolioBacktest(frames, fixed_weights(w), leverage="reject").run()
    levered = PortfolioBacktest(frames, fixed_weights(w), fractional=True, max_leverage=2.0).run()
    held = levered.positions.iloc[1]  # bought and sold short at bar 1's opens, 101 and 51
    assert held["A"] * 101 == pytest.approx(10_000) and held["B"] * 51 == pytest.approx(-10_000)


def test_calendar_schedule_and_drift_threshold(spx):
    n = len(spx)
    strategy = fixed_weights({"SPX": np.full(n, 0.5)}, rebalance_every="M")
    result = PortfolioBacktest(spx, strategy, fractional=True).run()
    fills = result.orders.loc[result.orders.Status == "filled", "FillTime"]
    decided = spx.index[spx.index.get_indexer(fills) - 1]
    previous = spx.index[spx.index.get_indexer(decided) - 1]
    first_of_month = (decided.month != previous.month) | (decided == spx.index[0])
    assert len(fills) > 30 and first_of_month.all()
    lazy = PortfolioBacktest(spx, strategy, fractional=True).run(drift_threshold=0.2)
    assert (lazy.orders.Status == "filled").sum() == 1  # SPX never drifts 20% off 0.5 here


# ------------------------------------------------------------------ missing dates


def test_an_asset_that_starts_later_and_skips_a_date():
    dates = pd.bdate_range("2024-01-01", periods=8, name="Date")
    a = frame(np.linspace(100, 107, 8), dates=dates)
    b_dates = dates[[3, 4, 6, 7]]  # listed from bar 3, no bar on bar 5
    b = frame([20, 21, 22, 23], dates=b_dates)
    wb = np.array([0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3])
    result = PortfolioBacktest(
        {"A": a, "B": b}, fixed_weights({"A": np.full(8, 0.5), "B": wb})
    ).run()
    assert (result.target_weights["B"].iloc[:3] == 0).all()  # cannot be held before its first bar
    assert (result.positions["B"].iloc[:4] == 0).all()
    b_fills = result.orders[(result.orders.Asset == "B") & (result.orders.Status == "filled")]
    # decided at bar 3 (listing) -> bar 4; decided at bar 4 -> bar 5 has no B bar -> waits to 6
    assert list(b_fills.FillTime) == [dates[4], dates[6]]
    assert b_fills.PlacedTime.iloc[1] == dates[4]
    # no fill on bar 5, so its equity values B at its bar-4 close (21) carried forward
    held = result.positions.iloc[5]
    cash = result.equity.iloc[4] - held["A"] * a.Close.iloc[4] - held["B"] * 21
    assert result.equity.iloc[5] == pytest.approx(
        cash + held["A"] * a.Close.iloc[5] + held["B"] * 21
    )


def test_align_outer_and_inner():
    a = frame([11, 12, 13, 14], start="2024-01-01")
    b = frame([15, 16, 17], start="2024-01-02")
    outer, inner = align({"A": a, "B": b}), align({"A": a, "B": b}, how="inner")
    assert len(outer) == 4 and len(inner) == 3
    assert np.isnan(outer["Close", "B"].iloc[0]) and not inner.isna().any().any()
    pd.testing.assert_frame_equal(panel_frame(outer, "B"), b, check_freq=False)
    with pytest.raises(DataError, match="how must be"):
        align({"A": a}, how="left")


# ------------------------------------------------------------------ protections and errors


def test_a_peeking_weights_is_rejected(spx):
    class Peek(PortfolioStrategy):
        def weights(self, panel):
            tomorrow = panel["Close"].shift(-1) > panel["Close"]
            return tomorrow.astype(float)

    with pytest.raises(LookAheadError, match="uses future data"):
        PortfolioBacktest(spx, Peek).run()


def test_errors():
    frames = two_assets()

    class Unknown(PortfolioStrategy):
        def next(self):
            self.rebalance({"C": 0.5})

    with pytest.raises(BacktestError, match="unknown asset 'C'"):
        PortfolioBacktest(frames, Unknown).run()
    with pytest.raises(BacktestError, match=r"finite and >= 0 \(allow_short=False\)"):
        PortfolioBacktest(frames, fixed_weights({"A": np.full(5, -0.5)}), allow_short=False).run()
    with pytest.raises(BacktestError, match="finite"):
        PortfolioBacktest(frames, fixed_weights({"A": np.full(5, np.inf)})).run()
    with pytest.raises(BacktestError, match="unknown asset 'Z'"):
        PortfolioBacktest(frames, fixed_weights({"Z": np.full(5, 0.1)})).run()
    with pytest.raises(BacktestError, match="empty mapping"):
        PortfolioBacktest({}, load_strategy("equal_weight"))
    with pytest.raises(BacktestError, match="rebalance_every"):
        PortfolioBacktest(frames, load_strategy("equal_weight")).run(rebalance_every="fortnight")
    with pytest.raises(BacktestError, match="PortfolioStrategy subclass"):
        PortfolioBacktest(frames, load_strategy("sma_cross"))


# ------------------------------------------------------------------ example strategies


@pytest.mark.parametrize("name", ["equal_weight", "xs_momentum", "inverse_volatility"])
def test_example_strategies_on_the_four_bundled_datasets(bundled, name):
    result = PortfolioBacktest(
        bundled, load_strategy(name), commission=0.001, fractional=True
    ).run()
    assert np.isfinite(result.equity).all() and (result.equity > 0).all()
    assert (result.asset_stats["# Fills"] > 0).all()  # every asset was traded at some point
    assert (result.target_weights.abs().sum(axis=1) <= 1 + 1e-9).all()
    assert result.stats["# Assets"] == 4


def test_equal_weight_holds_each_trading_asset_equally(bundled, tmp_path):
    result = PortfolioBacktest(bundled, load_strategy("equal_weight"), fractional=True).run()
    day = result.weights.loc["2012-06-05"]  # a few days into June 2012: 4 assets trading
    np.testing.assert_allclose(day.to_numpy(), 0.25, atol=0.02)
    figure = result.plot(tmp_path / "portfolio.png")
    assert (tmp_path / "portfolio.png").stat().st_size > 10_000 and len(figure.axes) == 2


def test_xs_momentum_holds_the_top_k_by_trailing_return(bundled):
    result = PortfolioBacktest(bundled, load_strategy("xs_momentum"), fractional=True).run(top_k=1)
    close = align(bundled)["Close"].ffill()
    momentum = close / close.shift(126) - 1
    bar = result.target_weights.index.get_loc(pd.Timestamp("2014-03-03"))
    best = momentum.iloc[bar].idxmax()
    assert result.target_weights.iloc[bar][best] == 1.0
    assert result.target_weights.iloc[bar].drop(best).abs().sum() == 0.0


def test_the_engine_is_chosen_explicitly_and_backtest_points_to_the_portfolio_engine(spx):
    with pytest.raises(BacktestError, match="a PortfolioStrategy runs in PortfolioBacktest"):
        Backtest(spx, load_strategy("equal_weight"))
    with pytest.raises(BacktestError, match="for several assets use PortfolioBacktest"):
        Backtest(["SPX", "MSFT"], load_strategy("sma_cross"))


# ------------------------------------------------------------------ delisting and leverage


@pytest.mark.parametrize("name", ["equal_weight", "inverse_volatility"])
def test_a_delisted_asset_is_sold_at_its_last_close_and_leverage_never_exceeds_the_limit(
    bundled, name
):
    result = PortfolioBacktest(bundled, load_strategy(name), fractional=True).run()
    last = data.load("MSFT").index[-1]
    assert last == pd.Timestamp("2017-11-10")
    after = result.positions.index > last
    assert after.any() and (result.positions.loc[after, "MSFT"] == 0).all()
    assert result.positions.loc[last, "MSFT"] == 0  # sold on its last bar
    sale = result.orders[(result.orders["Asset"] == "MSFT") & (result.orders["Tag"] == "delisted")]
    assert len(sale) == 1 and sale["FillTime"].iloc[0] == last
    msft_close = data.load("MSFT")["Close"].iloc[-1]
    assert sale["FillPrice"].iloc[0] == pytest.approx(msft_close)  # no costs configured
    gross = (result.weights.abs().sum(axis=1)).to_numpy()
    assert np.nanmax(gross) <= 1 + 1e-9  # max_leverage defaults to 1 / margin = 1
    assert (result.target_weights.loc[after, "MSFT"] == 0).all()


def test_only_assets_whose_data_ends_before_the_panel_are_delisted(bundled):
    result = PortfolioBacktest(bundled, load_strategy("equal_weight"), fractional=True).run()
    sold = result.orders.loc[result.orders["Tag"] == "delisted", "Asset"]
    assert sorted(sold) == ["GOOGL", "MSFT"]  # their data end 2018-08-29 and 2017-11-10
    assert (result.positions.iloc[-1][["SPX", "NASDAQ"]] > 0).all()


def test_portfolio_strategies_can_read_every_attribute_they_expose(spx):
    seen = {}

    class Reader(PortfolioStrategy):
        def next(self):
            if len(self.data) == 5:
                self.rebalance({"SPX": 0.5})
            if len(self.data) == 40:
                seen.update(
                    trades=self.trades,
                    closed=self.closed_trades,
                    orders=self.orders,
                    equity=self.equity,
                    cash=self.cash,
                    holdings=self.holdings,
                    weights=self.current_weights,
                )

    result = PortfolioBacktest(spx, Reader, fractional=True).run()
    assert len(seen["trades"]) == 1 and seen["trades"][0].size == seen["holdings"]["SPX"] > 0
    assert seen["closed"] == () and seen["orders"] == ()
    assert seen["equity"] == pytest.approx(result.equity.iloc[39])
    assert seen["cash"] == pytest.approx(seen["equity"] * (1 - seen["weights"]["SPX"]))


# ------------------------------------------------------------------ alpha and beta


def test_alpha_and_beta_are_against_the_equal_weight_buy_and_hold():
    a = frame([100, 104, 101, 108, 110, 107, 112])
    b = frame([50, 49, 51, 50, 53, 52, 51])
    benchmark = (a["Close"] / 100 + b["Close"] / 50).to_numpy() / 2
    settings = {"trade_on_close": True, "fractional": True}
    # Half in each from the first close, never rebalanced: the equity is the benchmark.
    held = fixed_weights({"A": np.full(7, 0.5), "B": np.full(7, 0.5)})
    s = PortfolioBacktest({"A": a, "B": b}, held, **settings).run().stats
    assert s["Buy & Hold Return [%]"] == pytest.approx(100 * (benchmark[-1] - 1))
    assert s["Return [%]"] == pytest.approx(s["Buy & Hold Return [%]"])
    assert s["Beta"] == pytest.approx(1.0) and s["Alpha [%]"] == pytest.approx(0.0, abs=1e-9)
    # All in A: the slope of A's log returns on the benchmark's, not 1.
    only_a = fixed_weights({"A": np.ones(7), "B": np.zeros(7)})
    s = PortfolioBacktest({"A": a, "B": b}, only_a, **settings).run().stats
    x, y = np.diff(np.log(a["Close"].to_numpy())), np.diff(np.log(benchmark))
    beta = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((y - y.mean()) ** 2)
    assert s["Beta"] == pytest.approx(beta)
    assert s["Alpha [%]"] == pytest.approx(12.0 - beta * 100 * (benchmark[-1] - 1))
