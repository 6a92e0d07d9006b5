"""Who may open a ledger, and what the disk may refuse.

* One writer at a time: a ledger held by another process is refused at once with the holder's
  pid; the lock dies with its process (SIGKILL included), so a killed run restarts.
* Readers never write: ``paper status`` and ``paper trades`` read a ledger in a folder or file
  they cannot write, with or without a ``-wal`` file, and create nothing beside it.
* A full disk loses nothing: the bar being written is rolled back, ``paper run`` says
  ``ledger FILE: disk full`` and exits 1, and the run resumes once there is space.

Tests run as root here, and root ignores permission bits: the tests that need a folder or file
the reader cannot write run the reader in a forked child that drops to uid 65534 first (as any
other user the permission bits alone already apply), and check in that child that writing there
really fails.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tradenn
from tradenn.data.synthetic import gbm
from tradenn.live import Ledger, LedgerDiskError, LedgerError, commands
from tradenn.live.ledger import BarRecord

from .support import FakeFeed, command

NOBODY = 65534
REPO = str(Path(tradenn.__file__).parents[1])
PARAMS = ["--param", "fast=3", "--param", "slow=8"]

# Holds a writing Ledger open (after recording bar SEQ) until a line arrives on stdin.
HOLDER = """
import sys
import pandas as pd
from tradenn.live.ledger import BarRecord, Ledger
path, seq = sys.argv[1], int(sys.argv[2])
ledger = Ledger(path)
time = pd.Timestamp("2024-01-01") + pd.Timedelta(days=seq)
ledger.record(BarRecord(seq, time, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, symbol="X"))
print("holding", flush=True)
sys.stdin.readline()
ledger.close()
"""


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return gbm(260, sigma=0.35, seed=5)[["Open", "High", "Low", "Close", "Volume"]]


@pytest.fixture
def feed(monkeypatch, prices) -> pd.DataFrame:
    """``paper run --feed replay:TEST`` replays ``prices`` (no file to read)."""
    monkeypatch.setattr(commands, "_open_feed", lambda spec, speed, interval: FakeFeed(prices))
    return prices


def _bar(seq: int, orders: int = 0) -> BarRecord:
    time_ = pd.Timestamp("2024-01-01") + pd.Timedelta(days=seq)
    rows = [
        {
            "id": seq * 10 + k + 1,
            "placed_time": time_.isoformat(),
            "side": "buy",
            "size": 1.0,
            "type": "market",
            "limit_price": None,
            "stop_price": None,
            "sl": None,
            "tp": None,
            "tag": "x" * 200,
            "status": "pending",
            "fill_time": None,
            "fill_price": None,
            "reason": "",
        }
        for k in range(orders)
    ]
    return BarRecord(
        seq, time_, 100.0, 101.0, 99.0, 100.5, 1e6, 1e4, 0.0, 1e4, symbol="X",
        orders=rows,
    )  # fmt: skip


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """``tradenn paper ARGV`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = commands.main(argv)
    return code, out.getvalue(), err.getvalue()


def _run(path: Path, feed: str = "replay:TEST") -> list[str]:
    return ["run", "sma_cross", "--feed", feed, "--ledger", str(path), "--quiet", *PARAMS]


def _spawn(argv: list[str], hook: str | None = None, **popen) -> subprocess.Popen:
    """`tradenn paper ...` in a fresh interpreter, as a user runs it, with ``hook``."""
    args, env = command("tradenn.live.commands", argv, hook)
    return subprocess.Popen(args, env=env, text=True, **popen)


def _hold(path: Path, seq: int) -> subprocess.Popen:
    """Another process holding ``path`` open for writing, after recording bar ``seq``."""
    env = dict(os.environ, PYTHONPATH=REPO)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seq)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout.readline() == "holding\n"
    return holder


def _stored(path: Path) -> dict[str, bytes]:
    """The bytes of the ledger and its -wal file (the -shm file is only an index)."""
    files = [path, path.with_name(path.name + "-wal")]
    return {f.name: f.read_bytes() for f in files if f.exists()}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def _contents(path: Path) -> tuple:
    with Ledger(path, readonly=True) as ledger:
        return (
            ledger.rows("orders"),
            ledger.rows("fills"),
            ledger.equity().to_dict("list"),
            ledger.bars().index.tolist(),
        )


# ------------------------------------------------------------------------ one writer at a time


def test_a_ledger_held_by_another_process_is_refused_at_once_and_left_unchanged(tmp_path):
    path = tmp_path / "paper.db"
    with Ledger(path) as ledger:
        ledger.record(_bar(0))
    holder = _hold(path, 1)
    try:
        before = _stored(path)
        started = time.monotonic()
        with pytest.raises(LedgerError) as caught:
            Ledger(path)
        assert time.monotonic() - started < 5  # no SQLite busy wait (its timeout is 30 s)
        assert str(caught.value) == f"ledger {path} is in use by process {holder.pid}"
        assert _stored(path) == before
        with Ledger(path, readonly=True) as reader:  # readers take no lock; they see the WAL
            assert reader.counts()["bars"] == 2
    finally:
        holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    assert sorted(os.listdir(tmp_path)) == ["paper.db"]  # a clean close removes the lock file
    with Ledger(path) as ledger:
        ledger.record(_bar(2))


def test_the_lock_is_held_for_the_whole_life_of_a_writer_and_readers_need_none(tmp_path):
    path = tmp_path / "paper.db"
    writer = Ledger(path)
    try:
        writer.record(_bar(0))
        with pytest.raises(LedgerError) as caught:
            Ledger(path)
        assert str(caught.value) == f"ledger {path} is in use by process {os.getpid()}"
        with Ledger(path, readonly=True) as reader:
            assert reader.counts()["bars"] == 1
        writer.record(_bar(1))  # the refused open changed nothing for the writer
    finally:
        writer.close()
    with Ledger(path) as again:
        assert again.counts()["bars"] == 2


def test_sigkill_of_the_holder_releases_the_lock_and_a_restart_succeeds(tmp_path):
    path = tmp_path / "paper.db"
    holder = _hold(path, 0)
    lock = tmp_path / "paper.db.lock"
    assert lock.read_text() == f"{holder.pid}\n"
    holder.kill()
    assert holder.wait(timeout=60) == -signal.SIGKILL
    assert lock.exists()  # left behind by the killed process, but nobody holds it
    with Ledger(path) as ledger:
        assert ledger.counts()["bars"] == 1
        ledger.record(_bar(1))
    assert not lock.exists()


def test_a_second_paper_run_on_a_ledger_in_use_exits_2_with_one_line(tmp_path):
    csv = tmp_path / "prices.csv"
    gbm(80, sigma=0.4, seed=3)[["Open", "High", "Low", "Close", "Volume"]].to_csv(
        csv, index_label="Date"
    )
    whole, path = tmp_path / "whole.db", tmp_path / "paper.db"
    assert _cli(_run(whole, f"replay:{csv}"))[0] == 0
    first = _spawn(_run(path, f"replay:{csv}"), "pause@40", stderr=subprocess.PIPE)
    try:
        assert "paused after bar 40" in first.stderr.readline()
        before = _stored(path)
        second = _spawn(_run(path, f"replay:{csv}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2 and out == ""
        assert err == f"tradenn: error: ledger {path} is in use by process {first.pid}\n"
        assert _stored(path) == before
        code, status, _ = _cli(["status", "--ledger", str(path)])  # readers work meanwhile
        assert code == 0 and "last bar #40 " in status
    finally:
        first.kill()
    assert first.wait(timeout=60) == -signal.SIGKILL
    resumed = _spawn(_run(path, f"replay:{csv}"), stdout=subprocess.PIPE)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0 and out.startswith("feed ended: 39 new bars after 41 recorded")
    assert _contents(path) == _contents(whole)


# ------------------------------------------------------------------------ readers never write


@pytest.fixture
def folders() -> Iterator[Callable[[], Path]]:
    """New folders under the system temp folder, which uid 65534 can reach (``tmp_path`` is
    inside root's private folder); permissions restored and removed afterwards."""
    made: list[Path] = []

    def make() -> Path:
        made.append(Path(tempfile.mkdtemp(prefix="tradenn-ledger-test-")))
        return made[-1]

    yield make
    for folder in made:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def _as_another_user(func: Callable[[], Any]) -> Any:
    """``func()`` in a forked child that the permission bits apply to (as root, it drops to
    uid/gid 65534 first); returns its JSON-able result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                result = {"value": func()}
            except BaseException as error:
                result = {"error": f"{type(error).__name__}: {error}"}
            with os.fdopen(write, "w") as out:
                json.dump(result, out)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        text = stream.read()
    os.waitpid(pid, 0)
    result = json.loads(text)
    assert "error" not in result, result["error"]
    return result["value"]


def _can_create_in(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


def _finished_ledger(path: Path) -> None:
    code, out, _ = _cli(_run(path))
    assert code == 0 and out.startswith("feed ended")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # cleanly closed


@pytest.mark.parametrize("readonly", ["folder", "file"])
def test_status_and_trades_read_a_finished_ledger_they_cannot_write(
    feed, tmp_path, folders, readonly
):
    source = tmp_path / "paper.db"
    _finished_ledger(source)
    expected = [_cli([verb, "--ledger", str(source)]) for verb in ("status", "trades")]
    assert expected[0][0] == 0 and "SmaCross (fast=3, slow=8)" in expected[0][1]
    folder = folders()
    path = folder / "paper.db"
    shutil.copyfile(source, path)
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555 if readonly == "folder" else 0o777)
    before = _snapshot(folder)

    def read() -> dict[str, Any]:
        return {
            "can write the file": os.access(path, os.W_OK),
            "can write the folder": _can_create_in(folder),
            "outputs": [_cli([verb, "--ledger", str(path)]) for verb in ("status", "trades")],
        }

    seen = _as_another_user(read)
    assert not seen["can write the file"]
    assert seen["can write the folder"] == (readonly == "file")
    assert [tuple(output) for output in seen["outputs"]] == expected
    assert _snapshot(folder) == before  # no -wal, -shm or lock file, nothing changed


def _killed_ledger(path: Path, bars: int) -> None:
    """A ledger whose writer was killed after ``bars`` bars: they are only in its -wal file."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            ledger = Ledger(path)
            ledger.bind("S", {"n": 1}, {"cash": 1e4}, "replay:X")
            for seq in range(bars):
                ledger.record(_bar(seq, orders=1))
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)


def _bars_without_the_wal(path: Path, scratch: Path) -> int:
    copy = scratch / "main-file-only.db"
    shutil.copyfile(path, copy)
    db = sqlite3.connect(f"{copy.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM bars").fetchone()[0]
    except sqlite3.OperationalError:  # not even the tables are in the main file
        return 0
    finally:
        db.close()


@pytest.mark.parametrize("shm", [True, False], ids=["with-shm", "without-shm"])
def test_status_and_trades_read_a_killed_runs_ledger_and_its_wal_in_a_read_only_folder(
    tmp_path, folders, shm
):
    source = tmp_path / "paper.db"
    _killed_ledger(source, 5)
    assert _bars_without_the_wal(source, tmp_path) < 5  # reading only the main file misses bars
    expected = [_cli([verb, "--ledger", str(source)]) for verb in ("status", "trades")]
    folder = folders()
    for suffix in ("", "-wal", *(["-shm"] if shm else [])):
        shutil.copyfile(f"{source}{suffix}", folder / f"paper.db{suffix}")
        os.chmod(folder / f"paper.db{suffix}", 0o444)
    os.chmod(folder, 0o555)
    before = _snapshot(folder)
    path = folder / "paper.db"

    def read() -> dict[str, Any]:
        return {
            "can write the folder": _can_create_in(folder),
            "status": _cli(["status", "--ledger", str(path)]),
            "trades": _cli(["trades", "--ledger", str(path)]),
        }

    seen = _as_another_user(read)
    assert not seen["can write the folder"]
    code, out, err = seen["status"]
    assert (code, err) == (0, "") and "last bar #4 2024-01-05T00:00:00; 5 bars, 0 fills" in out
    assert out.count(" market ") == 5  # the 5 pending orders, all in the -wal file
    assert [tuple(seen["status"]), tuple(seen["trades"])] == expected
    assert _snapshot(folder) == before


def test_a_read_only_ledger_refuses_writes_and_creates_nothing(tmp_path):
    path = tmp_path / "paper.db"
    with pytest.raises(LedgerError, match="no such file"):
        Ledger(path, readonly=True)
    assert not path.exists()
    with Ledger(path) as ledger:
        ledger.record(_bar(0))
    before = _snapshot(tmp_path)
    with Ledger(path, readonly=True) as reader:
        with pytest.raises(LedgerError, match="is open read-only"):
            reader.record(_bar(1))
        with pytest.raises(LedgerError, match="is open read-only"):
            reader.bind("S", {}, {}, "replay:X")
        assert reader.counts()["bars"] == 1
        assert _snapshot(tmp_path) == before
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["new ledger, read-only folder", "ledger in a read-only folder",
                                  "read-only ledger"])  # fmt: skip
def test_paper_run_on_a_ledger_it_cannot_write_is_one_line_with_exit_code_2(
    feed, tmp_path, folders, case
):
    source = tmp_path / "paper.db"
    _finished_ledger(source)  # (also loads every module the child needs)
    folder = folders()
    path = folder / "paper.db"
    if case != "new ledger, read-only folder":
        shutil.copyfile(source, path)
        os.chmod(path, 0o444)
    os.chmod(folder, 0o777 if case == "read-only ledger" else 0o555)
    before = _snapshot(folder)
    code, out, err = _as_another_user(lambda: _cli(_run(path)))
    if case == "read-only ledger":
        reason = "is read-only (`tradenn paper status` and `paper trades` can read it)"
        assert err == f"tradenn: error: ledger {path} {reason}\n"
    else:
        folder_name = os.path.realpath(folder)
        reason = f"cannot write in folder {folder_name} (Permission denied)"
        assert err == f"tradenn: error: ledger {path}: {reason}\n"
    assert (code, out) == (2, "")
    assert _snapshot(folder) == before


# ------------------------------------------------------------------------ other OS errors


@pytest.mark.parametrize("verb", ["run", "status", "trades"])
def test_a_folder_given_as_the_ledger_is_one_line_with_exit_code_2(feed, tmp_path, verb):
    argv = _run(tmp_path) if verb == "run" else [verb, "--ledger", str(tmp_path)]
    assert _cli(argv) == (2, "", f"tradenn: error: ledger {tmp_path} is a directory, not a file\n")
    assert os.listdir(tmp_path) == []


def test_a_ledger_in_a_missing_folder_is_one_line_with_exit_code_2(feed, tmp_path):
    path = tmp_path / "missing" / "paper.db"
    message = f"tradenn: error: ledger {path}: no such folder {tmp_path / 'missing'}\n"
    assert _cli(_run(path)) == (2, "", message)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ a full disk


@pytest.fixture
def disk(monkeypatch) -> Callable[[bool], None]:
    """``disk(full=True)``: from now on SQLite cannot grow the ledger's file, as on a full disk
    (``PRAGMA max_page_count`` at its current size: SQLite reports SQLITE_FULL, "database or
    disk is full", exactly as when the disk itself is full); ``disk(full=False)`` frees space."""
    state = {"full": False}
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def apply(db: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.ProgrammingError):  # a closed connection
            db.execute(f"PRAGMA max_page_count={1 if state['full'] else 2**30}")

    def limited(*args, **kwargs) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        opened.append(db)
        apply(db)
        return db

    def set_full(full: bool = True) -> None:
        state["full"] = full
        for db in opened:
            apply(db)

    monkeypatch.setattr(sqlite3, "connect", limited)
    return set_full


def test_a_full_disk_rolls_the_bar_back_and_the_bar_records_once_there_is_space(tmp_path, disk):
    path = tmp_path / "paper.db"
    with Ledger(path) as ledger:
        ledger.record(_bar(0, orders=2))
        disk(full=True)
        seq = 1
        with pytest.raises(LedgerDiskError) as caught:
            for seq in range(1, 1000):  # until the pages the file has are used up
                ledger.record(_bar(seq, orders=2))
        assert str(caught.value) == f"ledger {path}: disk full"
        assert seq > 1  # it failed part-way through the run, not on the first write
        assert ledger.counts() == {"bars": seq, "orders": 2 * seq, "fills": 0}
        assert len(ledger.equity()) == seq and ledger.last()["seq"] == seq - 1
        disk(full=False)
        ledger.record(_bar(seq, orders=2))  # the same bar, now that there is space
        assert ledger.counts() == {"bars": seq + 1, "orders": 2 * seq + 2, "fills": 0}


def test_paper_run_on_a_full_disk_exits_1_with_one_line_and_resumes_once_space_is_freed(
    feed, tmp_path, disk
):
    whole, path = tmp_path / "whole.db", tmp_path / "paper.db"
    assert _cli(_run(whole))[0] == 0
    with Ledger(path):  # a new ledger, then the disk fills up
        pass
    disk(full=True)
    assert _cli(_run(path)) == (1, "", f"tradenn: error: ledger {path}: disk full\n")
    disk(full=False)
    with Ledger(path, readonly=True) as ledger:
        done = ledger.counts()["bars"]
        assert 0 < done < len(feed) and len(ledger.equity()) == done
    code, out, err = _cli(_run(path))
    assert (code, err) == (0, "")
    assert out.startswith(f"feed ended: {len(feed) - done} new bars after {done} recorded")
    assert _contents(path) == _contents(whole)


def test_a_full_disk_while_creating_a_ledger_is_disk_full_and_a_retry_creates_it(
    feed, tmp_path, disk
):
    path = tmp_path / "paper.db"
    disk(full=True)
    assert _cli(_run(path)) == (1, "", f"tradenn: error: ledger {path}: disk full\n")
    assert sorted(os.listdir(tmp_path)) == ["paper.db"]  # a blank file, no lock left behind
    disk(full=False)
    code, out, _ = _cli(_run(path))
    assert code == 0 and out.startswith(f"feed ended: {len(feed)} new bars after 0 recorded")


def test_a_full_disk_when_creating_the_lock_file_is_disk_full(feed, tmp_path, monkeypatch):
    real_open = os.open

    def no_space_for_locks(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_space_for_locks)
    path = tmp_path / "paper.db"
    with pytest.raises(LedgerDiskError, match="disk full"):
        Ledger(path)
    assert _cli(_run(path)) == (1, "", f"tradenn: error: ledger {path}: disk full\n")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(os, "open", real_open)
    assert _cli(_run(path))[0] == 0
