"""The paper-trading run loop: a backtest strategy, unchanged, fed one bar at a time.

The loop is the backtester's :class:`~tradenn.backtest.runner.Runner` over a feed. For each
new bar it

1. has the runner take the bar in (:meth:`~tradenn.backtest.runner.Runner.advance`): pending
   orders fill at the bar's open and over its range, the strategy decides at its close
   (``next()`` with indicators recomputed over the window of bars the runner keeps, or the
   target ``positions()`` gives, traded at the next open), and the margin is checked;
2. writes everything the bar changed to the ledger in one transaction keyed by the bar's
   timestamp, together with the runner's restart snapshot (account, strategy state, window).

Each bar therefore costs the same however long the run has been going. A restart reads the
snapshot and the window of bars it names, and continues with the first unseen bar: it costs the
same whatever the ledger's length. Each bar is processed exactly once whatever kills the
process: a bar's transaction either committed (its snapshot is the restart point) or did not
(the bar is fetched again). A strategy whose state cannot be snapshotted (see
:mod:`tradenn.live.state`), and a version 1 ledger, restart by replaying every recorded bar
instead.

Model and agent strategies train on their walk-forward schedule as the bars arrive. Each model
they train is written to ``LEDGER.models/`` (:mod:`tradenn.live.artifacts`) before the bar's
transaction, which records its name and hash; the snapshot names the model in use, so a
restart loads one file instead of retraining. A kill between the file and the transaction
leaves a file no committed bar names: the bar is processed again and trains the same model
again. ``warmup`` bars of history from the feed's source are stored first and read, not
traded; ``model`` starts the strategy from a model ``tradenn train`` saved.

:func:`verify` replays a whole ledger through a fresh runner and compares every order, fill
and equity row: ``tradenn paper verify``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from tradenn.backtest.runner import Runner, parameter_values
from tradenn.backtest.strategy import Strategy
from tradenn.errors import TradennError
from tradenn.live import state as snapshots
from tradenn.live.artifacts import ArtifactError, ArtifactStore, check_artifact, read_artifact
from tradenn.live.broker import SimulatedBroker, fill_row, order_row
from tradenn.live.feeds import Bar
from tradenn.live.ledger import BarRecord, Ledger, LedgerError

log = logging.getLogger("tradenn.live")

_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


class Feed(Protocol):
    """A source of completed bars (see :mod:`tradenn.live.feeds`)."""

    name: str

    def bars(self, after: pd.Timestamp | None, stop: threading.Event) -> Iterator[Bar]:
        """Completed bars strictly after ``after``, oldest first."""

    def history(self, n: int, stop: threading.Event | None = None) -> pd.DataFrame:
        """The ``n`` bars before trading starts (``--warmup``)."""


@dataclass(frozen=True)
class RunSummary:
    """What a call to :meth:`PaperTrader.run` did: ``replayed`` bars were already in the
    ledger (resumed from), ``processed`` new ones were added."""

    replayed: int
    processed: int
    last_time: pd.Timestamp | None
    equity: float
    units: float
    stopped: bool


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in _COLUMNS}, index=pd.DatetimeIndex([])
    )


class _Recorder:
    """Turns what the runner did on a bar into ledger rows: new orders, orders whose status
    changed, fills, the equity row and the snapshot."""

    def __init__(self, runner: Runner, symbol: str, interval: pd.Timedelta | None = None) -> None:
        self.runner = runner
        self.symbol = symbol
        self.interval = interval  # the feed's time between bars: training should fit in it
        self.slow_warned = False
        self.last_time: pd.Timestamp | None = None
        self.waiting: str | None = None  # the last "cannot decide yet" reason logged
        self.log_waiting = True
        # Pending orders as last written: id -> what _mutable reads.
        self.pending = {o.id: _mutable(o) for o in runner.book.orders}
        self.tracked = {o.id: o for o in runner.book.orders}
        self.snapshots = True

    def step(self, bar: Bar) -> BarRecord:
        runner = self.runner
        i = runner.bars
        time = pd.Timestamp(bar.time)
        self.last_time = time
        target = runner.advance(time, *bar[1:])
        if runner.waiting is not None and self.waiting is None and self.log_waiting:
            log.warning("%s; waiting for more data", runner.waiting)
        self.waiting = runner.waiting
        account = runner.account
        orders, fills = account.order_log, account.fills
        times = {i: time}  # every bar a new order or fill names is this one
        new = [order_row(o, times) for o in orders]
        updates = []
        for order_id, order in list(self.tracked.items()):
            now = _mutable(order)
            if now != self.pending[order_id]:
                updates.append(
                    {
                        "id": order_id,
                        "status": order.status,
                        "reason": order.reason,
                        "fill_time": None if order.fill_bar is None else _text(time),
                        "fill_price": order.fill_price,
                        "limit_price": order.limit,
                        "stop_price": order.stop,
                        "sl": order.sl,
                        "tp": order.tp,
                    }
                )
            if order.status == "pending":
                self.pending[order_id] = now
            else:
                del self.pending[order_id], self.tracked[order_id]
        for order in orders:
            if order.status == "pending":
                self.pending[order.id], self.tracked[order.id] = _mutable(order), order
        models = runner.store.drain() if runner.store is not None else []
        for model in models:
            self._log_model(model)
        record = BarRecord(
            seq=i,
            time=time,
            open=float(bar.open),
            high=float(bar.high),
            low=float(bar.low),
            close=float(bar.close),
            volume=float(bar.volume),
            cash=account.cash,
            units=runner.book.units,
            equity=account.equity(),
            target=target,
            symbol=self.symbol,
            orders=new,
            order_updates=updates,
            fills=[fill_row(f, time) for f in fills],
            state=self._snapshot(),
            models=models,
        )
        orders.clear()  # recorded: the ledger holds the history, the account the state
        fills.clear()
        return record

    def _log_model(self, record: dict[str, Any]) -> None:
        info = record["info"]
        if str(record["file"]).startswith("imported-"):
            data = info["data"]
            log.info(
                "model %s: %s trained offline on %s .. %s",
                record["file"],
                info.get("strategy"),
                data["first"],
                data["last"],
            )
            return
        seconds = info["seconds"]
        log.info(
            "model %s: %s trained on %s in %.2f s",
            record["file"],
            info.get("strategy"),
            trained_on(info),
            seconds,
        )
        interval = self.interval
        if interval is not None and seconds > interval.total_seconds() and not self.slow_warned:
            self.slow_warned = True
            log.warning(
                "training took %.2f s, longer than the %.3g s between the feed's bars: "
                "decisions will lag the bars while it retrains",
                seconds,
                interval.total_seconds(),
            )

    def _snapshot(self) -> str | None:
        if not self.snapshots:
            return None
        try:
            return snapshots.dumps_state(self.runner.state())
        except snapshots.StateError as error:
            log.warning("%s; restarts of this ledger will replay it", error)
            self.snapshots = False
            return None


def _text(time: pd.Timestamp) -> str:
    return pd.Timestamp(time).isoformat()


def _mutable(order) -> tuple:
    """What can change about a pending order: its state, and its prices (a trailing stop
    moves, a strategy edits a bracket)."""
    return (
        order.status,
        order.fill_bar,
        order.fill_price,
        order.reason,
        order.limit,
        order.stop,
        order.sl,
        order.tp,
    )


class PaperTrader:
    """Run a :class:`~tradenn.backtest.Strategy` on a feed, recording into a ledger.

    Parameters
    ----------
    strategy : type[Strategy]
        The strategy class, as given to :class:`~tradenn.backtest.Backtest`.
    broker_factory : callable
        Returns a :class:`SimulatedBroker` (its settings and symbol configure the account;
        they are bound to the ledger).
    ledger : Ledger
        The open ledger (new, or one this strategy with these parameters wrote before).
    feed : Feed
        Where bars come from.
    params : dict, optional
        Strategy parameters overriding the class defaults.
    stale_after : Timedelta, optional
        Warn when a bar arrives more than this long after its timestamp (live feeds).
    warmup : int
        On a new ledger, load this many bars of history from the feed (``feed.history``) and
        store them first: the strategy reads and trains on them and trades from the next bar.
    model : path, optional
        A model ``tradenn train`` saved for this strategy and parameters: a new run starts
        from it instead of waiting to train its first one.
    interval : Timedelta, optional
        The feed's time between bars; training that takes longer is warned about once.
    progress : bool
        Show progress bars while the strategy trains.
    on_step : callable, optional
        Called as ``on_step(phase, seq, stop)`` at each step of recording bar ``seq``:
        ``"saved"`` once a model file the bar trained is written, ``"before"`` its ledger
        transaction, ``"mid"`` inside it, ``"after"`` it; ``stop`` is the run's stop event.
        The crash tests kill the process from here.
    """

    def __init__(
        self,
        strategy: type[Strategy],
        broker_factory: Callable[[], SimulatedBroker],
        ledger: Ledger,
        feed: Feed,
        *,
        params: dict[str, Any] | None = None,
        stale_after: pd.Timedelta | None = None,
        warmup: int = 0,
        model: str | os.PathLike | None = None,
        interval: pd.Timedelta | None = None,
        progress: bool = False,
        on_step: Callable[[str, int, threading.Event], None] | None = None,
    ) -> None:
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            raise TradennError(
                f"paper trading runs single-asset strategies (Strategy subclasses); "
                f"{getattr(strategy, '__name__', strategy)!r} is not one"
            )
        self.strategy_class = strategy
        self.params = parameter_values(strategy, params or {})
        self.broker_factory = broker_factory
        self.ledger = ledger
        self.feed = feed
        self.stale_after = stale_after
        self.warmup = warmup
        self.model = model
        self.interval = interval
        self.progress = progress
        self.on_step = on_step
        self._seq = -1
        self._stop = threading.Event()

    def store(self) -> ArtifactStore:
        """The folder of this ledger's models (``LEDGER.models``)."""
        return ArtifactStore(models_folder(self.ledger), hook=self._model_hook)

    # ------------------------------------------------------------------------------ run

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        """Resume from the ledger, then process new bars until the feed ends or ``stop`` is
        set (checked after each bar)."""
        stop = self._stop = stop if stop is not None else threading.Event()
        self.broker = self.broker_factory()
        if self.model is not None:  # before the ledger is bound to this run
            header, _ = read_artifact(self.model)
            check_artifact(header, self.strategy_class.__name__, self.params, self.model)
        self.ledger.bind(
            self.strategy_class.__name__,
            self.params,
            _settings_record(self.broker),
            self.feed.name,
        )
        if self.warmup and self.ledger.counts()["bars"]:
            if self.warmup != self.ledger.history():
                log.warning(
                    "--warmup %d ignored: this ledger's run began with %d bars of history",
                    self.warmup,
                    self.ledger.history(),
                )
        elif self.warmup:
            history = self.feed.history(self.warmup, stop)
            if stop.is_set() or not len(history):
                return RunSummary(0, 0, None, self.broker.settings.cash, 0.0, True)
            self.ledger.record_history(history)
            log.info(
                "loaded %d bars of history (%s .. %s); trading starts with the next bar",
                len(history),
                history.index[0],
                history.index[-1],
            )
        recorder, resumed, last = self._resume()
        recorder.interval = self.interval
        if self.model is not None:
            self._use_model(recorder)
        self.broker.attach(recorder.runner.account)
        processed = 0
        for bar in self.feed.bars(last, stop):
            time = pd.Timestamp(bar.time)
            if last is not None and time <= last:
                log.warning("skipped bar %s: not after the last bar %s", time, last)
                continue
            if self.stale_after is not None:
                now = pd.Timestamp.now(tz=time.tz)
                if now - time > self.stale_after:
                    log.warning("stale data: bar %s arrived %s after its time", time, now - time)
            seq = self._seq = recorder.runner.bars
            self._fire("before", seq, stop)
            record = recorder.step(Bar(time, *bar[1:]))
            self.ledger.record(record, hook=lambda phase, s=seq: self._fire(phase, s, stop))
            self._fire("after", seq, stop)
            self._log(record)
            last = time
            processed += 1
            if stop.is_set():
                break
        return RunSummary(
            resumed, processed, last, self.broker.equity, self.broker.units, stop.is_set()
        )

    def _use_model(self, recorder: _Recorder) -> None:
        """Start from ``self.model``, unless this run already traded with its own."""
        strategy = recorder.runner.strategy
        if recorder.runner.bars > self.ledger.history():
            log.warning("--model %s ignored: this ledger's run continues with its own", self.model)
            return
        use = getattr(strategy, "use_model", None)
        if use is None:
            raise TradennError(f"{self.strategy_class.__name__} trains no model; drop --model")
        header = use(self.model)
        log.info(
            "starting from %s: %s trained on %s .. %s",
            self.model,
            header["strategy"],
            header["data"]["first"],
            header["data"]["last"],
        )

    def _resume(self) -> tuple[_Recorder, int, pd.Timestamp | None]:
        """The recorder at the ledger's last bar: from its snapshot, or by replay."""
        self.ledger.check()
        saved = self.ledger.state()
        symbol = self.broker.symbol
        store = self.store()
        if saved is None or saved[1] is None:
            recorder = _replay(
                self.strategy_class, self.params, self.broker, self.ledger, store, self.progress
            )
            bars = recorder.runner.bars
            if bars > self.ledger.history():
                _check_last(self.ledger, recorder.runner, self.ledger.last())
                log.info("resumed %s by replaying its %d bars", self.ledger.path, bars)
            return recorder, bars, recorder.last_time
        seq, text = saved
        try:
            state = snapshots.loads_state(text)
            window = self.ledger.bars(last=state["window"])
            runner = Runner.resume(
                self.strategy_class,
                self.params,
                self.broker.settings,
                state,
                window,
                store=store,
                progress=self.progress,
            )
        except ArtifactError:
            raise
        except (ValueError, KeyError, TypeError, snapshots.StateError) as error:
            raise LedgerError(
                f"ledger {self.ledger.path}: unreadable restart state ({error}); "
                "tradenn paper verify checks the ledger"
            ) from None
        recorder = _Recorder(runner, symbol)
        _check_last(self.ledger, runner, self.ledger.last())
        log.info(
            "resumed %s at bar #%d (%s): position %g, equity %.2f",
            self.ledger.path,
            seq,
            window.index[-1],
            runner.book.units,
            runner.account.equity(),
        )
        return recorder, runner.bars, window.index[-1]

    # --------------------------------------------------------------------------- output

    def _log(self, record: BarRecord) -> None:
        log.info(
            "%s close %.6g position %g equity %.2f",
            record.time,
            record.close,
            record.units,
            record.equity,
        )
        for row in record.orders + record.order_updates:
            if row["status"] == "rejected":
                log.warning("order #%d rejected: %s", row["id"], row["reason"])
        for row in record.orders:
            if row["status"] == "pending":
                size = "all-in" if row["size"] is None else f"{row['size']:g}"
                log.info(
                    "order #%d %s %s size %s placed", row["id"], row["side"], row["type"], size
                )
        for row in record.fills:
            log.info(
                "fill #%d: order #%d %s %g @ %.6g commission %.2f",
                row["id"],
                row["order_id"],
                row["side"],
                row["units"],
                row["price"],
                row["commission"],
            )

    def _model_hook(self, record: dict[str, Any]) -> None:
        """A model file of the bar being processed (the one after the last recorded) is
        written: the ``"saved"`` step."""
        self._fire("saved", self._seq, self._stop)

    def _fire(self, phase: str, seq: int, stop: threading.Event) -> None:
        if self.on_step is not None:
            self.on_step(phase, seq, stop)


