"""The run loop: a paper run equals the backtest, resumes exactly, refuses other runs."""

from __future__ import annotations

import json
import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

from strategies import load_strategy
from tradenn.backtest import Backtest, Strategy, Trail
from tradenn.data.synthetic import gbm
from tradenn.live import Ledger, LedgerError, PaperTrader, SimulatedBroker, commands

from .support import FakeFeed

COSTS = {"commission": 0.002, "slippage_bps": 3.0}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return gbm(260, sigma=0.35, seed=7)[["Open", "High", "Low", "Close", "Volume"]]


def _paper(strategy, frame, path, *, feed=None, params=None, stop=None, cash=10_000.0):
    with Ledger(path) as ledger:
        trader = PaperTrader(
            strategy,
            lambda: SimulatedBroker(cash, **COSTS),
            ledger,
            feed or FakeFeed(frame),
            params=params,
        )
        summary = trader.run(stop)
        return summary, ledger.rows("orders"), ledger.rows("fills"), ledger.equity()


def _assert_same_as_backtest(strategy, frame, tmp_path, **params):
    result = Backtest(frame, strategy, cash=10_000.0, **COSTS).run(**params)
    summary, orders, fills, equity = _paper(strategy, frame, tmp_path / "p.db", params=params)
    filled = result.orders[result.orders["Status"] == "filled"]
    assert len(fills) == len(filled) > 4
    assert [f["price"] for f in fills] == filled["FillPrice"].tolist()
    assert [f["time"] for f in fills] == [t.isoformat() for t in filled["FillTime"]]
    assert summary.equity == result.stats["Equity Final [$]"]
    assert equity["equity"].tolist() == result.equity.tolist()
    assert [o["status"] for o in orders] == result.orders["Status"].tolist()


def test_an_event_strategy_trades_exactly_as_in_the_backtest(prices, tmp_path):
    _assert_same_as_backtest(load_strategy("sma_cross"), prices, tmp_path, fast=5, slow=15)


def test_a_positions_strategy_trades_exactly_as_in_the_backtest(prices, tmp_path):
    _assert_same_as_backtest(load_strategy("ema_momentum"), prices, tmp_path, fast=5, slow=20)


class CountingStrategy(Strategy):
    """State kept across bars in next(): buys on every 7th call, sells on every 11th."""

    every = 7

    def init(self):
        self.calls = 0
        self.mean = self.I(lambda c: pd.Series(c).rolling(5).mean().to_numpy(), self.data.Close)

    def next(self):
        self.calls += 1
        if self.calls % self.every == 0 and not self.position:
            self.buy(size=0.5)
        elif self.calls % 11 == 0 and self.position:
            self.position.close()


def test_state_a_strategy_keeps_between_bars_survives_as_in_the_backtest(prices, tmp_path):
    _assert_same_as_backtest(CountingStrategy, prices, tmp_path)


def test_a_rejected_order_is_recorded_with_its_reason(prices, tmp_path):
    class TooBig(Strategy):
        def next(self):
            if len(self.data) == 3:
                self.buy(size=1_000_000)

    _, orders, fills, _ = _paper(TooBig, prices, tmp_path / "p.db")
    assert [o["status"] for o in orders] == ["rejected"]
    assert "insufficient buying power" in orders[0]["reason"]
    assert fills == []


def test_a_restart_replays_the_ledger_and_continues_as_one_run(prices, tmp_path):
    strategy = load_strategy("sma_cross")
    params = {"fast": 5, "slow": 15}
    whole = _paper(strategy, prices, tmp_path / "whole.db", params=params)
    path = tmp_path / "parts.db"
    for end in (40, 41, 150):
        first, *_ = _paper(strategy, prices.iloc[:end], path, params=params)
    assert first.processed == 150 - 41 and first.replayed == 41
    last, orders, fills, equity = _paper(strategy, prices, path, params=params)
    assert (last.replayed, last.processed) == (150, len(prices) - 150)
    assert (orders, fills) == (whole[1], whole[2])
    pd.testing.assert_frame_equal(equity, whole[3])
    assert last.equity == whole[0].equity


class Trailing(Strategy):
    """Trailing stops of all three kinds, a stop moved by hand and a canceled limit order."""

    def next(self):
        bar = len(self.data) - 1
        close = self.data.Close[-1]
        if bar % 30 == 10 and not self.position:
            trail = (Trail(atr=2.0, period=10), Trail(pct=0.04), Trail(distance=3.0))[bar % 3]
            (self.buy if bar % 60 == 10 else self.sell)(size=5, trail=trail)
            self.buy(size=1, limit=close * 0.5)  # far below: canceled at the next bar
        elif bar % 30 == 11:
            for order in self.orders:
                order.cancel()
        elif bar % 30 == 13 and self.trades:
            self.trades[-1].tp = close * (1.10 if self.trades[-1].is_long else 0.90)


def test_order_management_and_trailing_stops_trade_as_in_the_backtest_across_restarts(
    prices, tmp_path
):
    _assert_same_as_backtest(Trailing, prices, tmp_path)
    whole = _paper(Trailing, prices, tmp_path / "whole.db")
    path = tmp_path / "parts.db"
    for end in (14, 45, 195):  # restarts while trades trail and orders wait
        _paper(Trailing, prices.iloc[:end], path)
    _, orders, fills, equity = _paper(Trailing, prices, path)
    assert (orders, fills) == (whole[1], whole[2])
    pd.testing.assert_frame_equal(equity, whole[3])
    statuses = {o["status"] for o in orders}
    assert {"filled", "canceled"} <= statuses
    # the ledger keeps each stop where it last was: trailed stops were moved in place
    result = Backtest(prices, Trailing, cash=10_000.0, **COSTS).run()
    assert [o["stop_price"] for o in orders] == [
        None if pd.isna(v) else v for v in result.orders["Stop"]
    ]
    assert [o["tp"] for o in orders] == [None if pd.isna(v) else v for v in result.orders["TP"]]
    assert sum(o["type"] == "stop" and o["status"] == "filled" for o in orders) >= 2


