"""The paper-trading ledger: one SQLite file holding everything a run has done.

Tables (schema version :data:`SCHEMA_VERSION`):

* ``schema_version`` — one row, the version of this layout.
* ``run`` — one row: run id, strategy name, its parameters (JSON), the broker settings (JSON)
  and the feed name. A ledger belongs to one strategy with one set of parameters.
* ``bars`` — every bar processed, in order (``seq`` 0, 1, ...), keyed by its timestamp.
* ``orders`` — every order the broker ever held, keyed by its sequence number in the broker's
  order log (deterministic, so recording the same bar twice cannot duplicate an order).
* ``fills`` — every fill, keyed by its sequence number.
* ``positions`` — the position held now, one row per symbol.
* ``equity`` — cash, units, equity and target exposure at every bar's close.

Each bar's state change is written in ONE transaction (:meth:`Ledger.record`): the bar, new and
changed orders, fills, the position and the equity snapshot land together or not at all. The
file runs in WAL mode, so a reader (``tradenn paper status``) never blocks the writer.
"""

from __future__ import annotations

import json
import math
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tradenn.data.timezones import parse_timestamp_texts, timestamp_text
from tradenn.errors import TradennError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x74726E6E  # "trnn": marks an SQLite file as a tradenn ledger
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE run (
    run_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, params TEXT NOT NULL,
    settings TEXT NOT NULL, feed TEXT NOT NULL, created TEXT NOT NULL
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
    seq INTEGER PRIMARY KEY REFERENCES bars(seq), time TEXT NOT NULL UNIQUE,
    cash REAL NOT NULL, units REAL NOT NULL, equity REAL NOT NULL, target REAL
);
"""
_TABLES = ("schema_version", "run", "bars", "orders", "fills", "positions", "equity")


class LedgerError(TradennError):
    """A ledger file that cannot be used: foreign, corrupt, or belonging to another run."""


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
    fills: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunInfo:
    """The identity of the run a ledger belongs to."""

    run_id: str
    strategy: str
    params: dict[str, Any]
    settings: dict[str, Any]
    feed: str


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
        The SQLite file. A missing (or empty) file becomes a new ledger; an existing file must
        be a tradenn ledger of a supported schema version, else :class:`LedgerError` is raised
        and the file is left untouched.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            self._check_foreign()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as error:
            raise LedgerError(f"ledger {self.path}: cannot open ({error})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if fresh:
                self._create()
            else:
                self._check_schema()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise LedgerError(f"ledger {self.path} is corrupt: {error}") from None

    # --------------------------------------------------------------------------- opening

    def _check_foreign(self) -> None:
        """Refuse, without writing anything, a file that is not one of our ledgers."""
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
        try:
            # Without a -wal file beside it the file is read as immutable: no -wal or -shm
            # file is created next to a file that may not be ours.
            wal = self.path.with_name(self.path.name + "-wal").exists()
            mode = "mode=ro" if wal else "mode=ro&immutable=1"
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True)
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            finally:
                db.close()
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"ledger {self.path} is corrupt: {error}") from None
        if app_id != APPLICATION_ID or not set(_TABLES) <= tables:
            raise LedgerError(
                f"{self.path} is an SQLite database without the tradenn ledger schema; "
                "refusing to touch it"
            )

    def _create(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _check_schema(self) -> None:
        problems = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if problems != "ok":
            raise LedgerError(f"ledger {self.path} is corrupt: {problems}")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = "none" if row is None else row[0]
            raise LedgerError(
                f"ledger {self.path} has schema version {found}; this tradenn reads version "
                f"{SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Close the file (committed state is already on disk)."""
        self._db.close()

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
        another run's positions.
        """
        params = {k: _jsonable(v) for k, v in sorted(params.items())}
        settings = {k: _jsonable(v) for k, v in sorted(settings.items())}
        info = self.run_info()
        if info is None:
            info = RunInfo(uuid.uuid4().hex, strategy, params, settings, feed)
            self._db.execute(
                "INSERT INTO run VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.run_id,
                    strategy,
                    json.dumps(params),
                    json.dumps(settings),
                    feed,
                    _stamp(pd.Timestamp.now(tz="UTC")),
                ),
            )
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
        recorded: every bar is processed exactly once. ``hook(phase)`` is called inside the
        transaction (``"mid"``, after some rows are written) for crash tests.
        """
        time = _stamp(bar.time)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
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
                " :stop_price, :sl, :tp, :tag, :status, :fill_time, :fill_price, :reason)"
                " ON CONFLICT(id) DO UPDATE SET status=excluded.status,"
                " fill_time=excluded.fill_time, fill_price=excluded.fill_price,"
                " reason=excluded.reason",
                bar.orders,
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
                " units=excluded.units, time=excluded.time",
                (bar.symbol, bar.units, time),
            )
            db.execute(
                "INSERT INTO equity VALUES (?, ?, ?, ?, ?, ?)",
                (bar.seq, time, bar.cash, bar.units, bar.equity, bar.target),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --------------------------------------------------------------------------- reading

    def bars(self) -> pd.DataFrame:
        """Every recorded bar, oldest first (index: timestamps; Open..Volume columns)."""
        frame = pd.read_sql_query(
            "SELECT time, open AS Open, high AS High, low AS Low, close AS Close,"
            " volume AS Volume FROM bars ORDER BY seq",
            self._db,
        )
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