def _settings_record(broker: SimulatedBroker) -> dict[str, Any]:
    """The settings a ledger is bound to (the account's, without the portfolio-only one)."""
    record = broker.settings.to_dict()
    record.pop("max_leverage", None)
    record.pop("trade_on_close", None)
    return record


def trained_on(info: dict[str, Any]) -> str:
    """What a model was trained on, from its record: the samples and their decision bars (a
    forecaster) or the bars (an agent)."""
    if "samples" in info:
        return f"{info['samples']} samples ({info['train_first']} .. {info['train_last']})"
    data = info["data"]
    return f"{data['bars']} bars ({data['first']} .. {data['last']})"


def models_folder(ledger: Ledger) -> Path:
    """Where the models of ``ledger``'s run are kept: ``LEDGER.models`` beside it."""
    return ledger.path.with_name(ledger.path.name + ".models")


def _new_recorder(
    strategy, params, broker: SimulatedBroker, ledger: Ledger, store=None, progress=False
) -> tuple[_Recorder, pd.DataFrame]:
    """A recorder whose runner has read the ledger's history bars; and the bars after them."""
    bars = ledger.bars()
    history = ledger.history()
    runner = Runner(
        strategy,
        params,
        broker.settings,
        bars.iloc[:history] if history else _empty_frame(),
        live=True,
        store=store,
        progress=progress,
    )
    recorder = _Recorder(runner, broker.symbol)
    if history:
        recorder.last_time = bars.index[history - 1]
    return recorder, bars.iloc[history:]


