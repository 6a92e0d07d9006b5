"""Parameter sweeps and walk-forward optimization, checked against runs made by hand."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest, BacktestError, Strategy
from tradenn.backtest.optimize import KEY_STATS, optimize, walk_forward_optimize
from tradenn.backtest.overfitting import probability_of_backtest_overfitting
from tradenn.data import load


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return load("SPX").iloc[:400]


@pytest.fixture(scope="module")
def backtest(spx) -> Backtest:
    return Backtest(spx, SmaCross, commission=0.001)


@pytest.fixture(scope="module")
def sweep(backtest):
    return optimize(backtest, fast=[5, 10, 15], slow=[20, 40], jobs=1)


def _returns(equity: pd.Series) -> np.ndarray:
    values = equity.to_numpy()
    return values[1:] / values[:-1] - 1


def test_every_row_equals_a_run_by_hand(backtest, sweep):
    assert len(sweep.table) == 6
    assert list(sweep.table.columns) == [
        "fast",
        "slow",
        "Sharpe Ratio",  # the metric first, then the other key statistics
        "Return [%]",
        "Max. Drawdown [%]",
        "# Trades",
        "Error",
    ]
    for k, row in sweep.table.iterrows():
        result = backtest.run(fast=int(row["fast"]), slow=int(row["slow"]))
        for key in KEY_STATS:
            assert row[key] == pytest.approx(float(result.stats[key]), nan_ok=True)
        np.testing.assert_allclose(sweep.returns[:, k], _returns(result.equity), rtol=1e-12)
    assert sweep.table["Error"].isna().all()
    assert sweep.trials == 6 and sweep.metric == "Sharpe Ratio"


def test_best_is_the_row_with_the_highest_metric(backtest, sweep):
    top = sweep.table.loc[sweep.table["Sharpe Ratio"].idxmax()]
    assert sweep.best_params == {"fast": top["fast"], "slow": top["slow"]}
    by_hand = backtest.run(**sweep.best_params).stats
    assert sweep.best_stats["Sharpe Ratio"] == by_hand["Sharpe Ratio"]
    assert sweep.best.params == sweep.best_params


def test_overfitting_guards_come_from_the_trials(sweep):
    assert 0.0 <= sweep.deflated_sharpe <= 1.0
    blocks = probability_of_backtest_overfitting(sweep.returns, n_blocks=16)
    assert sweep.pbo == blocks.pbo
    np.testing.assert_array_equal(sweep.pbo_logits, blocks.logits)


def test_constraint_filters_combinations(backtest):
    found = optimize(
        backtest,
        fast=[5, 10, 20, 30],
        slow=[10, 20, 30],
        constraint=lambda p: p["fast"] < p["slow"],
    )
    pairs = set(zip(found.table["fast"], found.table["slow"], strict=True))
    assert pairs == {(5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (20, 30)}


def test_rejected_combinations_are_recorded_not_fatal(backtest):
    found = optimize(backtest, fast=[10, 30], slow=[20], jobs=1)  # fast=30 >= slow=20 fails
    failed = found.table[found.table["fast"] == 30].iloc[0]
    assert math.isnan(failed["Sharpe Ratio"])
    assert "need 0 < fast < slow" in failed["Error"]
    assert found.trials == 1 and found.best_params["fast"] == 10
    assert found.returns.shape[1] == 1


def test_counts_in_the_table_are_integers_and_missing_where_a_combination_failed(backtest):
    found = optimize(backtest, fast=[5, 10, 30], slow=[20], jobs=1)  # fast=30 fails
    trades = found.table["# Trades"]
    assert trades.dtype == "Int64"  # not float64: 175, not 175.0
    assert trades.isna().tolist() == [False, False, True]
    for row in found.table.iloc[:2].itertuples():
        by_hand = backtest.run(fast=row.fast, slow=row.slow).stats["# Trades"]
        assert row[found.table.columns.get_loc("# Trades") + 1] == by_hand
    lines = found.summary().splitlines()
    header = next(k for k, line in enumerate(lines) if line.lstrip().startswith("fast"))
    shown = [line.split()[-1] for line in lines[header + 1 :]]  # the ranked, working rows
    assert sorted(shown) == sorted(str(n) for n in trades.dropna())
    assert all(re.fullmatch(r"\d+", cell) for cell in shown), shown
    rows = found.to_dict()["table"]
    assert [row["# Trades"] for row in rows] == [*map(int, trades.iloc[:2]), None]
    assert all(type(row["# Trades"]) is int for row in rows[:2])


def test_a_count_as_the_metric_is_an_integer_column_with_a_heatmap(backtest, tmp_path):
    found = optimize(backtest, maximize="# Trades", fast=[5, 10], slow=[20, 30], jobs=1)
    assert found.table["# Trades"].dtype == "Int64"
    found.heatmap("fast", "slow", tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 0


def test_all_combinations_failing_is_a_clear_error(backtest):
    with pytest.raises(BacktestError, match=r"all 2 combinations failed; the first: .*fast < slow"):
        optimize(backtest, fast=[30, 40], slow=[20], jobs=1)


def test_random_method_is_seeded_and_within_the_grid(backtest):
    grid = {"fast": list(range(2, 20, 2)), "slow": [25, 30, 35, 40, 50]}
    first = optimize(backtest, method="random", max_tries=5, random_state=7, jobs=1, **grid)
    again = optimize(backtest, method="random", max_tries=5, random_state=7, jobs=1, **grid)
    pd.testing.assert_frame_equal(first.table, again.table)
    pairs = list(zip(first.table["fast"], first.table["slow"], strict=True))
    assert len(set(pairs)) == 5
    assert all(f in grid["fast"] and s in grid["slow"] for f, s in pairs)
    other = optimize(backtest, method="random", max_tries=5, random_state=8, jobs=1, **grid)
    assert set(zip(other.table["fast"], other.table["slow"], strict=True)) != set(pairs)


def test_max_tries_caps_a_grid_and_keeps_grid_order(backtest):
    found = optimize(
        backtest, fast=[4, 6, 8, 10], slow=[20, 30, 40], max_tries=4, random_state=0, jobs=1
    )
    assert len(found.table) == 4
    flat = [
        [4, 6, 8, 10].index(f) * 3 + [20, 30, 40].index(s)
        for f, s in zip(found.table["fast"], found.table["slow"], strict=True)
    ]
    assert flat == sorted(flat) and len(set(flat)) == 4
    half = optimize(backtest, fast=[4, 6, 8, 10], slow=[20, 30, 40], max_tries=0.5, jobs=1)
    assert len(half.table) == 6


def test_callable_metric_and_minimize(backtest):
    def trades(stats):
        return stats["# Trades"]

    found = optimize(backtest, maximize=trades, minimize=True, fast=[5, 10], slow=[20, 40])
    assert found.metric == "trades" and not found.maximize
    counts = {
        (f, s): backtest.run(fast=f, slow=s).stats["# Trades"] for f in (5, 10) for s in (20, 40)
    }
    fewest = min(counts, key=counts.get)
    assert found.table["trades"].min() == counts[fewest]
    assert found.best_stats["# Trades"] == counts[fewest]


def test_local_processes_give_the_same_table_as_serial(backtest, sweep):
    parallel = optimize(backtest, fast=[5, 10, 15], slow=[20, 40], jobs=2)
    pd.testing.assert_frame_equal(parallel.table, sweep.table)
    np.testing.assert_array_equal(parallel.returns, sweep.returns)
    assert parallel.best_params == sweep.best_params


def test_heatmap_returns_a_figure_and_saves(sweep, tmp_path):
    figure = sweep.heatmap("fast", "slow", tmp_path / "heat.png")
    assert isinstance(figure, Figure)
    image = figure.axes[0].images[0].get_array()
    assert image.shape == (2, 3)  # rows = slow values, columns = fast values
    expected = sweep.table.set_index(["slow", "fast"])["Sharpe Ratio"]
    assert image[1, 2] == pytest.approx(expected[(40, 15)])
    assert (tmp_path / "heat.png").stat().st_size > 0
    with pytest.raises(ValueError, match="not a swept parameter"):
        sweep.heatmap("fast", "nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fastest": [1, 2]}, "SmaCross has no parameter 'fastest'"),
        ({"fast": []}, "the range of 'fast' is empty"),
        ({"fast": 5}, "must be an iterable of values"),
        ({}, "give at least one parameter range"),
        ({"fast": [5], "method": "bayes"}, "method must be 'grid' or 'random'"),
        ({"fast": [5], "maximize": "Sharp"}, "maximize must be a numeric statistic"),
        ({"fast": [5], "method": "random"}, "needs max_tries"),
        ({"fast": [5], "max_tries": 0}, "max_tries must be >= 1"),
        ({"fast": [5], "constraint": lambda p: False}, "no combination of the 1 satisfies"),
    ],
)
def test_bad_arguments_raise_clear_errors(backtest, kwargs, message):
    with pytest.raises(BacktestError, match=message):
        optimize(backtest, jobs=1, **kwargs)


# ------------------------------------------------------------------ walk-forward

WFO = {"train": 150, "test": 80, "fast": [5, 10], "slow": [20, 30], "jobs": 1}


@pytest.fixture(scope="module")
def wfo(backtest):
    return walk_forward_optimize(backtest, **WFO)


def test_wfo_windows_tile_the_data_without_overlap(spx, wfo):
    index = spx.index
    windows = wfo.windows
    starts = [index.get_loc(t) for t in windows["OOS Start"]]
    ends = [index.get_loc(t) for t in windows["OOS End"]]
    assert starts == [150, 230, 310, 390]
    assert ends == [229, 309, 389, 399]
    for k, start in enumerate(starts):
        assert index.get_loc(windows["IS End"].iloc[k]) == start - 1  # IS ends before OOS
        assert index.get_loc(windows["IS Start"].iloc[k]) == start - 150
    assert wfo.returns.index[0] == index[150] and len(wfo.returns) == 250


def test_wfo_params_are_chosen_on_in_sample_data_only(spx, backtest, wfo):
    for _, row in wfo.windows.iterrows():
        lo, hi = spx.index.get_loc(row["IS Start"]), spx.index.get_loc(row["IS End"]) + 1
        alone = Backtest(spx.iloc[lo:hi], SmaCross, commission=0.001, bars_per_year=252)
        chosen = optimize(alone, fast=[5, 10], slow=[20, 30], jobs=1)
        assert (row["fast"], row["slow"]) == (
            chosen.best_params["fast"],
            chosen.best_params["slow"],
        )
        assert row["IS Sharpe Ratio"] == pytest.approx(chosen.best_stats["Sharpe Ratio"])


def test_wfo_is_unchanged_by_later_data(spx, wfo):
    # Change every bar from 310 on: windows whose out-of-sample part ends before stay the same.
    changed = spx.copy()
    changed.iloc[310:, :4] *= np.linspace(1.0, 1.5, len(spx) - 310)[:, None]
    other = walk_forward_optimize(Backtest(changed, SmaCross, commission=0.001), **WFO)
    pd.testing.assert_frame_equal(other.windows.iloc[:2], wfo.windows.iloc[:2])
    pd.testing.assert_series_equal(other.returns.iloc[:160], wfo.returns.iloc[:160])


def test_wfo_out_of_sample_starts_flat_and_compounds(backtest, wfo):
    for start in wfo.windows["OOS Start"]:
        assert wfo.returns[start] == 0.0  # no position carried in: decided inside the window
    expected = backtest.cash * np.cumprod(1 + wfo.returns.to_numpy())
    np.testing.assert_allclose(wfo.equity.to_numpy()[1:], expected, rtol=1e-12)
    assert wfo.stats["Return [%]"] == pytest.approx(100 * (expected[-1] / backtest.cash - 1))


class AlwaysLong(Strategy):
    """Vectorized: hold ``level`` of equity long from the first bar."""

    level = 1.0

    def positions(self, data):
        return np.full(len(data), self.level)


def test_wfo_vectorized_strategy_only_trades_inside_its_window(spx):
    found = walk_forward_optimize(
        Backtest(spx, AlwaysLong), train=200, test=100, level=[0.5, 1.0], jobs=1
    )
    first_window = found.returns.iloc[:100]
    assert first_window.iloc[0] == 0.0 and (first_window.iloc[2:] != 0).all()
    assert found.stats["# Trades"] == 2  # one per window, closed at the window end


def test_wfo_windows_show_a_count_metric_as_integers(spx):
    found = walk_forward_optimize(
        Backtest(spx, AlwaysLong), train=200, test=100, level=[0.5, 1.0], jobs=1,
        maximize="# Trades",
    )  # fmt: skip
    assert found.windows["IS # Trades"].dtype == found.windows["OOS # Trades"].dtype == "Int64"
    assert found.windows["OOS # Trades"].tolist() == [1, 1]


def test_wfo_rejects_bad_windows(backtest):
    with pytest.raises(BacktestError, match="train must lie in"):
        walk_forward_optimize(backtest, train=400, test=10, fast=[5])
    with pytest.raises(BacktestError, match="test must be a positive integer"):
        walk_forward_optimize(backtest, train=100, test=0, fast=[5])


CALLS: list[int] = []  # data lengths positions() was called with


class CountedPositions(Strategy):
    """Long when the close is above its ``window``-bar mean; peeks ahead when ``peek``."""

    window = 10
    peek = 0

    def positions(self, data):
        CALLS.append(len(data))
        close = data["Close"]
        mean = close.rolling(self.window).mean().shift(-self.peek)
        return (close > mean).astype(float)


def test_a_sweep_proves_a_sample_of_its_combinations_causal_and_runs_the_rest_once(spx):
    from tradenn.backtest.optimize import CHECKED_TRIALS

    CALLS.clear()
    windows = list(range(5, 45))
    sweep = optimize(Backtest(spx, CountedPositions), window=windows, jobs=1)
    n = len(spx)
    # the sample, and the best re-run at the end, are checked on two prefixes
    assert CALLS.count(n // 3) == CALLS.count(2 * n // 3) == CHECKED_TRIALS + 1
    # every combination once on the whole data, the best once more
    assert CALLS.count(n) == len(windows) + 1
    # the rows are exactly what single (checked) runs give
    for row in sweep.table.itertuples(index=False):
        if row.window in (5, 23, 44):
            alone = Backtest(spx, CountedPositions).run(window=row.window)
            assert row[1] == alone.stats["Sharpe Ratio"]


def test_a_sweep_catches_look_ahead_in_its_checked_combinations(spx):
    from tradenn.backtest.series import LookAheadError

    with pytest.raises(LookAheadError, match="uses future data"):
        optimize(Backtest(spx, CountedPositions), window=[10], peek=[0, 1, 2], jobs=1)


def test_evaluate_gives_the_stats_and_equity_of_run(spx):
    backtest = Backtest(spx, SmaCross, commission=0.001)
    stats, equity = backtest.evaluate(fast=5, slow=20)
    result = backtest.run(fast=5, slow=20)
    assert stats.equals(result.stats)
    assert np.array_equal(equity, result.equity.to_numpy())
