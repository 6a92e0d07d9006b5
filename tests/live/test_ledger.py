"""The SQLite ledger: schema, one transaction per bar, refusing foreign files and other runs."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from tradenn.live.ledger import SCHEMA_VERSION, BarRecord, Ledger, LedgerError


def _bar(seq: int, **extra) -> BarRecord:
    time = pd.Timestamp("2024-01-01") + pd.Timedelta(days=seq)
    return BarRecord(
        seq=seq,
        time=time,
        open=100.0 + seq,
        high=101.0 + seq,
        low=99.0 + seq,
        close=100.5 + seq,
        volume=1e6,
        cash=10_000.0 - seq,
        units=float(seq),
        equity=10_000.0 + seq,
        symbol="X",
        **extra,
    )


def _order(order_id: int, status: str, time: str) -> dict:
    return {
        "id": order_id,
        "placed_time": time,
        "side": "buy",
        "size": None,
        "type": "market",
        "limit_price": None,
        "stop_price": None,
        "sl": None,
        "tp": None,
        "tag": None,
        "status": status,
        "fill_time": None,
        "fill_price": None,
        "reason": "",
    }


def test_new_ledger_has_schema_version_and_runs_in_wal_mode(tmp_path):
    path = tmp_path / "paper.db"
    with Ledger(path):
        pass
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_bar_with_its_orders_and_equity_is_recorded_and_read_back(tmp_path):
    with Ledger(tmp_path / "paper.db") as ledger:
        ledger.bind("S", {"n": 3}, {"cash": 1.0}, "replay:X")
        record = _bar(0, orders=[_order(1, "pending", "2024-01-01T00:00:00")])
        ledger.record(record)
        update = {"id": 1, "status": "filled", "fill_time": "2024-01-02T00:00:00"}
        prices = {"limit_price": None, "stop_price": None, "sl": 95.0, "tp": None}
        ledger.record(
            _bar(1, order_updates=[{**update, **prices, "fill_price": 100.5, "reason": ""}])
        )
        assert ledger.counts() == {"bars": 2, "orders": 1, "fills": 0}
        assert ledger.rows("orders")[0]["status"] == "filled"
        assert ledger.rows("orders")[0]["sl"] == 95.0  # an update carries the order's prices
        assert ledger.last()["cash"] == record.cash - 1
        assert list(ledger.bars()["Close"]) == [100.5, 101.5]
        assert ledger.positions()["units"].tolist() == [1.0]


def test_recording_a_bar_twice_is_refused_and_changes_nothing(tmp_path):
    with Ledger(tmp_path / "paper.db") as ledger:
        ledger.record(_bar(0))
        with pytest.raises(LedgerError, match="already recorded"):
            ledger.record(_bar(0, orders=[_order(1, "pending", "x")]))
        assert ledger.counts() == {"bars": 1, "orders": 0, "fills": 0}


def test_a_failure_inside_the_transaction_leaves_no_part_of_the_bar(tmp_path):
    def boom(phase):
        raise RuntimeError(phase)

    with Ledger(tmp_path / "paper.db") as ledger:
        with pytest.raises(RuntimeError, match="mid"):
            ledger.record(_bar(0, orders=[_order(1, "pending", "x")]), hook=boom)
        assert ledger.counts() == {"bars": 0, "orders": 0, "fills": 0}
        assert ledger.last() is None
        ledger.record(_bar(0))  # the same bar goes through afterwards
        assert ledger.counts()["bars"] == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("strategy", "of strategy S, not T"),
        ("params", "with parameters n=3, not 4"),
        ("settings", "with settings cash=1.0, not 2.0"),
        ("feed", "on feed replay:X, not replay:Y"),
    ],
)
def test_another_strategy_parameters_settings_or_feed_is_refused(tmp_path, kind, message):
    path = tmp_path / "paper.db"
    with Ledger(path) as ledger:
        ledger.bind("S", {"n": 3}, {"cash": 1.0}, "replay:X")
    args = {"strategy": "S", "params": {"n": 3}, "settings": {"cash": 1.0}, "feed": "replay:X"}
    args[kind] = {"strategy": "T", "params": {"n": 4}, "settings": {"cash": 2.0}}.get(
        kind, "replay:Y"
    )
    with Ledger(path) as ledger:
        with pytest.raises(LedgerError, match=message):
            ledger.bind(**args)
        assert ledger.bind("S", {"n": 3}, {"cash": 1.0}, "replay:X").strategy == "S"


def _untouched(path, make):
    make(path)
    before = path.read_bytes()
    with pytest.raises(LedgerError) as caught:
        Ledger(path)
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists()
    return str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path):
    message = _untouched(tmp_path / "notes.db", lambda p: p.write_text("Date,Close\n2024,1\n"))
    assert "not a tradenn ledger (not an SQLite database)" in message
    assert "\n" not in message


def test_a_foreign_sqlite_database_is_refused_and_untouched(tmp_path):
    def make(path):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        db.execute("INSERT INTO customers VALUES (1, 'a')")
        db.commit()
        db.close()

    message = _untouched(tmp_path / "other.db", make)
    assert "without the tradenn ledger schema" in message


def test_a_corrupt_ledger_is_a_clear_error_and_untouched(tmp_path):
    def make(path):
        with Ledger(path) as ledger:
            ledger.record(_bar(0))
        data = bytearray(path.read_bytes())
        data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page after the header
        path.write_bytes(bytes(data))

    message = _untouched(tmp_path / "paper.db", make)
    assert "corrupt" in message or "without the tradenn ledger schema" in message


def test_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "paper.db"
    with Ledger(path):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="schema version 99"):
        Ledger(path)


def test_a_corrupt_page_is_reported_in_one_line_with_the_full_report_kept(tmp_path):
    path = tmp_path / "paper.db"
    with Ledger(path) as ledger:
        for i in range(300):
            ledger.record(_bar(i))
    data = bytearray(path.read_bytes())
    page = 5 * 4096  # a table page: SQLite still opens the file, its check finds the damage
    data[page : page + 4096] = b"\x0d" + b"\xff" * 4095
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError) as found:
        Ledger(path, readonly=True)
    message = str(found.value)
    assert "\n" not in message and message.startswith(f"ledger {path} is corrupt: Page ")
    assert "more; --debug shows all" in message
    assert any("*** in database main ***" in note for note in found.value.__notes__)