def _replay(
    strategy, params, broker: SimulatedBroker, ledger: Ledger, store=None, progress=False
) -> _Recorder:
    """A recorder that has stepped through every bar of ``ledger`` (writing nothing but the
    models it retrains, which are the files the ledger names)."""
    recorder, bars = _new_recorder(strategy, params, broker, ledger, store, progress)
    for time, row in zip(bars.index, bars.itertuples(index=False), strict=True):
        recorder.step(Bar(time, *row))
    if store is not None:
        store.drain()  # the retrained files are the ones the ledger already names
    return recorder


def _check_last(ledger: Ledger, runner: Runner, last: dict[str, Any] | None) -> None:
    """The account the runner resumes with must be the one the ledger's last bar recorded."""
    where = f"ledger {ledger.path}"
    account = {"cash": runner.account.cash, "units": runner.book.units}
    for key, value in account.items():
        theirs = None if last is None else last[key]
        if theirs != value:
            raise LedgerError(
                f"{where}: resuming gives {key} {value!r}, its last bar says {theirs!r}; "
                "was the ledger changed? (tradenn paper verify checks it whole)"
            )


def verify(strategy: type[Strategy], broker: SimulatedBroker, ledger: Ledger) -> str | None:
    """Replay every bar of ``ledger`` through a fresh runner; None when every order, fill
    and equity row equals the ledger's, else a sentence naming the first difference."""
    with tempfile.TemporaryDirectory() as scratch:
        return _verify(strategy, broker, ledger, ArtifactStore(scratch))


