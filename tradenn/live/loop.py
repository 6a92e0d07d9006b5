"""The paper-trading run loop: a backtest strategy, unchanged, fed one bar at a time.

For each new bar the loop

1. appends it to the broker, which fills what was pending at this bar's open (as the
   backtester does),
2. runs the strategy's decision for this bar on the data up to it: ``next()`` (indicators
   recomputed on the bars so far, which equals the backtest's values since indicators are
   causal), or for a ``positions()`` strategy the target at this bar, whose change is traded at
   the next bar's open as the backtester's vectorized path does,
3. writes everything the bar changed to the ledger in one transaction keyed by the bar's
   timestamp.

On restart the bars already in the ledger are replayed through the strategy and a fresh broker
without writing anything; the account that comes out must equal the ledger's (else
:class:`~tradenn.live.ledger.LedgerError`), and the loop continues with the first unseen bar.
Each bar is processed exactly once whatever kills the process: a bar's transaction either
committed (the bar is replayed) or did not (the bar is fetched again).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from tradenn.backtest.engine import _targets, _warmup
from tradenn.backtest.series import BarData, BarSeries
from tradenn.backtest.strategy import Strategy
from tradenn.errors import TradennError
from tradenn.live.broker import Bar, SimulatedBroker, fill_row, order_row
from tradenn.live.ledger import BarRecord, Ledger, LedgerError

log = logging.getLogger("tradenn.live")

HOOK_ENV = "TRADENN_LIVE_TEST_HOOK"
"""Crash-test hook: ``kill-before@N``, ``kill-mid@N``, ``kill-after@N`` (SIGKILL the process
before, inside or after bar N's transaction) or ``pause@N`` (after bar N, wait for a stop)."""


class Feed(Protocol):
    """A source of completed bars (see :mod:`tradenn.live.feeds`)."""

    name: str

    def bars(self, after: pd.Timestamp | None, stop: threading.Event) -> Iterator[Bar]:
        """Completed bars strictly after ``after``, oldest first."""


@dataclass(frozen=True)
class RunSummary:
    """What a call to :meth:`PaperTrader.run` did."""

    replayed: int
    processed: int
    last_time: pd.Timestamp | None
    equity: float
    units: float
    stopped: bool


class PaperTrader:
    """Run a :class:`~tradenn.backtest.Strategy` on a feed, recording into a ledger.

    Parameters
    ----------
    strategy : type[Strategy]
        The strategy class, as given to :class:`~tradenn.backtest.Backtest`.
    broker_factory : callable
        Returns a fresh :class:`SimulatedBroker` (called once per run; its settings are bound
        to the ledger).
    ledger : Ledger
        The open ledger (new, or one this strategy with these parameters wrote before).
    feed : Feed
        Where bars come from.
    params : dict, optional
        Strategy parameters overriding the class defaults.
    stale_after : Timedelta, optional
        Warn when a bar arrives more than this long after its timestamp (live feeds).
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
    ) -> None:
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            raise TypeError(f"PaperTrader: strategy must be a Strategy subclass, got {strategy!r}")
        known = strategy.parameters()
        unknown = sorted(set(params or {}) - set(known))
        if unknown:
            listed = ", ".join(known) or "none"
            raise TradennError(
                f"{strategy.__name__} has no parameter {unknown[0]!r}; its parameters: {listed}"
            )
        self.strategy_class = strategy
        self.params = {**known, **(params or {})}
        self.broker_factory = broker_factory
        self.ledger = ledger
        self.feed = feed
        self.stale_after = stale_after
        self.vectorized = hasattr(strategy, "positions")
        self._hook = _parse_hook(os.environ.get(HOOK_ENV, ""))

    # ------------------------------------------------------------------------------ run

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        """Replay the ledger, then process new bars until the feed ends or ``stop`` is set
        (checked after each bar)."""
        stop = stop if stop is not None else threading.Event()
        self._reset()
        self.ledger.bind(
            self.strategy_class.__name__, self.params, self.broker.settings, self.feed.name
        )
        replayed = self._replay()
        last = self.broker.times[-1] if self.broker.times else None
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
            seq = len(self.broker.times)
            self._fire("before", seq, stop)
            record = self._step(Bar(time, *bar[1:]))
            self.ledger.record(record, hook=lambda phase, s=seq: self._fire(phase, s, stop))
            self._fire("after", seq, stop)
            self._log(record)
            last = time
            processed += 1
            if stop.is_set():
                break
        return RunSummary(
            replayed,
            processed,
            last,
            self.broker.equity,
            self.broker.units,
            stop.is_set(),
        )

    def _reset(self) -> None:
        self.broker = self.broker_factory()
        self._strategy: Strategy | None = None
        self._last_target = 0.0
        self._recorded = 0  # orders in the broker's log that the ledger has
        self._pending_rows: dict[int, dict[str, Any]] = {}  # last rows of pending orders
        self._init_warned = False

    # --------------------------------------------------------------------------- replay

    def _replay(self) -> int:
        """Rebuild strategy and broker from the ledger's bars; check they match the ledger."""
        bars = self.ledger.bars()
        if bars.empty:
            return 0
        for time, row in zip(bars.index, bars.itertuples(index=False), strict=True):
            self._step(Bar(time, *row))
        where = f"ledger {self.ledger.path}"
        why = "; was the strategy's code or the ledger changed?"
        last = self.ledger.last()
        account = {"cash": self.broker.cash, "units": self.broker.units}
        for key, value in account.items():
            if last is None or last[key] != value:
                theirs = None if last is None else last[key]
                raise LedgerError(
                    f"{where}: replaying its {len(bars)} bars gives {key} {value!r}, the ledger "
                    f"says {theirs!r}{why}"
                )
        mine = {
            "orders": [
                order_row(k + 1, o, self.broker.times) for k, o in enumerate(self.broker.order_log)
            ],
            "fills": [fill_row(f, self.broker.times) for f in self.broker.fills],
        }
        for table, rows in mine.items():
            stored = self.ledger.rows(table)
            if stored != rows:
                k = next(
                    (k for k, (a, b) in enumerate(zip(rows, stored, strict=False)) if a != b),
                    min(len(rows), len(stored)),
                )
                raise LedgerError(
                    f"{where}: replaying its bars gives {len(rows)} {table}, the ledger has "
                    f"{len(stored)}; they differ at {table[:-1]} #{k + 1}{why}"
                )
        log.info(
            "resumed %s: %d bars replayed, last %s, position %g, equity %.2f",
            self.ledger.path,
            len(bars),
            bars.index[-1],
            self.broker.units,
            self.broker.equity,
        )
        return len(bars)

    # --------------------------------------------------------------------------- one bar

    def _step(self, bar: Bar) -> BarRecord:
        """Process one bar (fill, decide, margin check); return what it changed."""
        broker = self.broker
        before = len(broker.fills)
        broker.process_bar(bar)
        i = broker.clock.i
        target = None
        if not broker.halted:
            if self.vectorized:
                target = self._decide_target(i)
            else:
                self._decide_next(i)
            broker.check_margin()
        return BarRecord(
            seq=i,
            time=broker.times[i],
            open=broker._open[i],
            high=broker._high[i],
            low=broker._low[i],
            close=broker._close[i],
            volume=broker._volume[i],
            cash=broker.cash,
            units=broker.units,
            equity=broker.equity,
            target=target,
            symbol=broker.symbol,
            orders=self._changed_orders(),
            fills=[fill_row(f, broker.times) for f in broker.fills[before:]],
        )

    def _new_strategy(self, frame: pd.DataFrame) -> Strategy:
        live = type(
            self.strategy_class.__name__, (self.strategy_class,), {"I": _causal_by_construction}
        )
        return live(
            self.broker.core, BarData(frame, self.broker.clock), self.broker.clock, self.params
        )

    def _decide_next(self, i: int) -> None:
        """Indicators on the bars so far, then ``next()`` once they all have values.

        ``init()`` runs again on every bar to extend the indicators; what ``next()`` stored on
        the strategy (and anything ``init()`` set that is not an indicator) is kept, so the
        strategy behaves as if ``init()`` had run once on the whole history, as in a backtest.
        """
        clock = self.broker.clock
        frame = self.broker.frame()
        strategy = self._strategy
        if strategy is None:
            strategy = self._strategy = self._new_strategy(frame)
            saved: dict[str, Any] = {}
        else:
            saved = dict(vars(strategy))
            strategy.data = BarData(frame, clock)
            strategy._indicators = []
        clock.i = -1  # nothing is revealed during init(), as in the backtester
        try:
            strategy.init()
        except (ValueError, TypeError, IndexError, TradennError) as error:
            if not self._init_warned:
                log.warning(
                    "%s.init() failed on %d bars (%s); waiting for more data",
                    self.strategy_class.__name__,
                    i + 1,
                    error,
                )
                self._init_warned = True
            vars(strategy).update(saved)
            return
        finally:
            clock.i = i
        for key, old in saved.items():
            if key not in ("data", "_indicators") and not _is_indicator(vars(strategy).get(key)):
                setattr(strategy, key, old)
        if i >= _warmup(strategy, i + 1):
            strategy.next()

    def _decide_target(self, i: int) -> float:
        """The target exposure at this bar's close; a change is traded at the next open."""
        frame = self.broker.frame()
        if self._strategy is None:
            self._strategy = self._new_strategy(frame)
        name = self.strategy_class.__name__
        w = float(_targets(self._strategy.positions(frame.copy()), i + 1, name)[i])
        if w != self._last_target:
            self.broker.pending_target = w
        self._last_target = w
        return w

    def _changed_orders(self) -> list[dict[str, Any]]:
        """Ledger rows for orders placed since the last bar and pending orders that changed."""
        times = self.broker.times
        log_ = self.broker.order_log
        rows = []
        for order_id, previous in list(self._pending_rows.items()):
            row = order_row(order_id, log_[order_id - 1], times)
            if row != previous:
                rows.append(row)
                self._track(row)
        for k in range(self._recorded, len(log_)):
            row = order_row(k + 1, log_[k], times)
            rows.append(row)
            self._track(row)
        self._recorded = len(log_)
        return rows

    def _track(self, row: dict[str, Any]) -> None:
        if row["status"] == "pending":
            self._pending_rows[row["id"]] = row
        else:
            self._pending_rows.pop(row["id"], None)

    # --------------------------------------------------------------------------- output

    def _log(self, record: BarRecord) -> None:
        log.info(
            "%s close %.6g position %g equity %.2f",
            record.time,
            record.close,
            record.units,
            record.equity,
        )
        for row in record.orders:
            if row["status"] == "rejected":
                log.warning(
                    "order #%d %s %s rejected: %s",
                    row["id"],
                    row["side"],
                    row["type"],
                    row["reason"],
                )
            elif row["placed_time"] == record.time.isoformat() and row["status"] == "pending":
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

    def _fire(self, phase: str, seq: int, stop: threading.Event) -> None:
        """The crash-test hook (``TRADENN_LIVE_TEST_HOOK``); does nothing unless set."""
        if self._hook is None or self._hook[1] != seq:
            return
        action = self._hook[0]
        if action == f"kill-{phase}":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "pause" and phase == "after":
            print(f"tradenn-test-hook: paused after bar {seq}", file=sys.stderr, flush=True)
            stop.wait(60)


def _parse_hook(text: str) -> tuple[str, int] | None:
    if not text:
        return None
    action, _, bar = text.partition("@")
    if action not in ("kill-before", "kill-mid", "kill-after", "pause") or not bar.isdigit():
        raise TradennError(f"{HOOK_ENV}={text!r}: expected kill-before|kill-mid|kill-after|pause@N")
    return action, int(bar)


def _is_indicator(value: Any) -> bool:
    if isinstance(value, BarSeries):
        return True
    return (
        isinstance(value, tuple | list)
        and bool(value)
        and all(isinstance(v, BarSeries) for v in value)
    )


def _causal_by_construction(self: Strategy, func, *args, name=None, check_lookahead=True, **kw):
    """``Strategy.I`` without the look-ahead check: live data has no future bars to peek at."""
    return super(type(self), self).I(func, *args, name=name, check_lookahead=False, **kw)
