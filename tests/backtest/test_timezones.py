"""Tz-aware price frames backtest end to end: the same statistics and trades as the naive frame,
with the zone kept in every time of the result (single asset, vectorized, portfolio, plot,
report, look-ahead check, CLI on a CSV with DST offsets)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest, PortfolioBacktest, Strategy
from tradenn.backtest.lookahead import check_lookahead
from tradenn.cli import main

NEW_YORK = "America/New_York"
TIME_STATS = ("Start", "End")


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return data.load("SPX")


def _in_zone(frame: pd.DataFrame, zone: str = NEW_YORK) -> pd.DataFrame:
    out = frame.copy()
    out.index = out.index.tz_localize(zone)
    return out


def _assert_same_stats(aware: pd.Series, naive: pd.Series, zone: str = NEW_YORK) -> None:
    for key in TIME_STATS:
        assert aware[key] == naive[key].tz_localize(zone), key
    pd.testing.assert_series_equal(aware.drop(list(TIME_STATS)), naive.drop(list(TIME_STATS)))


def _crosses_dst(entry: pd.Series, exit_: pd.Series) -> bool:
    """True when some trade's entry and exit have different UTC offsets."""
    offsets = [(a.utcoffset(), b.utcoffset()) for a, b in zip(entry, exit_, strict=True)]
    return any(a != b for a, b in offsets)


@pytest.mark.parametrize("name", ["sma_cross", "ema_momentum"])  # next() and positions()
def test_tz_aware_spx_gives_the_naive_stats_and_trades_with_the_zone_kept(spx, name):
    strategy = load_strategy(name)
    naive = Backtest(spx, strategy, commission=0.001).run()
    aware = Backtest(_in_zone(spx), strategy, commission=0.001).run()
    assert Backtest(spx, strategy).vectorized is (name == "ema_momentum")

    _assert_same_stats(aware.stats, naive.stats)
    assert str(aware.equity.index.tz) == NEW_YORK
    assert aware.equity.index.equals(naive.equity.index.tz_localize(NEW_YORK))
    assert str(aware.position.index.tz) == NEW_YORK

    trades, expected = aware.trades, naive.trades
    assert len(trades) > 10
    assert _crosses_dst(trades["EntryTime"], trades["ExitTime"])  # durations would differ
    for column in ("EntryTime", "ExitTime"):
        assert str(trades[column].dt.tz) == NEW_YORK
        expected = expected.assign(**{column: expected[column].dt.tz_localize(NEW_YORK)})
    pd.testing.assert_frame_equal(trades, expected)

    orders, expected = aware.orders, naive.orders
    for column in ("PlacedTime", "FillTime"):
        assert str(orders[column].dt.tz) == NEW_YORK
        expected = expected.assign(**{column: expected[column].dt.tz_localize(NEW_YORK)})
    pd.testing.assert_frame_equal(orders, expected)


def test_an_unfilled_order_has_no_fill_time_in_a_tz_aware_result(spx):
    class NeverFills(Strategy):
        def next(self):
            if len(self.data) == 5:
                self.buy(size=1, limit=1.0)  # far below the market: stays pending

    orders = Backtest(_in_zone(spx.iloc[:50]), NeverFills).run().orders
    assert len(orders) == 1 and orders["FillTime"].isna().all()
    assert orders["PlacedTime"].iloc[0] == spx.index[4].tz_localize(NEW_YORK)


def test_a_portfolio_of_tz_aware_assets_gives_the_naive_result_with_the_zone(spx):
    msft = data.load("MSFT", start="2005-01-01")
    naive = PortfolioBacktest({"SPX": spx, "MSFT": msft}, load_strategy("inverse_volatility")).run()
    aware = PortfolioBacktest(
        {"SPX": _in_zone(spx), "MSFT": _in_zone(msft)}, load_strategy("inverse_volatility")
    ).run()
    _assert_same_stats(aware.stats, naive.stats)
    assert aware.equity.index.equals(naive.equity.index.tz_localize(NEW_YORK))
    assert len(aware.orders) > 10
    for column in ("PlacedTime", "FillTime"):
        assert str(aware.orders[column].dt.tz) == NEW_YORK
        expected = naive.orders[column].dt.tz_localize(NEW_YORK)
        pd.testing.assert_series_equal(aware.orders[column], expected)
    for column in ("EntryTime", "ExitTime"):
        pd.testing.assert_series_equal(
            aware.trades[column], naive.trades[column].dt.tz_localize(NEW_YORK)
        )


