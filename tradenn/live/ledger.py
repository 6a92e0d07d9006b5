"""The paper-trading ledger: one SQLite file holding everything a run has done.

Tables (schema version :data:`SCHEMA_VERSION`):

* ``schema_version`` — one row, the version of this layout.
* ``run`` — one row: run id, strategy name, its parameters (JSON), the broker settings (JSON),
  the feed name and ``history``, the number of bars loaded before trading (``--warmup``). A
  ledger belongs to one strategy with one set of parameters.
* ``bars`` — every bar processed, in order (``seq`` 0, 1, ...), keyed by its timestamp; the
  first ``history`` of them are history the strategy read but did not trade on (they have no
  equity row).
* ``orders`` — every order the broker ever held, keyed by its sequence number in the broker's
  order log (deterministic, so recording the same bar twice cannot duplicate an order).
* ``fills`` — every fill, keyed by its sequence number.
* ``positions`` — the position held now, one row per symbol, with the time of the bar that set
  it (a bar that leaves it unchanged writes nothing there).
* ``equity`` — cash, units, equity and target exposure at every bar's close.
* ``state`` — one row: the restart snapshot after the last bar (the account, the strategy's
  own state, the runner's window; JSON, see :mod:`tradenn.live.state`), so a restart loads it
  instead of replaying the history.
* ``models`` — every model a model strategy trained (or was given), in order: the bar whose
  decision first used it, its file in the folder ``LEDGER.models/`` beside the ledger, the
  file's SHA-256 and what it was trained on (JSON; see :mod:`tradenn.live.artifacts`).

Older ledgers are upgraded on opening for writing (version 1 has no ``state``: its first
restart replays once; version 2 has no ``models`` and no ``history``).

Each bar's state change is written in ONE transaction (:meth:`Ledger.record`): the bar, new and
changed orders, fills, the position, the equity snapshot, the models trained for it and the
restart snapshot land together or not at all. The
file runs in WAL mode, so a reader (``tradenn paper status``) never blocks the writer.

One writer at a time: a writing :class:`Ledger` holds an exclusive OS lock (``flock``) on a
sidecar file ``FILE.lock`` for its whole life, so a second run on the same file is refused at
once (``ledger FILE is in use by process N``; the pid written into the lock file is only for that
message). The kernel drops the lock when the process ends however it ends (SIGKILL included), so
a killed run never blocks its restart; a clean :meth:`Ledger.close` also removes the lock file.
Readers (``Ledger(path, readonly=True)``) take no lock and never write: they open the file in
SQLite's read-only mode and create nothing beside it, so a ledger in a read-only folder can be
inspected.

A write the disk refuses (full, or an I/O error) raises :class:`LedgerDiskError`
(``ledger FILE: disk full``) after rolling the bar's transaction back: nothing recorded is lost,
and a restart once space is freed continues with the bar that failed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time as _time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; a ledger then has no writer lock
    fcntl = None  # type: ignore[assignment]

import pandas as pd

from tradenn.data.timezones import parse_timestamp_texts, timestamp_text
from tradenn.errors import TradennError
from tradenn.live import audit

SCHEMA_VERSION = 3
APPLICATION_ID = 0x74726E6E  # "trnn": marks an SQLite file as a tradenn ledger
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE run (
    run_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, params TEXT NOT NULL,
    settings TEXT NOT NULL, feed TEXT NOT NULL, created TEXT NOT NULL,
    history INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE bars (
    seq INTEGER PRIMARY KEY, time TEXT NOT NULL UNIQUE,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
    volume REAL NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, placed_time TEXT NOT NULL, side TEXT NOT NULL, size REAL,
    type TEXT NOT NULL, limit_price REAL, stop_price REAL, sl REAL, tp REAL, tag TEXT,
    status TEXT NOT NULL, fill_time TEXT, fill_price REAL, reason TEXT NOT NULL
);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    time TEXT NOT NULL, side TEXT NOT NULL, units REAL NOT NULL, price REAL NOT NULL,
    commission REAL NOT NULL, position REAL NOT NULL, cash REAL NOT NULL
);
CREATE TABLE positions (symbol TEXT PRIMARY KEY, units REAL NOT NULL, time TEXT NOT NULL);
CREATE TABLE equity (
    seq INTEGER PRIMARY KEY REFERENCES bars(seq), time TEXT NOT NULL,
    cash REAL NOT NULL, units REAL NOT NULL, equity REAL NOT NULL, target REAL
);
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, snapshot TEXT
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL REFERENCES bars(seq), time TEXT NOT NULL,
    file TEXT NOT NULL, sha256 TEXT NOT NULL, info TEXT NOT NULL
);
"""
_STATE_TABLE = _SCHEMA[_SCHEMA.index("CREATE TABLE state") : _SCHEMA.index("CREATE TABLE models")]
_MODELS_TABLE = _SCHEMA[_SCHEMA.index("CREATE TABLE models") :]
_BAR_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
_TABLES = ("schema_version", "run", "bars", "orders", "fills", "positions", "equity")

# SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xFF``, Python >= 3.11), and the
# messages that stand for them on older Pythons.
_SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 5, 8, 10, 13, 14
_SQLITE_MESSAGES = {
    "database is locked": _SQLITE_BUSY,
    "readonly database": _SQLITE_READONLY,
    "disk I/O error": _SQLITE_IOERR,
    "database or disk is full": _SQLITE_FULL,
    "unable to open database file": _SQLITE_CANTOPEN,
}
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_PERMITTED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


class LedgerError(TradennError):
    """A ledger file that cannot be used: foreign, corrupt, read-only, in use by another run, or
    belonging to another run."""


class LedgerDiskError(LedgerError):
    """The disk failed the ledger: it is full (``ledger FILE: disk full``) or an I/O error.

    A failure while running rather than bad input (``tradenn paper`` exits with 1, not 2). The
    transaction being written was rolled back, so everything committed before is intact and a
    restart after freeing space continues where the run stopped.
    """


@dataclass
class BarRecord:
    """Everything one bar changed, as the ledger stores it (built by the run loop).

    ``orders`` holds rows for new orders and orders whose state changed (keyed by ``id``);
    ``fills`` the fills booked on this bar.
    """

    seq: int
    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    cash: float
    units: float
    equity: float
    target: float | None = None
    symbol: str = ""
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_updates: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    state: str | None = None
    models: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """The identity of the run a ledger belongs to."""

    run_id: str
    strategy: str
    params: dict[str, Any]
    settings: dict[str, Any]
    feed: str


def _sidecar(path: Path, suffix: str) -> Path:
    """``path`` with ``suffix`` appended to its name (``paper.db`` -> ``paper.db-wal``)."""
    return path.with_name(path.name + suffix)


def _sqlite_code(error: sqlite3.Error) -> int | None:
    """The primary SQLite result code of ``error`` (``SQLITE_FULL`` ...), or None if unknown."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF
    text = str(error)
    return next((c for message, c in _SQLITE_MESSAGES.items() if message in text), None)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor ``fd`` is the file now at ``path``."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if another process holds it."""
    if fcntl is None:  # pragma: no cover - no flock on this platform
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(handle: BinaryIO) -> str:
    """Who holds a lock file, from the pid its holder wrote into it (for the message only)."""
    for _ in range(50):  # the holder writes its pid right after locking: give it a moment
        handle.seek(0)
        text = handle.read(32).decode("ascii", "replace").strip()
        if text.isdigit():
            return f"process {int(text)}"
        _time.sleep(0.01)
    return "another process"


def _stamp(time: pd.Timestamp) -> str:
    # A named zone is kept in the text so a resumed run gets back the same timestamps.
    return timestamp_text(time)


