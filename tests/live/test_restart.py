"""Restart without replay: each bar's transaction stores what a restart needs, so resuming costs
the same whatever the ledger's length and continues exactly as an uninterrupted run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from tradenn.backtest import Backtest, BacktestError, Strategy
from tradenn.backtest.runner import DEFAULT_HISTORY
from tradenn.data.synthetic import gbm
from tradenn.features import sma
from tradenn.live import Ledger, PaperTrader, SimulatedBroker, commands
from tradenn.live.loop import verify

from .support import FakeFeed

COSTS = {"commission": 0.001, "slippage_bps": 2.0}


class Brackets(Strategy):
    """Orders of every kind and state kept between bars: limit entries with brackets, partial
    closes of a trade, a counter and a dict with non-string keys."""

    n = 10

    def init(self):
        self.mean = self.I(sma, self.data.Close, self.n)
        self.calls = 0
        self.seen: dict = {}

    def next(self):
        self.calls += 1
        close = self.data.Close[-1]
        self.seen[self.calls % 7] = (float(close), self.calls)
        if not self.position and not self.orders and close > self.mean[-1]:
            self.buy(size=0.5, limit=close * 0.995, sl=close * 0.95, tp=close * 1.06)
        elif self.trades and self.calls % 9 == 0:
            self.trades[0].close(0.5)
        elif self.calls % 23 == 0 and self.position:
            self.sell(size=0.3, stop=close * 0.98)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return gbm(400, sigma=0.4, seed=3)[["Open", "High", "Low", "Close", "Volume"]]


def _paper(strategy, frame, path, params=None):
    with Ledger(path) as ledger:
        summary = PaperTrader(
            strategy,
            lambda: SimulatedBroker(10_000.0, **COSTS),
            ledger,
            FakeFeed(frame),
            params=params,
        ).run()
        return summary, ledger.rows("orders"), ledger.rows("fills"), ledger.equity()


def test_a_run_restarted_after_every_bar_equals_one_uninterrupted_run(prices, tmp_path):
    frame = prices.iloc[:140]
    whole = _paper(Brackets, frame, tmp_path / "whole.db")
    path = tmp_path / "parts.db"
    for end in range(1, len(frame) + 1):
        _paper(Brackets, frame.iloc[:end], path)
    parts = _paper(Brackets, frame, path)
    assert parts[1] == whole[1] and parts[2] == whole[2]
    pd.testing.assert_frame_equal(parts[3], whole[3])
    kinds = {row["type"] for row in whole[1]}
    assert {"limit", "stop", "market"} <= kinds and len(whole[2]) > 10
    result = Backtest(frame, Brackets, cash=10_000.0, **COSTS).run()
    assert whole[3]["equity"].tolist() == result.equity.tolist()


def test_a_restart_reads_only_the_window_and_runs_no_past_bar_again(prices, tmp_path):
    calls = {"init": 0, "next": 0}

    class Counting(Brackets):
        def init(self):
            calls["init"] += 1
            super().init()

        def next(self):
            calls["next"] += 1
            super().next()

    path = tmp_path / "p.db"
    _paper(Counting, prices, path)
    calls.update(init=0, next=0)
    summary, *_ = _paper(Counting, prices, path)
    assert (summary.replayed, summary.processed) == (len(prices), 0)
    assert calls == {"init": 1, "next": 0}  # init() on the window; no bar decided again


def test_a_long_paper_run_keeps_a_window_and_still_equals_the_backtest(tmp_path):
    frame = gbm(DEFAULT_HISTORY + 600, sigma=0.3, seed=5)[
        ["Open", "High", "Low", "Close", "Volume"]
    ]
    for name, params in (("sma_cross", {"fast": 5, "slow": 15}), ("ema_momentum", {})):
        strategy = load_strategy(name)
        _summary, _, fills, equity = _paper(strategy, frame, tmp_path / f"{name}.db", params)
        result = Backtest(frame, strategy, cash=10_000.0, **COSTS).run(**params)
        filled = result.orders[result.orders["Status"] == "filled"]
        assert [f["price"] for f in fills] == filled["FillPrice"].tolist() and len(fills) > 10
        np.testing.assert_allclose(equity["equity"], result.equity, rtol=1e-12)


def test_a_strategy_state_that_cannot_be_saved_restarts_by_replay(prices, tmp_path, caplog):
    class KeepsAnObject(Brackets):
        def init(self):
            super().init()
            self.thing = object()

    frame = prices.iloc[:120]
    whole = _paper(KeepsAnObject, frame, tmp_path / "whole.db")
    path = tmp_path / "parts.db"
    _paper(KeepsAnObject, frame.iloc[:60], path)
    assert "cannot hold" in caplog.text and "replay" in caplog.text
    parts = _paper(KeepsAnObject, frame, path)
    assert parts[1:3] == whole[1:3]


def test_verify_finds_a_ledger_equal_to_its_replay_and_names_the_first_difference(
    prices, tmp_path, capsys
):
    path = tmp_path / "p.db"
    _paper(load_strategy("sma_cross"), prices, path, {"fast": 5, "slow": 15})
    with Ledger(path, readonly=True) as ledger:
        broker = SimulatedBroker(10_000.0, **COSTS)
        assert verify(load_strategy("sma_cross"), broker, ledger) is None
    assert commands.main(["verify", "--ledger", str(path)]) == 0
    assert "equals a replay" in capsys.readouterr().out

    import sqlite3

    db = sqlite3.connect(path)
    db.execute("UPDATE fills SET price = price + 0.01 WHERE id = 3")
    db.commit()
    db.close()
    assert commands.main(["verify", "--ledger", str(path)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out and "fill #3" in out


def test_a_portfolio_strategy_is_refused_by_paper_run_with_exit_2_and_no_ledger(tmp_path, capsys):
    path = tmp_path / "p.db"
    code = commands.main(["run", "equal_weight", "--feed", "replay:SPX", "--ledger", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "is a portfolio strategy" in err[0]
    assert not path.exists()


def test_a_strategy_that_refuses_its_parameters_is_an_error_at_once(prices, tmp_path):
    # issue 19: one error before any bar (it used to warn and process every bar untraded)
    strategy = load_strategy("sma_cross")
    with pytest.raises(BacktestError, match="SmaCross: need 0 < fast < slow"):
        _paper(strategy, prices, tmp_path / "p.db", {"fast": 30, "slow": 20})
