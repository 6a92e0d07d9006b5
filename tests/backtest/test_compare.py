"""compare(): the leaderboard, and `tradenn compare`."""

from __future__ import annotations

import json
import math

import pytest

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.backtest.compare import COLUMNS, compare
from tradenn.cli import main


@pytest.fixture(scope="module")
def spx():
    return data.load("SPX", end="2004-12-31")


def test_rows_equal_individual_backtests_and_are_ranked_by_sharpe(spx):
    runs = [(name, load_strategy(name), {}) for name in ("sma_cross", "ema_momentum")]
    runs.append(("sma_fast", load_strategy("sma_cross"), {"fast": 5, "slow": 30}))
    board = compare(spx, runs, commission=0.002)
    assert list(board.table.columns) == list(COLUMNS)
    assert board.table["Sharpe"].is_monotonic_decreasing
    for name, cls, params in runs:
        alone = Backtest(spx, cls, commission=0.002).run(**params)
        row = board.table.loc[name]
        assert row["Return [%]"] == alone.stats["Return [%]"]
        assert row["Sharpe"] == alone.stats["Sharpe Ratio"]
        assert row["# Trades"] == alone.stats["# Trades"]
        assert math.isnan(row["OOS R2"])  # rule-based: no forecast
    assert board.results["sma_fast"].params["fast"] == 5


def test_a_failing_strategy_is_reported_and_the_rest_still_run(spx):
    runs = [
        ("good", load_strategy("sma_cross"), {}),
        ("bad", load_strategy("sma_cross"), {"fast": 50, "slow": 10}),
    ]
    board = compare(spx, runs)
    assert list(board.table.index) == ["good"]
    assert "need 0 < fast < slow" in board.errors["bad"]


def test_cli_leaderboard_json_with_a_model_strategy(capsys, tmp_path):
    argv = [
        "compare",
        "sma_cross",
        "lstm_forecast",
        "--end",
        "2004-12-31",
        "--param",
        "lstm_forecast.train_size=600",
        "--param",
        "lstm_forecast.epochs=2",
        "--json",
        "--quiet",
        "--plot",
        str(tmp_path / "board.png"),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    names = [r["strategy"] for r in records]
    assert sorted(names) == ["buy_and_hold", "lstm_forecast", "sma_cross"]
    model = next(r for r in records if r["strategy"] == "lstm_forecast")
    assert set(COLUMNS) <= set(model)
    assert isinstance(model["OOS R2"], float) and 0 <= model["DM p-value"] <= 1
    assert model["Train [s]"] > 0 and "train_size=600" in model["label"]
    assert next(r for r in records if r["strategy"] == "sma_cross")["OOS R2"] is None
    assert (tmp_path / "board.png").stat().st_size > 10_000
    assert "plot:" in captured.err


def test_cli_text_output(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "sma_cross", "buy_and_hold", "--end", "2002-12-31", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("2 strategies on SPX, 1999-01-04 .. 2002-12-31")
    assert "Sharpe" in lines[1] and "OOS R2" in lines[1]
    assert any(line.startswith("sma_cross") for line in lines)
    assert (tmp_path / "compare.png").is_file()


def test_cli_errors(capsys):
    cases = [
        (["compare", "nope", "--no-plot", "--quiet"], 2, "unknown strategy 'nope'"),
        (["compare", "sma_cross", "--param", "fast=3", "--no-plot"], 2, "STRATEGY.name=value"),
        (["compare", "sma_cross", "sma_cross", "--no-plot"], 2, "named twice"),
        (
            ["compare", "sma_cross", "--param", "sma_cross.fast=30", "--no-plot", "--quiet"],
            1,
            "sma_cross: SmaCross: need 0 < fast < slow",
        ),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