def _verify(strategy, broker: SimulatedBroker, ledger: Ledger, store: ArtifactStore) -> str | None:
    info = ledger.run_info()
    params = parameter_values(strategy, info.params if info else {})
    recorder, bars = _new_recorder(strategy, params, broker, ledger, store)
    recorder.log_waiting = False  # the run logged it
    stored_models = ledger.models()
    if len(stored_models) and str(stored_models["file"].iloc[0]).startswith("imported-"):
        imported = models_folder(ledger) / stored_models["file"].iloc[0]
        recorder.runner.strategy.use_model(imported)
    models: list[tuple] = []
    orders: dict[int, dict[str, Any]] = {}
    fills: list[dict[str, Any]] = []
    equity: list[tuple] = []
    for time, row in zip(bars.index, bars.itertuples(index=False), strict=True):
        record = recorder.step(Bar(time, *row))
        for new in record.orders:
            orders[new["id"]] = new
        for update in record.order_updates:
            orders[update["id"]].update(update)
        fills.extend(record.fills)
        models.extend((record.seq, m["file"], m["sha256"]) for m in record.models)
        equity.append((record.seq, record.cash, record.units, record.equity, record.target))
    stored = ledger.equity()
    mine = {
        "orders": [orders[k] for k in sorted(orders)],
        "fills": fills,
    }
    for k, (seq, cash, units, value, target) in enumerate(equity):
        if k >= len(stored):
            return f"replay has bar #{seq} which the ledger's equity table lacks"
        row = stored.iloc[k]
        theirs = (
            int(row["seq"]),
            row["cash"],
            row["units"],
            row["equity"],
            None if pd.isna(row["target"]) else row["target"],
        )
        if theirs != (seq, cash, units, value, target):
            return (
                f"bar #{seq} ({bars.index[k]}): replay gives cash {cash!r}, units {units!r}, "
                f"equity {value!r}; the ledger says cash {theirs[1]!r}, units {theirs[2]!r}, "
                f"equity {theirs[3]!r}"
            )
    recorded = list(
        zip(
            stored_models["seq"].tolist(),
            stored_models["file"],
            stored_models["sha256"],
            strict=True,
        )
    )
    if models != recorded:
        k = next(
            (k for k, (a, b) in enumerate(zip(models, recorded, strict=False)) if a != b),
            min(len(models), len(recorded)),
        )
        mine_k = models[k] if k < len(models) else None
        theirs_k = recorded[k] if k < len(recorded) else None
        return (
            f"model #{k + 1}: replay trains {_model_text(mine_k)}, the ledger recorded "
            f"{_model_text(theirs_k)}"
        )
    for table, rows in mine.items():
        stored_rows = ledger.rows(table)
        if stored_rows != rows:
            k = next(
                (k for k, (a, b) in enumerate(zip(rows, stored_rows, strict=False)) if a != b),
                min(len(rows), len(stored_rows)),
            )
            return (
                f"replay gives {len(rows)} {table}, the ledger has {len(stored_rows)}; they "
                f"differ at {table[:-1]} #{k + 1}"
            )
    return None


def _model_text(model: tuple | None) -> str:
    if model is None:
        return "none"
    seq, file, sha = model
    return f"{file} at bar #{seq} (SHA-256 {sha[:12]})"
