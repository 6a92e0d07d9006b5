"""`tradenn backtest` and `tradenn strategies`."""

from __future__ import annotations

import json
import re

from tradenn.cli import main


def test_default_backtest_prints_stats_and_writes_a_plot(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", "--end", "2003-12-31"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SmaCross(fast=10, slow=20) on SPX, 1999-01-04 .. 2003-12-31")
    assert "Sharpe Ratio" in out and "# Trades" in out and "plot: backtest.png" in out
    assert (tmp_path / "backtest.png").stat().st_size > 10_000


def test_json_output_params_and_report(capsys, tmp_path):
    params = ["--param", "fast=5", "--param", "slow=40"]
    output = ["--json", "--no-plot", "--report", str(tmp_path / "r")]
    code = main(["backtest", "ema_momentum", "--data", "MSFT", *params, *output])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["params"] == {"fast": 5, "slow": 40}
    assert payload["strategy"] == "EmaMomentum" and payload["data"] == "MSFT"
    assert isinstance(payload["stats"]["Return [%]"], float)
    assert (tmp_path / "r" / "index.html").is_file()


def test_durations_read_the_same_in_the_terminal_and_the_html_report(capsys, tmp_path):
    argv = ["backtest", "--end", "2004-12-31", "--no-plot", "--report", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    keys = [
        "Duration",
        "Max. Drawdown Duration",
        "Avg. Drawdown Duration",
        "Max. Trade Duration",
        "Avg. Trade Duration",
    ]
    for key in keys:
        terminal = re.search(rf"^{re.escape(key)} +(.+)$", out, flags=re.MULTILINE)[1]
        report = re.search(rf"<th>{re.escape(key)}</th><td[^>]*>([^<]+)</td>", page)[1]
        assert terminal == report, key
    assert re.search(r"^Duration +2,188 days$", out, flags=re.MULTILINE)  # not "2,188.0 days"
    average = re.search(r"^Avg. Drawdown Duration +(.+)$", out, flags=re.MULTILINE)[1]
    assert average == "164 days 03:41:32"  # not "164.2 days"


def test_bad_input_is_one_line_and_exit_2(capsys):
    cases = [
        (["backtest", "nope", "--no-plot"], "unknown strategy 'nope'"),
        (["backtest", "--param", "fats=3", "--no-plot"], "SmaCross has no parameter 'fats'"),
        (["backtest", "--param", "fast=abc", "--no-plot"], "fast takes an int, got 'abc'"),
        (["backtest", "--param", "fast=30", "--no-plot"], "need 0 < fast < slow"),
        (["backtest", "--commission", "-1", "--no-plot"], "commission must be in [0, 1)"),
        (["backtest", "--data", "NOPE", "--no-plot"], "NOPE: unknown data source"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("tradenn: error: ") and message in err and err.count("\n") == 1


def test_strategies_lists_names_parameters_and_docs(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    assert "sma_cross (SmaCross): Always in the market" in out
    assert "parameters: fast=10, slow=20" in out


def test_a_model_strategy_prints_its_out_of_sample_forecast_quality(capsys):
    argv = ["backtest", "linreg_forecast", "--end", "2006-12-31", "--no-plot"]
    assert main([*argv, "--param", "train_size=500"]) == 0
    out = capsys.readouterr().out
    assert "Forecast (walk-forward, out of sample)" in out
    assert "OOS R2" in out and "DM p-value" in out and "Refits" in out
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["diagnostics"]["Refits"] == 4  # ~1980 samples after warm-up: 1000 + 4 x 250


def test_a_portfolio_from_a_comma_list_of_sources(capsys, tmp_path):
    argv = ["backtest", "equal_weight", "--data", "SPX,MSFT", "--start", "2010-01-01"]
    assert main([*argv, "--end", "2011-12-31", "--fractional", "--json", "--no-plot"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["strategy"] == "EqualWeight" and payload["stats"]["# Assets"] == 2
    # a portfolio gets a report too (it was refused: the issue asked for one)
    assert main([*argv, "--end", "2011-12-31", "--report", str(tmp_path / "r"), "--no-plot"]) == 0
    capsys.readouterr()
    page = (tmp_path / "r" / "index.html").read_text()
    assert "<h2>Assets</h2>" in page and "MSFT" in page and "SPX, MSFT (aligned)" in page
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"weights.csv", "asset_stats.csv", "setup.json", "stats.json", "trades.csv"} <= files
    assert main(["backtest", "equal_weight", "--data", "SPX,,MSFT", "--no-plot"]) == 2
