"""`tradenn optimize`: grids from the command line, JSON, heatmap, walk-forward, errors."""

from __future__ import annotations

import json

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.cli import main

SHORT = ["--end", "2004-12-31", "--jobs", "1"]


def test_json_result_equals_running_the_best_by_hand(capsys, tmp_path):
    heatmap = tmp_path / "heat.png"
    argv = ["optimize", "sma_cross", "--grid", "fast=5:15:5", "--grid", "slow=20,40"]
    assert main([*argv, *SHORT, "--json", "--heatmap", str(heatmap)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["trials"] == 6 and len(payload["table"]) == 6
    assert {(row["fast"], row["slow"]) for row in payload["table"]} == {
        (f, s) for f in (5, 10, 15) for s in (20, 40)
    }
    best = payload["best_params"]
    frame = data.load("SPX", end="2004-12-31")
    alone = Backtest(frame, load_strategy("sma_cross"), commission=0.001).run(**best)
    assert payload["best_stats"]["Sharpe Ratio"] == alone.stats["Sharpe Ratio"]
    assert max(row["Sharpe Ratio"] for row in payload["table"]) == alone.stats["Sharpe Ratio"]
    assert 0 <= payload["pbo"] <= 1 and 0 <= payload["deflated_sharpe"] <= 1
    assert heatmap.stat().st_size > 5_000


def test_text_summary_with_a_fixed_parameter(capsys):
    argv = ["optimize", "sma_cross", "--grid", "fast=3:9:3", "--param", "slow=30", *SHORT]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("SmaCross: 3 trials, maximize Sharpe Ratio")
    assert "slow=30" in out and "Deflated Sharpe Ratio" in out and "Backtest Overfitting" in out
    table = out[out.index("\n\n") + 2 :].splitlines()  # after the summary lines
    assert table[0].split()[-2:] == ["#", "Trades"]
    assert all(line.split()[-1].isdigit() for line in table[1:]), table  # 52, not 52.0


def test_walk_forward(capsys):
    argv = ["optimize", "sma_cross", "--grid", "fast=5,10", "--grid", "slow=30,60"]
    assert main([*argv, "--walk-forward", "train=500,test=250", *SHORT, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    windows = payload["windows"]
    assert len(windows) >= 3
    for window in windows:  # out of sample starts after the in-sample window ends
        assert window["OOS Start"] > window["IS End"]
    assert "Sharpe Ratio" in payload["stats"]


def test_usage_errors_exit_2_with_one_line(capsys):
    cases = [
        (["optimize", "sma_cross", *SHORT], "at least one --grid"),
        (["optimize", "sma_cross", "--grid", "fats=1:3:1", *SHORT], "no parameter 'fats'"),
        (["optimize", "sma_cross", "--grid", "fast=5:1:1", *SHORT], "stop >= start"),
        (["optimize", "sma_cross", "--grid", "fast=a:b:c", *SHORT], "takes int values"),
        (
            ["optimize", "sma_cross", "--grid", "fast=1:3:1", "--param", "fast=2", *SHORT],
            "both fixed",
        ),
        (
            ["optimize", "sma_cross", "--grid", "fast=1:3:1", "--walk-forward", "train=9"],
            "expected train=N,test=M",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_huge_grid_is_never_built(capsys):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = main(
        ["optimize", "sma_cross", "--grid", "fast=1:100000000:1", "--grid", "slow=30:40:10",
         "--max-tries", "3", "--jobs", "1"]
    )  # fmt: skip
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KB
    assert code in (0, 2), capsys.readouterr().err
    assert grown < 200_000  # 10^8 values would be gigabytes
    assert main(["optimize", "sma_cross", "--grid", "fast=1:100000000:1"]) == 2
    err = capsys.readouterr().err
    assert "the grid has 100,000,000 combinations; pass max_tries (--max-tries)" in err


def test_a_float_grid_is_evenly_stepped_and_typed():
    from tradenn.backtest.optimize import Steps

    steps = Steps(0.1, 0.1, 5)
    assert list(steps) == [0.1, 0.2, 0.3, 0.4, 0.5] and len(steps) == 5
    assert steps[-1] == 0.5 and steps[1:3] == [0.2, 0.3]