def test_a_portfolio_in_several_zones_runs_in_the_first_assets_zone(spx):
    ny = _in_zone(spx.loc["2010":"2012"])
    london = ny.copy()
    london.index = london.index.tz_convert("Europe/London")  # the same instants
    result = PortfolioBacktest({"NY": ny, "LDN": london}, load_strategy("equal_weight")).run()
    assert str(result.equity.index.tz) == NEW_YORK
    assert result.equity.index.equals(ny.index)  # the bars line up: no extra calendar rows
    assert str(result.orders["FillTime"].dt.tz) == NEW_YORK


def test_plot_and_report_of_a_tz_aware_backtest_show_the_zones_wall_clock(spx, tmp_path):
    frame = _in_zone(spx.loc["2017"])
    result = Backtest(frame, load_strategy("sma_cross")).run()
    fig = result.plot(tmp_path / "plot.png")
    first_x = fig.axes[0].get_lines()[0].get_xdata()[0]
    assert pd.Timestamp(first_x) == spx.loc["2017"].index[0]  # midnight, not 05:00 UTC
    assert (tmp_path / "plot.png").stat().st_size > 10_000
    page = result.report(tmp_path / "report")
    assert page.is_file()
    stats = json.loads((tmp_path / "report" / "stats.json").read_text())
    assert stats["Start"] == frame.index[0].isoformat() == "2017-01-03T00:00:00-05:00"


def test_a_portfolio_plot_of_tz_aware_assets_uses_wall_clock_time(spx):
    frame = _in_zone(spx.loc["2017"])
    result = PortfolioBacktest({"A": frame, "B": frame}, load_strategy("equal_weight")).run()
    first_x = result.plot().axes[0].get_lines()[0].get_xdata()[0]
    assert pd.Timestamp(first_x) == spx.loc["2017"].index[0]


def test_check_lookahead_on_a_tz_aware_frame_reports_times_in_the_zone():
    frame = data.gbm(80, seed=3)
    frame.index = pd.date_range("2017-03-06 09:00", periods=80, freq="h", tz=NEW_YORK)

    class Tomorrow(Strategy):
        def init(self):
            whole = self.data._frame  # the whole frame, captured past the BarSeries guard
            self.ahead = lambda i: float(whole["Close"].iloc[i]) if i < len(whole) else None

        def next(self):
            ahead = self.ahead(len(self.data))
            if ahead is not None and ahead > self.data.Close[-1]:
                self.buy(size=1)

    close = frame["Close"].to_numpy()
    expected = frame.index[int(np.flatnonzero(close[1:] > close[:-1])[0])]
    report = check_lookahead(Tomorrow, frame, cuts=len(frame), perturb=False)
    assert not report.clean
    assert report.first_bar == expected and str(report.first_bar.tz) == NEW_YORK
    assert report.to_dict()["first_bar"] == expected.isoformat()
    assert check_lookahead(load_strategy("sma_cross"), _in_zone(data.load("SPX")), cuts=3).clean


def test_cli_backtest_on_a_csv_with_dst_offsets_exits_0(spx, tmp_path, capsys):
    path = tmp_path / "ny.csv"
    _in_zone(spx.loc["2017"]).to_csv(path)
    assert main(["backtest", "--data", str(path), "--no-plot", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    naive = Backtest(spx.loc["2017"], load_strategy("sma_cross"), commission=0.001).run()
    assert payload["stats"]["# Trades"] == naive.stats["# Trades"]
    assert payload["stats"]["Return [%]"] == pytest.approx(naive.stats["Return [%]"])


def test_cli_backtest_on_a_bad_offset_exits_2_naming_the_file(spx, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    _in_zone(spx.loc["2017"]).to_csv(path)
    lines = path.read_text().splitlines()
    lines[100] = lines[100].replace("-04:00", "+99:00")
    path.write_text("\n".join(lines) + "\n")
    assert main(["backtest", "--data", str(path), "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tradenn: error: {path}: invalid UTC offset '+99:00'")
    assert "at line 101" in err and err.count("\n") == 1
