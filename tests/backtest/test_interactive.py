"""interactive_chart on real backtests: a self-contained page, linked panels, every trade, size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.models import GlyphRenderer, HoverTool, Legend, Title

from strategies import load_strategy
from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest, PortfolioBacktest, Strategy
from tradenn.backtest.interactive import (
    MAX_CANDLE_BARS,
    MAX_POINTS,
    _layout,
    interactive_chart,
)
from tradenn.backtest.plotting import extremes
from tradenn.data import gbm, load
from tradenn.errors import TradennError
from tradenn.features import rsi, sma

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = {"Long entry", "Short entry"}
OUTCOMES = {"Winning trade", "Losing trade"}


def targets(rule):
    """A ``positions()`` strategy holding ``rule(bar numbers)`` (target exposure per bar)."""

    class Targets(Strategy):
        def positions(self, data):
            return rule(np.arange(len(data)))

    return Targets


def panels(layout) -> dict:
    """The layout's figures by name, top to bottom."""
    return {fig.name: fig for fig, _, _ in sorted(layout.children, key=lambda c: c[1])}


def renderers(fig) -> dict[str, GlyphRenderer]:
    return {r.name: r for r in fig.renderers if r.name}


def legend_labels(fig) -> set[str]:
    return {item.label.value for legend in fig.select(type=Legend) for item in legend.items}


@pytest.fixture(scope="module")
def spx_run():
    return Backtest("SPX", SmaCross, cash=10_000, commission=0.001).run()