def test_each_bar_is_recorded_once_in_order(prices, tmp_path):
    path = tmp_path / "p.db"
    _paper(CountingStrategy, prices.iloc[:100], path)
    _paper(CountingStrategy, prices, path)
    with Ledger(path) as ledger:
        bars = ledger.bars()
    assert bars.index.equals(prices.index)
    np.testing.assert_array_equal(bars["Close"].to_numpy(), prices["Close"].to_numpy())


def test_a_stop_ends_the_run_after_the_current_bar(prices, tmp_path):
    path = tmp_path / "p.db"
    stop = threading.Event()
    summary, *_ = _paper(CountingStrategy, prices, path, feed=FakeFeed(prices, stop_after=30))
    assert summary.stopped and summary.processed == 30
    with Ledger(path) as ledger:
        assert ledger.counts()["bars"] == 30
    again, *_ = _paper(CountingStrategy, prices, path, stop=stop)
    assert (again.replayed, again.processed, again.stopped) == (30, len(prices) - 30, False)


def test_other_parameters_on_an_existing_ledger_are_refused(prices, tmp_path):
    path = tmp_path / "p.db"
    strategy = load_strategy("sma_cross")
    _paper(strategy, prices.iloc[:50], path, params={"fast": 5, "slow": 15})
    with pytest.raises(LedgerError, match="parameters fast=5, not 6"):
        _paper(strategy, prices, path, params={"fast": 6, "slow": 15})
    with pytest.raises(LedgerError, match="of strategy SmaCross, not CountingStrategy"):
        _paper(CountingStrategy, prices, path)
    with pytest.raises(LedgerError, match=r"settings cash=10000\.0, not 5000\.0"):
        _paper(strategy, prices, path, params={"fast": 5, "slow": 15}, cash=5_000.0)
    with Ledger(path) as ledger:
        assert ledger.counts()["bars"] == 50


def test_a_ledger_that_disagrees_with_the_replay_is_refused(prices, tmp_path):
    path = tmp_path / "p.db"
    strategy = load_strategy("sma_cross")
    _paper(strategy, prices.iloc[:120], path, params={"fast": 5, "slow": 15})
    db = sqlite3.connect(path)
    db.execute("UPDATE equity SET cash = cash + 1 WHERE seq = (SELECT MAX(seq) FROM equity)")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match=r"equity row seq 119 .*: cash .*, the fills leave"):
        _paper(strategy, prices, path, params={"fast": 5, "slow": 15})


def test_a_restart_snapshot_that_disagrees_with_the_last_bar_is_refused(prices, tmp_path):
    path = tmp_path / "p.db"
    strategy = load_strategy("sma_cross")
    _paper(strategy, prices.iloc[:120], path, params={"fast": 5, "slow": 15})
    db = sqlite3.connect(path)
    (snapshot,) = db.execute("SELECT snapshot FROM state").fetchone()
    cash = json.loads(snapshot)["account"]["cash"]
    edited = snapshot.replace(f'"cash":{json.dumps(cash)}', f'"cash":{json.dumps(cash + 1)}', 1)
    assert edited != snapshot
    db.execute("UPDATE state SET snapshot = ?", (edited,))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match=r"resuming gives cash .*its last bar says"):
        _paper(strategy, prices, path, params={"fast": 5, "slow": 15})


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli_feed(monkeypatch, prices):
    monkeypatch.setattr(commands, "_open_feed", lambda spec, speed, interval: FakeFeed(prices))


def test_cli_run_status_and_trades(cli_feed, prices, tmp_path, capsys):
    path = tmp_path / "paper.db"
    log = tmp_path / "run.log"
    argv = ["run", "sma_cross", "--feed", "replay:TEST", "--ledger", str(path)]
    argv += ["--param", "fast=5", "--param", "slow=15", "--quiet", "--log-file", str(log)]
    assert commands.main(argv) == 0
    out, err = capsys.readouterr()
    assert f"{len(prices)} new bars" in out and err == ""
    logged = log.read_text().splitlines()
    assert sum(" close " in line for line in logged) == len(prices)
    assert any("fill #1" in line for line in logged)

    assert commands.main(["status", "--ledger", str(path)]) == 0
    status = capsys.readouterr().out
    with Ledger(path) as ledger:
        last = ledger.last()
        fills = ledger.fills()
    assert f"equity {last['equity']:,.2f}" in status and "open orders:" in status
    assert "SmaCross (fast=5, slow=15) on replay:TEST" in status

    assert commands.main(["trades", "--ledger", str(path)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split(",")[:4] == ["id", "order_id", "time", "side"]
    assert len(printed.splitlines()) == len(fills) + 1


def test_cli_errors_are_one_line_with_exit_code_2(cli_feed, tmp_path, capsys):
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database\n")
    run = ["run", "sma_cross", "--feed", "replay:TEST", "--quiet", "--ledger"]
    assert commands.main([*run, str(foreign)]) == 2
    assert commands.main(["status", "--ledger", str(tmp_path / "none.db")]) == 2
    assert commands.main([*run, str(tmp_path / "a.db"), "--param", "fast=x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("tradenn: error: ") for line in err)
    assert "not an SQLite database" in err[0] and "no such file" in err[1]
    assert foreign.read_text() == "not a database\n"