def _jsonable(value: Any) -> Any:
    """Parameters as JSON values (numpy scalars to Python, anything else to its repr)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return repr(value)


class Ledger:
    """An open ledger file.

    Parameters
    ----------
    path : str or Path
        The SQLite file. For writing, a missing (or empty) file becomes a new ledger; an
        existing file must be a tradenn ledger of a supported schema version, else
        :class:`LedgerError` is raised and the file is left untouched.
    readonly : bool, default False
        Open for reading only. The file must exist; nothing is written to it or created beside
        it (no lock, no ``-wal`` or ``-shm`` file), and :meth:`bind` and :meth:`record` raise
        :class:`LedgerError`. Works while a run is writing the ledger, and on a ledger in a
        read-only folder or file. An empty file reads as an empty ledger.

    Raises
    ------
    LedgerError
        The file cannot be used: not a tradenn ledger, corrupt, another schema version, a
        directory, missing (``readonly``), or, for writing, read-only, in a folder that cannot
        be written, or in use by another process (``ledger FILE is in use by process N``).
    LedgerDiskError
        The disk is full (``ledger FILE: disk full``) while creating the ledger or its lock.

    Notes
    -----
    A writer holds an exclusive ``flock`` on the sidecar file ``FILE.lock`` (beside the real
    file, symlinks resolved) from the constructor until :meth:`close`; it never waits for it.
    The kernel releases the lock when the process dies (even by SIGKILL), so a killed run's
    leftover lock file does not block a restart; a clean close removes the file. A process
    forked while a writer is open shares its lock (it is released when both have closed it).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock: BinaryIO | None = None
        self._lock_path = self.path
        self._lock_pid = 0
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        try:
            if self.path.is_dir():
                raise LedgerError(f"ledger {self.path} is a directory, not a file")
            if readonly:
                self._open_readonly()
            else:
                self._open_for_writing()
        except OSError as error:
            self.close()
            raise self._os_problem(error) from None
        except BaseException:
            self.close()
            raise

    # --------------------------------------------------------------------------- opening

    def _open_for_writing(self) -> None:
        self._blank()  # refuse a foreign file before creating anything beside it
        self._take_lock()
        fresh = self._blank()  # looked at again under the lock: another run may have made it
        if not fresh and not os.access(self.path, os.W_OK):
            raise LedgerError(
                f"ledger {self.path} is read-only (`tradenn paper status` and `paper trades` "
                "can read it)"
            )
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as error:
            problem = self._sqlite_problem(error)
            raise (problem or LedgerError(f"ledger {self.path}: cannot open ({error})")) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is safe the moment it returns against the process dying
            # (SIGKILL included); only an OS crash or power loss can roll back the last bars,
            # which leaves the ledger consistent and the restart fetches them again. FULL adds
            # an fsync per bar, which was most of a paper bar's cost.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if fresh:
                self._create()
            else:
                self._check_schema()
        except sqlite3.DatabaseError as error:
            problem = self._sqlite_problem(error)
            raise (problem or LedgerError(f"ledger {self.path} is corrupt: {error}")) from None

    def _open_readonly(self) -> None:
        if not self.path.exists():
            raise LedgerError(f"ledger {self.path}: no such file")
        if self._blank():  # a ledger no run has written to yet: read it as an empty ledger
            self._db = sqlite3.connect(":memory:", isolation_level=None)
            self._create()
            return
        try:
            self._db = self._connect_readonly()
            self._check_schema()
        except sqlite3.DatabaseError as error:
            problem = self._sqlite_problem(error)
            raise (problem or LedgerError(f"ledger {self.path} is corrupt: {error}")) from None

    def _blank(self) -> bool:
        """Whether the file is missing or blank (empty, or an SQLite database without a single
        table, as a creation that failed on a full disk leaves it), so that a new ledger can be
        made in it; refuse, without writing anything, a file that is not one of our ledgers."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        self._check_header()
        try:
            db = self._connect_readonly()
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            finally:
                db.close()
                self._drop_copy()
        except sqlite3.DatabaseError as error:
            problem = self._sqlite_problem(error)
            raise (problem or LedgerError(f"ledger {self.path} is corrupt: {error}")) from None
        if app_id == 0 and not tables:
            return True
        if app_id != APPLICATION_ID or not set(_TABLES) <= tables:
            raise LedgerError(
                f"{self.path} is an SQLite database without the tradenn ledger schema; "
                "refusing to touch it"
            )
        return False

    def _check_header(self) -> None:
        try:
            with self.path.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as error:
            raise LedgerError(f"ledger {self.path}: cannot read ({error.strerror})") from None
        if header != _SQLITE_HEADER:
            raise LedgerError(
                f"{self.path} is not a tradenn ledger (not an SQLite database); "
                "refusing to touch it"
            )

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that can neither write the file nor create anything beside it."""
        wal = _sidecar(self.path, "-wal")
        if not wal.exists():
            # No -wal file: nothing to merge, and no run is writing (a writer keeps its -wal
            # file while open). Read the file as immutable: no locks, no -wal or -shm created.
            return self._uri_connect(self.path, "mode=ro&immutable=1")
        db = self._uri_connect(self.path, "mode=ro")
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens -wal and -shm
            return db
        except sqlite3.OperationalError as error:
            db.close()
            if _sqlite_code(error) not in (_SQLITE_CANTOPEN, _SQLITE_READONLY):
                raise
        # A -wal file without its -shm in a folder we cannot write to (a killed run's files,
        # copied): SQLite cannot read them in place. Read a private copy of the two rather than
        # miss the bars committed in the -wal.
        self._copy = tempfile.TemporaryDirectory(prefix="tradenn-ledger-")
        copy = Path(self._copy.name) / self.path.name
        try:
            shutil.copyfile(self.path, copy)
            shutil.copyfile(wal, _sidecar(copy, "-wal"))
        except OSError as error:
            raise LedgerError(
                f"ledger {self.path}: cannot copy it to {self._copy.name} to read its -wal file "
                f"({error.strerror})"
            ) from None
        return self._uri_connect(copy, "mode=ro")

    @staticmethod
    def _uri_connect(path: Path, mode: str) -> sqlite3.Connection:
        return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, isolation_level=None)

    def _drop_copy(self) -> None:
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

    def _take_lock(self) -> None:
        """Hold an exclusive lock on ``FILE.lock`` or refuse at once: one writer per ledger."""
        lock = _sidecar(Path(os.path.realpath(self.path)), ".lock")
        for _ in range(100):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise self._os_problem(error, creating=lock) from None
            handle = os.fdopen(fd, "r+b", buffering=0)
            try:
                locked = _try_lock(fd)
                if locked and _same_file(fd, lock):
                    break
                holder = "" if locked else _holder(handle)
            except BaseException:
                handle.close()
                raise
            handle.close()
            if not locked:
                raise LedgerError(f"ledger {self.path} is in use by {holder}")
            # Locked, but a writer closing meanwhile removed that file: lock the new one.
        else:  # pragma: no cover - a lock file replaced 100 times in a row
            raise LedgerError(f"ledger {self.path}: cannot lock {lock}")
        self._lock, self._lock_path, self._lock_pid = handle, lock, os.getpid()
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())  # for the message of a refused run only

    def _release_lock(self) -> None:
        handle, self._lock = self._lock, None
        if handle is None:
            return
        if os.getpid() == self._lock_pid:  # not in a forked child: the parent still holds it
            # Removed while still locked; a process that opened the old file meanwhile sees it
            # is no longer the lock file once it gets the lock, and takes the new one.
            with contextlib.suppress(OSError):
                if _same_file(handle.fileno(), self._lock_path):
                    os.unlink(self._lock_path)
        handle.close()

    def _os_problem(self, error: OSError, creating: Path | None = None) -> LedgerError:
        """A one-line :class:`LedgerError` naming the ledger for an OS error."""
        if error.errno in _DISK_FULL_ERRNOS:
            return LedgerDiskError(f"ledger {self.path}: disk full")
        reason = error.strerror or str(error)
        if creating is not None:
            folder = creating.parent
            if error.errno in _NOT_PERMITTED_ERRNOS:
                return LedgerError(
                    f"ledger {self.path}: cannot write in folder {folder} ({reason})"
                )
            if error.errno == errno.ENOENT and not folder.exists():
                return LedgerError(f"ledger {self.path}: no such folder {folder}")
            return LedgerError(f"ledger {self.path}: cannot create {creating} ({reason})")
        return LedgerError(f"ledger {self.path}: cannot open ({reason})")

    def _sqlite_problem(self, error: sqlite3.Error) -> LedgerError | None:
        """A one-line :class:`LedgerError` for an SQLite error on opening, or None."""
        problem = self._disk_problem(error)
        if problem is not None:
            return problem
        code = _sqlite_code(error)
        if code == _SQLITE_READONLY:
            return LedgerError(f"ledger {self.path} is read-only ({error})")
        if code == _SQLITE_CANTOPEN:
            return LedgerError(f"ledger {self.path}: cannot open ({error})")
        if code == _SQLITE_BUSY:
            return LedgerError(f"ledger {self.path} is locked by another program ({error})")
        return None

    def _disk_problem(self, error: sqlite3.Error) -> LedgerDiskError | None:
        """:class:`LedgerDiskError` for SQLite's ``SQLITE_FULL`` or ``SQLITE_IOERR``, or None."""
        code = _sqlite_code(error)
        if code == _SQLITE_FULL:
            return LedgerDiskError(f"ledger {self.path}: disk full")
        if code == _SQLITE_IOERR:
            return LedgerDiskError(f"ledger {self.path}: disk I/O error ({error})")
        return None

    def _writable(self) -> None:
        if self.readonly:
            raise LedgerError(f"ledger {self.path} is open read-only")

    def _rollback(self) -> None:
        """Roll back the open transaction, unless SQLite already did (it does on a full disk)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _create(self) -> None:
        with self._immediate() as db:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def _check_schema(self) -> None:
        report = [row[0] for row in self._db.execute("PRAGMA quick_check").fetchall()]
        if report != ["ok"]:
            lines = [line for row in report for line in str(row).splitlines()]
            problems = [line for line in lines if not line.startswith("***")] or lines
            more = (
                f" (and {len(problems) - 1} more; --debug shows all)" if len(problems) > 1 else ""
            )
            error = LedgerError(f"ledger {self.path} is corrupt: {problems[0]}{more}")
            error.add_note("SQLite's report:\n" + "\n".join(lines))
            raise error
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is not None and row[0] in (1, 2) and not self.readonly:
            self._upgrade(row[0])
            return
        if row is None or row[0] not in (1, 2, SCHEMA_VERSION):
            found = "none" if row is None else row[0]
            raise LedgerError(
                f"ledger {self.path} has schema version {found}; this tradenn reads version "
                f"{SCHEMA_VERSION}"
            )

    def _upgrade(self, version: int) -> None:
        """Version 1 had no ``state`` table (its first restart then replays); versions 1 and 2
        no ``models`` table and no ``run.history``: add them."""
        with self._immediate() as db:
            if version == 1:
                db.execute(_STATE_TABLE.strip().rstrip(";"))
            db.execute(_MODELS_TABLE.strip().rstrip(";"))
            db.execute("ALTER TABLE run ADD COLUMN history INTEGER NOT NULL DEFAULT 0")
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        """Close the file and release a writer's lock (committed state is already on disk)."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
        self._release_lock()
        self._drop_copy()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------- the run

    def run_info(self) -> RunInfo | None:
        """The run this ledger belongs to, or None for a new ledger."""
        row = self._db.execute(
            "SELECT run_id, strategy, params, settings, feed FROM run"
        ).fetchone()
        if row is None:
            return None
        return RunInfo(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4])

    def bind(
        self, strategy: str, params: Mapping[str, Any], settings: Mapping[str, Any], feed: str
    ) -> RunInfo:
        """Claim a new ledger for this run, or check an existing one belongs to it.

        Raises :class:`LedgerError` when the ledger holds a different strategy, different
        parameters, different broker settings or another feed: a run cannot continue from
        another run's positions; or when it is open read-only. :class:`LedgerDiskError` when
        the disk is full.
        """
        self._writable()
        params = {k: _jsonable(v) for k, v in sorted(params.items())}
        settings = {k: _jsonable(v) for k, v in sorted(settings.items())}
        info = self.run_info()
        if info is None:
            info = RunInfo(uuid.uuid4().hex, strategy, params, settings, feed)
            try:
                self._db.execute(
                    "INSERT INTO run VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (
                        info.run_id,
                        strategy,
                        json.dumps(params),
                        json.dumps(settings),
                        feed,
                        _stamp(pd.Timestamp.now(tz="UTC")),
                    ),
                )
            except sqlite3.Error as error:
                problem = self._disk_problem(error)
                if problem is None:
                    raise
                raise problem from error
            return info
        where = f"ledger {self.path} belongs to run {info.run_id}"
        if info.strategy != strategy:
            raise LedgerError(
                f"{where} of strategy {info.strategy}, not {strategy}; use another --ledger"
            )
        for label, mine, theirs in (
            ("parameters", params, info.params),
            ("settings", settings, info.settings),
        ):
            if mine != theirs:
                key = next(
                    k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)
                )
                raise LedgerError(
                    f"{where} with {label} {key}={theirs.get(key)!r}, not {mine.get(key)!r}; "
                    "use another --ledger"
                )
        if info.feed != feed:
            raise LedgerError(f"{where} on feed {info.feed}, not {feed}; use another --ledger")
        return info

    # --------------------------------------------------------------------------- writing

    def record(self, bar: BarRecord, *, hook: Callable[[str], None] | None = None) -> None:
        """Write one bar's state change in a single transaction.

        Raises :class:`LedgerError` if the bar (by timestamp or sequence number) is already
        recorded: every bar is processed exactly once; or if the ledger is open read-only.
        Raises :class:`LedgerDiskError` (``ledger FILE: disk full``) when the disk refuses the
        write; the transaction is rolled back, so no part of the bar is recorded and the same
        bar can be recorded once there is space. ``hook(phase)`` is called inside the
        transaction (``"mid"``, after some rows are written) for crash tests.
        """
        self._writable()
        time = _stamp(bar.time)
        with self._transaction() as db:
            try:
                db.execute(
                    "INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (bar.seq, time, bar.open, bar.high, bar.low, bar.close, bar.volume),
                )
            except sqlite3.IntegrityError:
                raise LedgerError(
                    f"ledger {self.path}: bar {time} (#{bar.seq}) is already recorded"
                ) from None
            db.executemany(
                "INSERT INTO orders VALUES (:id, :placed_time, :side, :size, :type, :limit_price,"
                " :stop_price, :sl, :tp, :tag, :status, :fill_time, :fill_price, :reason)",
                bar.orders,
            )
            db.executemany(
                "UPDATE orders SET status=:status, fill_time=:fill_time, fill_price=:fill_price,"
                " reason=:reason, limit_price=:limit_price, stop_price=:stop_price, sl=:sl,"
                " tp=:tp WHERE id=:id",
                bar.order_updates,
            )
            if hook is not None:
                hook("mid")
            db.executemany(
                "INSERT INTO fills VALUES (:id, :order_id, :time, :side, :units, :price,"
                " :commission, :position, :cash)",
                bar.fills,
            )
            db.execute(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET"
                " units=excluded.units, time=excluded.time WHERE units != excluded.units",
                (bar.symbol, bar.units, time),
            )
            db.execute(
                "INSERT INTO equity VALUES (?, ?, ?, ?, ?, ?)",
                (bar.seq, time, bar.cash, bar.units, bar.equity, bar.target),
            )
            db.executemany(
                "INSERT INTO models (seq, time, file, sha256, info) VALUES (?, ?, ?, ?, ?)",
                [
                    (bar.seq, time, m["file"], m["sha256"], json.dumps(m["info"], default=str))
                    for m in bar.models
                ],
            )
            db.execute(
                "INSERT INTO state VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " seq=excluded.seq, snapshot=excluded.snapshot",
                (bar.seq, bar.state),
            )

    @contextlib.contextmanager
    def _immediate(self):
        """One write transaction: committed when the block ends, rolled back on any error."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction of a run (:meth:`_immediate`); a disk that refuses it raises
        :class:`LedgerDiskError` (nothing of it is recorded)."""
        try:
            with self._immediate() as db:
                yield db
        except sqlite3.Error as error:
            problem = self._disk_problem(error)
            if problem is None:
                raise
            raise problem from error

    def record_history(self, frame: pd.DataFrame) -> None:
        """Store the bars loaded before trading (``--warmup``) as the ledger's first bars, in
        one transaction with the run's ``history`` count. The ledger must have no bar yet."""
        self._writable()
        if self.counts()["bars"]:
            raise LedgerError(f"ledger {self.path} already has bars; history comes first")
        rows = [
            (seq, _stamp(time), *(float(v) for v in values))
            for seq, (time, values) in enumerate(
                zip(frame.index, frame[list(_BAR_COLUMNS)].itertuples(index=False), strict=True)
            )
        ]
        with self._transaction() as db:
            db.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE run SET history = ?", (len(rows),))

    # --------------------------------------------------------------------------- reading

    def history(self) -> int:
        """How many of the first bars are history loaded before trading (``--warmup``)."""
        try:
            row = self._db.execute("SELECT history FROM run").fetchone()
        except sqlite3.OperationalError:  # an older ledger opened read-only
            return 0
        return 0 if row is None else int(row[0])

    def models(self) -> pd.DataFrame:
        """Every model recorded: ``id``, ``seq`` and ``time`` of the bar that first used it,
        ``file`` (in ``LEDGER.models/``), ``sha256``, ``info`` (JSON text)."""
        try:
            return pd.read_sql_query("SELECT * FROM models ORDER BY id", self._db)
        except (sqlite3.OperationalError, pd.errors.DatabaseError):  # older, read-only
            return pd.DataFrame(columns=["id", "seq", "time", "file", "sha256", "info"])

    def bars(self, last: int | None = None) -> pd.DataFrame:
        """Every recorded bar (or the ``last`` ones), oldest first (index: timestamps;
        Open..Volume columns)."""
        query = (
            "SELECT seq, time, open AS Open, high AS High, low AS Low, close AS Close,"
            " volume AS Volume FROM bars"
        )
        if last is None:
            frame = pd.read_sql_query(query + " ORDER BY seq", self._db)
        else:
            frame = pd.read_sql_query(
                f"SELECT * FROM ({query} ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                self._db,
                params=(int(last),),
            )
        frame.pop("seq")
        frame.index = parse_timestamp_texts(frame.pop("time"))
        return frame

    def orders(self, status: str | None = None) -> pd.DataFrame:
        """Every order (or those with ``status``), in placement order."""
        query = "SELECT * FROM orders"
        if status is not None:
            return pd.read_sql_query(
                query + " WHERE status = ? ORDER BY id", self._db, params=(status,)
            )
        return pd.read_sql_query(query + " ORDER BY id", self._db)

    def fills(self) -> pd.DataFrame:
        """Every fill, in the order they happened."""
        return pd.read_sql_query("SELECT * FROM fills ORDER BY id", self._db)

    def positions(self) -> pd.DataFrame:
        """The position held now, one row per symbol."""
        return pd.read_sql_query("SELECT * FROM positions ORDER BY symbol", self._db)

    def equity(self) -> pd.DataFrame:
        """Cash, units, equity and target at every bar's close."""
        return pd.read_sql_query("SELECT * FROM equity ORDER BY seq", self._db)

    def last(self) -> dict[str, Any] | None:
        """The last equity snapshot (``seq``, ``time``, ``cash``, ``units``, ``equity``,
        ``target``), or None when no bar is recorded."""
        cursor = self._db.execute("SELECT * FROM equity ORDER BY seq DESC LIMIT 1")
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def state(self) -> tuple[int, str | None] | None:
        """The restart snapshot after the last bar: ``(seq, JSON text or None)``; None when
        there is none (a new or version 1 ledger)."""
        try:
            row = self._db.execute("SELECT seq, snapshot FROM state").fetchone()
        except sqlite3.OperationalError:  # a version 1 ledger opened read-only
            return None
        return None if row is None else (row[0], row[1])

    def check(self) -> None:
        """Refuse (:class:`LedgerError`, naming the table and row) a ledger whose stored rows
        break an accounting identity of :mod:`tradenn.live.audit`: a value edited by hand,
        say. Reads every row but replays no strategy (``tradenn paper verify`` does that)."""
        info = self.run_info()
        if info is None:
            return
        keys = {"bars": "seq", "orders": "id", "fills": "id", "equity": "seq"}
        keys["positions"] = "symbol"
        tables = {
            table: pd.read_sql_query(f"SELECT * FROM {table} ORDER BY {key}", self._db)
            for table, key in keys.items()
        }
        state = self.state()
        problem = audit.first_problem(
            tables,
            cash=float(info.settings["cash"]),
            history=self.history(),
            state_seq=None if state is None else state[0],
        )
        if problem:
            raise LedgerError(
                f"ledger {self.path} is inconsistent: {problem} (was it edited? "
                "`tradenn paper verify` replays it whole)"
            )

    def counts(self) -> dict[str, int]:
        """Rows in ``bars``, ``orders`` and ``fills``."""
        return {
            table: self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("bars", "orders", "fills")
        }

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``orders`` or ``fills`` as dicts, by id (exact stored values)."""
        if table not in ("orders", "fills"):
            raise ValueError(f"Ledger.rows: table must be 'orders' or 'fills', got {table!r}")
        cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