@pytest.fixture(scope="module")
def spx_layout(spx_run):
    return _layout(spx_run)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The page of a 500-bar SMA cross run, written to a file: (folder, path, returned HTML)."""
    folder = tmp_path_factory.mktemp("chart")
    result = Backtest(load("SPX").iloc[:500], SmaCross).run()
    return folder, folder / "chart.html", interactive_chart(result, folder / "chart.html")


# ------------------------------------------------------------------------------ the page


def test_the_page_loads_nothing_from_the_network(written):
    _, _, html = written
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=", html, re.IGNORECASE)
    assert "Bokeh" in html and len(html) > 1_000_000  # the library itself is inline


def test_the_page_is_written_to_path_and_returned(written):
    folder, path, html = written
    assert path.read_text(encoding="utf-8") == html
    assert "<title>SmaCross(fast=10, slow=20)</title>" in html
    assert [p.name for p in folder.iterdir()] == ["chart.html"]  # no temporary file left


def test_the_title_names_the_strategy_and_its_return_sharpe_drawdown_and_trades(
    spx_run, spx_layout
):
    stats = spx_run.stats
    titles = [t.text for t in panels(spx_layout)["price"].select(type=Title)]
    assert "SmaCross(fast=10, slow=20)" in titles
    (summary,) = [t for t in titles if t.startswith("Return")]
    assert f"Return {stats['Return [%]']:+.1f}%" in summary
    assert f"Sharpe {stats['Sharpe Ratio']:.2f}" in summary
    assert f"Max. Drawdown {stats['Max. Drawdown [%]']:.1f}%" in summary
    assert f"{len(spx_run.trades)} trades" in summary
    assert "5,031 daily bars" in summary


# ------------------------------------------------------------------------------ the panels


def test_price_equity_drawdown_and_position_panels_share_one_time_axis(spx_layout):
    figures = panels(spx_layout)
    assert list(figures) == ["price", "equity", "drawdown", "position"]
    assert len({id(fig.x_range) for fig in figures.values()}) == 1
    assert [fig.xaxis[0].visible for fig in figures.values()] == [False, False, False, True]
    for fig in figures.values():
        (wheel,) = [t for t in fig.tools if type(t).__name__ == "WheelZoomTool"]
        assert wheel.dimensions == "width" and fig.toolbar.active_scroll is wheel


def test_each_panel_refits_its_value_axis_to_the_bars_in_view(spx_run, spx_layout):
    data = spx_run.data
    price = panels(spx_layout)["price"]
    assert price.y_range.start <= data["Low"].min() and price.y_range.end >= data["High"].max()
    for fig in panels(spx_layout).values():
        callbacks = fig.x_range.js_property_callbacks["change:end"]
        assert any(c.args.get("y_range") is fig.y_range for c in callbacks), fig.name


def test_equity_is_drawn_against_buy_and_hold_from_the_same_start_with_values_on_hover(
    spx_run, spx_layout
):
    equity_panel = panels(spx_layout)["equity"]
    lines = renderers(equity_panel)
    equity, hold = lines["Equity"].data_source.data, lines["Buy & hold"].data_source.data
    assert hold["y"][0] == equity["y"][0] == spx_run.equity.iloc[0]
    close = spx_run.data["Close"]
    assert hold["y"][-1] == pytest.approx(close.iloc[-1] / close.iloc[0] * 10_000)
    (hover,) = equity_panel.select(type=HoverTool)
    assert set(hover.renderers) == {lines["Equity"], lines["Buy & hold"]}
    assert "@y" in str(hover.tooltips) and "@x{%F}" in str(hover.tooltips)


def test_drawdown_is_in_percent_below_zero(spx_run, spx_layout):
    (area, _) = panels(spx_layout)["drawdown"].renderers
    worst = area.data_source.data["y"].min()
    assert worst == pytest.approx(spx_run.stats["Max. Drawdown [%]"])


def test_indicators_on_the_price_scale_overlay_it_and_others_get_their_own_panel():
    class Mixed(Strategy):
        def init(self):
            self.slow = self.I(sma, self.data.Close, 50)
            self.strength = self.I(rsi, self.data.Close, 14)

    result = Backtest(load("SPX").iloc[:800], Mixed).run()
    figures = panels(_layout(result))
    assert list(figures) == ["price", "indicator: rsi(Close, 14)", "equity", "drawdown", "position"]
    average = renderers(figures["price"])["sma(Close, 50)"].data_source.data["y"]
    assert np.isnan(average[:49]).all() and np.isfinite(average[49:]).all()  # warm-up kept
    assert "rsi(Close, 14)" in renderers(figures["indicator: rsi(Close, 14)"])


# ------------------------------------------------------------------------------ the trades


def test_trade_hover_shows_entry_and_exit_time_and_price_size_pnl_and_return(spx_layout):
    price = panels(spx_layout)["price"]
    (hover,) = [h for h in price.select(type=HoverTool) if renderers(price)["Exit"] in h.renderers]
    fields = dict(hover.tooltips)
    assert "@EntryTime{%F}" in fields["Entry"] and "@EntryPrice" in fields["Entry"]
    assert "@ExitTime{%F}" in fields["Exit"] and "@ExitPrice" in fields["Exit"]
    assert "@Size" in fields["Size"] and "@PnL" in fields["PnL"]
    assert fields["Return"] == "@ReturnPct{+0.00%}"  # a fraction shown as a percentage
    assert hover.formatters == {"@EntryTime": "datetime", "@ExitTime": "datetime"}


def test_every_trade_has_one_entry_marker_one_exit_marker_and_one_segment(spx_run, spx_layout):
    trades = spx_run.trades
    drawn = renderers(panels(spx_layout)["price"])
    entries = sum(len(drawn[name].view.filter.indices) for name in ENTRIES)
    segments = sum(
        len(drawn[name].view.filter.indices) for name in ("Winning trade", "Losing trade")
    )
    assert entries == segments == len(trades) == 260
    exits = drawn["Exit"].data_source.data
    np.testing.assert_array_equal(exits["ExitPrice"], trades["ExitPrice"].to_numpy())
    winners = drawn["Winning trade"].view.filter.indices
    np.testing.assert_array_equal(winners, np.flatnonzero(trades["PnL"].to_numpy() > 0))


@pytest.mark.parametrize(("side", "present"), [(1.0, "Long entry"), (-1.0, "Short entry")])
def test_only_the_side_traded_is_drawn_and_in_the_legend(side, present):
    holding = targets(lambda bar: np.where(bar % 40 < 20, side, 0.0))
    result = Backtest(load("SPX").iloc[:400], holding).run()
    price = panels(_layout(result))["price"]
    assert set(renderers(price)) & ENTRIES == {present}
    assert legend_labels(price) & ENTRIES == {present}


def test_a_run_without_trades_draws_every_panel_and_no_trade():
    result = Backtest(load("SPX").iloc[:300], targets(np.zeros_like)).run()
    assert len(result.trades) == 0
    figures = panels(_layout(result, title="Idle"))
    assert list(figures) == ["price", "equity", "drawdown", "position"]
    assert not {"Exit", *OUTCOMES, *ENTRIES} & set(renderers(figures["price"]))
    titles = [t.text for t in figures["price"].select(type=Title)]
    assert "Idle" in titles and any("0 trades" in t for t in titles)


# ------------------------------------------------------------------------------ size and time


def test_candlesticks_show_once_at_most_max_points_bars_are_in_view(spx_layout):
    drawn = renderers(panels(spx_layout)["price"])  # 5,031 bars: just over MAX_POINTS
    assert not drawn["candles"].visible and not drawn["wicks"].visible and drawn["close"].visible
    x_range = panels(spx_layout)["price"].x_range
    (toggle,) = [c for c in x_range.js_property_callbacks["change:end"] if "candles" in c.args]
    assert set(toggle.args["candles"]) == {drawn["candles"], drawn["wicks"]}
    assert toggle.args["close"] is drawn["close"] and toggle.args["most"] == MAX_POINTS


def test_a_short_run_is_all_candlesticks():
    result = Backtest(load("SPX").iloc[:400], targets(lambda bar: np.sign(np.sin(bar / 9)))).run()
    drawn = renderers(panels(_layout(result))["price"])
    assert drawn["candles"].visible and drawn["wicks"].visible and "close" not in drawn
    assert len(drawn["candles"].data_source.data["x"]) == 400


@pytest.fixture(scope="module")
def long_run():
    """The SMA 10/20 reversal on 200,000 one-minute bars (about 10,900 trades)."""
    bars = gbm(200_000, freq="min", bars_per_year=98_280, seed=0)
    above = np.sign(np.nan_to_num((sma(bars["Close"], 10) - sma(bars["Close"], 20)).to_numpy()))
    return Backtest(bars, targets(lambda bar: above[: len(bar)]), fractional=True).run()


def test_a_200000_bar_run_is_a_few_megabytes(long_run):
    megabytes = len(interactive_chart(long_run).encode()) / 1e6
    assert megabytes < 4.0


def test_a_200000_bar_run_keeps_every_trade_and_at_most_max_points_per_line(long_run):
    assert len(long_run.data) > MAX_CANDLE_BARS and len(long_run.trades) > 10_000
    figures = panels(_layout(long_run))
    drawn = renderers(figures["price"])
    assert "candles" not in drawn
    assert len(drawn["Exit"].data_source.data["ExitPrice"]) == len(long_run.trades)
    for fig in figures.values():
        for renderer in fig.renderers:
            if "x" in renderer.data_source.data:
                assert len(renderer.data_source.data["x"]) <= MAX_POINTS + 2, fig.name


def test_thinning_keeps_the_first_and_last_bar_and_every_spike():
    values = np.zeros(100_000)
    values[[12_345, 67_890]] = [5.0, -3.0]
    values[:1_000] = np.nan  # a warm-up longer than a bucket stays a gap
    keep = extremes(values)
    assert len(keep) <= MAX_POINTS + 2 and np.all(np.diff(keep) > 0)
    assert {0, 12_345, 67_890, 99_999} <= set(keep.tolist())
    assert np.isnan(values[keep[keep < 1_000]]).all()
    np.testing.assert_array_equal(extremes(values[:MAX_POINTS]), np.arange(MAX_POINTS))


def test_tz_aware_bars_are_drawn_at_their_wall_clock_times():
    naive = load("SPX").iloc[:300]
    aware = naive.tz_localize("America/New_York")
    drawn = [
        renderers(panels(_layout(Backtest(d, SmaCross).run()))["price"]) for d in (naive, aware)
    ]
    for name, column in (("candles", "x"), ("Exit", "ExitTime")):
        np.testing.assert_array_equal(
            drawn[0][name].data_source.data[column], drawn[1][name].data_source.data[column]
        )
    first = pd.Timestamp(drawn[1]["candles"].data_source.data["x"][0], unit="ms")
    assert first == naive.index[0]


def test_hourly_bars_show_the_time_of_day_and_hour_wide_candles():
    result = Backtest(load("EURUSD_1H").iloc[:2_000], SmaCross).run()
    figures = panels(_layout(result))
    (hover,) = figures["equity"].select(type=HoverTool)
    assert "@x{%F %H:%M}" in str(hover.tooltips)
    candles = renderers(figures["price"])["candles"].glyph
    assert candles.width == pytest.approx(0.7 * 3_600_000)


def test_a_portfolio_is_drawn_against_its_equal_weight_buy_and_hold_with_its_weights():
    result = PortfolioBacktest(
        {"SPX": load("SPX").iloc[:600], "NASDAQ": load("NASDAQ").iloc[:600]},
        load_strategy("equal_weight"),
    ).run()
    figures = panels(_layout(result))
    assert list(figures) == ["equity", "drawdown", "weights"]
    assert len({id(fig.x_range) for fig in figures.values()}) == 1
    hold = renderers(figures["equity"])["Equal-weight buy & hold"].data_source.data["y"]
    closes = result.data["Close"]
    expected = (closes.iloc[-1] / closes.iloc[0]).mean() * result.equity.iloc[0]
    assert hold[0] == result.equity.iloc[0] and hold[-1] == pytest.approx(expected)
    weights = renderers(figures["weights"])
    np.testing.assert_array_equal(weights["NASDAQ"].data_source.data["y"], result.weights["NASDAQ"])
    assert "SPX" in weights


# ------------------------------------------------------------------------------ bokeh optional


def test_without_bokeh_the_error_says_how_to_install_it(spx_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "bokeh", None)  # `import bokeh` now raises ImportError
    with pytest.raises(TradennError) as error:
        interactive_chart(spx_run)
    assert str(error.value) == "interactive charts need bokeh: pip install 'tradenn[plot]'"


def test_importing_tradenn_does_not_import_bokeh():
    code = (
        "import sys, tradenn, tradenn.backtest, tradenn.backtest.interactive\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'bokeh'))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"
