"""What results show in a notebook (``_repr_html_``) and what a report says about its run."""

from __future__ import annotations

import json
import re

import pytest

from strategies.equal_weight import EqualWeight
from strategies.sma_cross import SmaCross
from tradenn import __version__, data
from tradenn.backtest import Backtest, PortfolioBacktest
from tradenn.backtest.compare import compare
from tradenn.backtest.optimize import optimize


@pytest.fixture(scope="module")
def spx():
    return data.load("SPX", start="2012-01-01", end="2014-12-31")


@pytest.fixture(scope="module")
def result(spx):
    return Backtest(spx, SmaCross, commission=0.001, slippage_bps=2.0, margin=0.5).run(
        fast=5, slow=25
    )


def _image(html: str) -> bytes:
    import base64

    found = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert found, "no embedded figure"
    return base64.b64decode(found.group(1))


def test_a_result_describes_its_setup(result):
    setup = result.setup
    assert setup["Data"] == "SPX: 2012-01-03 .. 2014-12-31, 754 daily bars"
    assert setup["Cash"] == "10,000" and setup["Commission"] == "0.1% of traded value"
    assert setup["Slippage"] == "2 bps" and setup["Spread"] == "none"
    assert setup["Fills"] == "market orders at the next bar's open"
    assert setup["Units"] == "whole" and setup["Margin"] == "0.5 (2x)"
    assert setup["tradenn"] == __version__
    on_close = Backtest(result.data, SmaCross, trade_on_close=True, fractional=True).run()
    assert on_close.setup["Fills"] == "market orders at the signal bar's close"
    assert on_close.setup["Units"] == "fractional"


def test_a_result_shows_its_setup_figure_and_stats_in_a_notebook(result):
    html = result._repr_html_()
    assert html.startswith('<div class="tradenn-result">')
    assert "SmaCross(fast=5, slow=25)" in html and "0.5 (2x)" in html
    assert "Sharpe Ratio" in html and "Max. Drawdown [%]" in html
    assert _image(html).startswith(b"\x89PNG")
    assert "http" not in html  # nothing loaded from anywhere


def test_the_report_says_how_the_run_was_set_up(result, tmp_path):
    page = result.report(tmp_path / "r").read_text()
    expected = [
        "SPX: 2012-01-03 .. 2014-12-31, 754 daily bars",
        "2 bps",
        "0.5 (2x)",
        "market orders at the next bar&#x27;s open",
        f"<dd>{__version__}</dd>",
    ]
    for text in expected:
        assert text in page, text
    setup = json.loads((tmp_path / "r" / "setup.json").read_text())
    assert setup["parameters"] == {"fast": 5, "slow": 25} and setup["Margin"] == "0.5 (2x)"


def test_a_portfolio_result_shows_itself_and_writes_a_report(tmp_path):
    frames = {
        name: data.load(name, start="2012-01-01", end="2013-12-31") for name in ("SPX", "MSFT")
    }
    result = PortfolioBacktest(frames, EqualWeight, fractional=True).run()
    assert result.setup["Data"].startswith("SPX, MSFT (aligned): 2012-01-03 .. 2013-12-31")
    html = result._repr_html_()
    assert "EqualWeight(" in html and _image(html).startswith(b"\x89PNG")
    page = result.report(tmp_path / "p").read_text()
    assert "<h2>Assets</h2>" in page and "Turnover (Ann.) [x]" in page


def test_a_sweep_and_a_leaderboard_show_themselves(spx):
    swept = optimize(Backtest(spx, SmaCross), fast=[5, 10], slow=[20, 30])
    html = swept._repr_html_()
    assert "best: " in html and "Deflated Sharpe Ratio" in html
    assert html.count("<tr>") >= 4 + 1  # the four combinations and the best run's rows
    board = compare(spx, [("sma", SmaCross, {}), ("hold", SmaCross, {"fast": 2, "slow": 3})])
    html = board._repr_html_()
    assert "sma" in html and "hold" in html and _image(html).startswith(b"\x89PNG")


# -------------------------------------------------------------- the interactive chart, wired in


def test_plot_interactive_returns_and_writes_the_page(result, tmp_path):
    pytest.importorskip("bokeh", reason="the interactive chart needs tradenn[plot]")
    page = result.plot(tmp_path / "c.html", interactive=True)
    assert page == (tmp_path / "c.html").read_text()
    assert "Bokeh" in page and "SmaCross(fast=5, slow=25)" in page


def test_the_cli_writes_an_interactive_chart_and_the_report_shows_it(tmp_path, capsys):
    pytest.importorskip("bokeh", reason="the interactive chart needs tradenn[plot]")
    from tradenn.cli import main

    chart, folder = tmp_path / "chart.html", tmp_path / "report"
    argv = ["backtest", "sma_cross", "--start", "2015-01-01", "--no-plot"]
    assert main([*argv, "--html", str(chart), "--report", str(folder)]) == 0
    assert f"chart: {chart}" in capsys.readouterr().out
    assert chart.stat().st_size > 100_000
    page = (folder / "index.html").read_text()
    assert '<iframe class="chart" src="chart.html"' in page
    assert (folder / "chart.html").read_text().count("<script") >= 2


def test_without_bokeh_the_interactive_chart_is_one_line_before_the_run(
    tmp_path, capsys, monkeypatch
):
    import sys

    from tradenn.cli import main

    monkeypatch.setitem(sys.modules, "bokeh", None)  # as if not installed
    code = main(["backtest", "sma_cross", "--no-plot", "--html", str(tmp_path / "c.html")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert (
        err.strip() == "tradenn: error: interactive charts need bokeh: pip install 'tradenn[plot]'"
    )
    page = Backtest(data.load("SPX").iloc[:300], SmaCross).run().report(tmp_path / "r")
    assert not (tmp_path / "r" / "chart.html").exists() and "<iframe" not in page.read_text()
