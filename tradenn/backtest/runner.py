"""The runners: reveal bars one at a time to a strategy and trade through the account.
:class:`Runner` steps a single-asset strategy, :class:`PortfolioRunner` a portfolio strategy
over a panel. A backtest is the runner over a finished frame; the paper loop is the same runner over
a feed (:meth:`Runner.advance`, one bar at a time); ``check_lookahead`` reruns it on truncated
and perturbed frames.

Per bar ``i`` (open ``O``, high ``H``, low ``L``, close ``C``), always in this order:

1. orders pending from earlier bars fill at ``O`` and over the bar's range
   (:meth:`~tradenn.account.Account.process_bar`); a ``positions()`` target decided
   at bar ``i - 1`` is traded at ``O``;
2. the strategy decides at the close: ``next()`` once every indicator has a value (the
   warm-up), or the target ``positions()`` gives for bar ``i``;
3. with ``trade_on_close`` what it decided fills at ``C``;
4. if equity at ``C`` is <= 0 the account is liquidated there and trading stops.

**Finished frames** (:meth:`Runner.run`). Indicators are computed once over the whole frame;
``next()`` runs for every bar after the warm-up. ``positions()`` is called once on the whole
frame (and on its first third and two thirds, of at most 20,000 bars, to prove it causal), and
only the bars where the
target changes are stepped: nothing else can happen between them, so the loop is over
changes, not bars.

**Live bars** (:meth:`Runner.advance`). Nothing later exists, so there is nothing to check;
instead each bar costs the same however long the run: the runner keeps a trailing window of
bars and recomputes each indicator (or ``positions()``) over that window only. Until the
strategy's warm-up is complete the window is the whole history; then it is fixed at
``history_bars`` (a strategy class attribute; ``"all"`` keeps every bar) or, by default, the
larger of :data:`DEFAULT_HISTORY` and four times the warm-up. Rolling indicators over the
window equal the whole-history ones to rounding; recursive smoothers (EMA, RSI) forget their start
geometrically and agree after a few hundred bars. A strategy with longer memory sets
``history_bars``.

A strategy may answer the live question "what target now?" directly with ``target_now(frame)``
(the model strategies do: they forecast the last bar only and retrain on their schedule);
otherwise the runner takes the last value of ``positions()`` over the window. A history frame
given to a live runner (``tradenn paper run --warmup``) is there to be read, not traded: the
first decision is at the first bar :meth:`Runner.advance` takes in.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from tradenn.account import Account, Record, Settings, trade_targets
from tradenn.backtest.series import (
    BarData,
    BarWindow,
    Clock,
    LookAheadError,
    PanelData,
    check_causal,
    check_cuts,
)
from tradenn.backtest.strategy import Strategy, StrategyBase
from tradenn.data.panel import panel_assets
from tradenn.errors import BacktestError, StrategyFailure, TradennError, raised_at

__all__ = [
    "DEFAULT_HISTORY",
    "PanelPrices",
    "PortfolioRunner",
    "Runner",
    "TooFewBarsWarning",
    "parameter_values",
    "rebalance_schedule",
    "target_array",
    "warmup",
]

DEFAULT_HISTORY = 1000
"""Bars the paper loop keeps at least, when the strategy does not say (``history_bars``)."""

_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


def parameter_values(strategy: type[StrategyBase], params: Mapping[str, Any]) -> dict[str, Any]:
    """The strategy's parameters with ``params`` applied; an unknown name is an error."""
    known = strategy.parameters()
    unknown = sorted(set(params) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise BacktestError(
            f"{strategy.__name__} has no parameter {unknown[0]!r}; its parameters: {listed}"
        )
    values = {**known, **params}
    try:
        strategy.check_parameters(values)
    except (ValueError, TypeError) as error:
        raise BacktestError(f"{strategy.__name__}: {error}") from None
    return values


def warmup(strategy: Strategy, n: int) -> int:
    """First bar at which every indicator has a value (``next()`` starts there)."""
    start = 0
    for indicator in strategy.indicators:
        for series in indicator.series:
            values = series.full()
            if values.dtype == bool:
                continue
            valid = np.flatnonzero(~np.isnan(values))
            start = max(start, int(valid[0]) if len(valid) else n)
    return start


_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def _private(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for a strategy to do as it likes with: a shallow copy where pandas copies on
    write (pandas 3: changing it copies what changes, the data stays untouched), a deep copy
    otherwise."""
    return frame.copy(deep=not _COPY_ON_WRITE)


@contextlib.contextmanager
def fewer_collections(every: int = 50_000):
    """Run the block with Python's cyclic garbage collector triggered every ``every``
    allocations instead of every 700, and blind to the objects that existed before it
    (``gc.freeze``, unless someone else froze objects already). An event loop creates an order,
    a fill and a lot per trade that live to the end of the run; re-scanning them, and whatever
    else the process holds, cost a fifth of a long backtest. Garbage is still collected, only
    less often; the thresholds and the frozen objects are restored afterwards."""
    before = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    gc.set_threshold(max(every, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if freeze:
            gc.unfreeze()


class TooFewBarsWarning(UserWarning):
    """The data ends before a strategy's indicators have a value: it makes no decision."""


def strategy_file(strategy: type) -> str:
    """The file a strategy class was defined in ('' when unknown)."""
    try:
        return inspect.getsourcefile(strategy) or ""
    except (TypeError, OSError):
        return ""


def target_array(raw: Any, n: int, label: str) -> np.ndarray:
    """``positions()`` output as ``n`` floats in [-1, 1] (NaN: no view yet, flat)."""
    values = np.asarray(raw.to_numpy() if isinstance(raw, pd.Series) else raw, dtype=np.float64)
    if values.shape != (n,):
        raise BacktestError(f"{label}.positions returned shape {values.shape}; expected ({n},)")
    values = np.nan_to_num(values, nan=0.0)
    bad = np.flatnonzero((values < -1) | (values > 1) | ~np.isfinite(values))
    if len(bad):
        raise BacktestError(
            f"{label}.positions must lie in [-1, 1]; got {values[bad[0]]:g} at bar {bad[0]}"
        )
    return values


def _where(cls: type, error: BaseException) -> str:
    """``FILE, line N`` of the strategy class's file where ``error`` was raised."""
    where = strategy_file(cls)
    line = raised_at(error, where) if where else None
    return f"{where}, line {line}" if line is not None else (where or "unknown file")


def setup_rejected(cls: type, error: BaseException) -> BacktestError:
    """A ValueError or TypeError from a strategy's setup (``init``, ``positions``,
    ``weights``): the strategy rejecting its parameters or data, as one line (exit code 2)
    naming the class and where in its file."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return BacktestError(f"{cls.__name__} ({_where(cls, error)}): {message}")


def strategy_failure(
    cls: type,
    error: BaseException,
    hook: str,
    bar: int | None = None,
    index: pd.Index | None = None,
) -> StrategyFailure:
    """``error`` raised by strategy ``cls``'s ``hook`` (at ``bar`` of ``index``), as one line
    naming the class, its file and the line that raised."""
    at = ""
    if bar is not None and index is not None and 0 <= bar < len(index):
        at = f" at bar {bar} ({index[bar]})"
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return StrategyFailure(
        f"{cls.__name__}.{hook} ({_where(cls, error)}) raised {type(error).__name__}"
        f"{': ' + message if message else ''}{at}"
    )


class Runner:
    """One single-asset strategy stepping through bars against one :class:`Account`.

    Parameters
    ----------
    strategy : type[Strategy]
        The strategy class.
    params : mapping
        Its parameter values (complete: see :func:`parameter_values`).
    settings : Settings
        The account's settings.
    frame : DataFrame
        The bars: a finished frame for :meth:`run`, or the history so far (possibly empty)
        for :meth:`advance`.
    live : bool
        Bars arrive one at a time through :meth:`advance` (the paper loop).
    vectorized : bool, optional
        Use ``positions()`` (True) or ``next()`` (False); by default ``positions()`` when the
        strategy defines it.
    store : object, optional
        Where a live strategy saves its models (the paper loop's
        :class:`~tradenn.live.artifacts.ArtifactStore`); set as ``strategy.store``.
    progress : bool
        Let the strategy's training show progress bars (``strategy.progress``).
    check : bool
        Prove ``positions()`` causal in :meth:`run` (see :meth:`targets`).
    arrays : dict, optional
        ``frame``'s columns as arrays, when the caller already has them (a sweep reuses them).
    """

    def __init__(
        self,
        strategy: type[Strategy],
        params: Mapping[str, Any],
        settings: Settings,
        frame: pd.DataFrame,
        *,
        live: bool = False,
        vectorized: bool | None = None,
        asset: str = "asset",
        store: Any = None,
        progress: bool = False,
        check: bool = True,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.strategy_class = strategy
        self.check = check
        self.store = store
        self.progress = progress
        self.params = dict(params)
        self.settings = settings
        self.live = live
        self.vectorized = hasattr(strategy, "positions") if vectorized is None else vectorized
        self.account = Account(settings, [asset])
        (self.book,) = self.account.books.values()
        self.clock = Clock(-1)  # nothing is revealed during init(): indicators go through self.I
        self.frame = frame
        self.window = BarWindow(frame) if live else None
        if live:
            self.book.bars = self._window_bars
        self.strategy = strategy(
            self.account,
            BarData(frame, self.clock, live=live, arrays=arrays),
            self.clock,
            self.params,
        )
        self.strategy.store, self.strategy.progress = store, progress
        # Live state: bars seen, the window kept, whether next() has started, the target.
        self.bars = len(frame)
        self.history = strategy.history_bars
        self.started = False
        self.ready = False
        self.waiting: str | None = None  # why the strategy cannot decide yet (live bars)
        self.target = 0.0
        self.pending_target: float | None = None

    @property
    def name(self) -> str:
        return self.strategy_class.__name__

    def _call(self, method, *args):
        """A strategy hook; a ValueError or TypeError is the strategy rejecting its setup,
        anything else its code failing (:class:`StrategyFailure`, naming where)."""
        try:
            return method(*args)
        except (ValueError, TypeError) as error:
            raise setup_rejected(self.strategy_class, error) from error
        except TradennError:
            raise
        except Exception as error:
            raise self._failure(error, method.__name__, None) from error

    def _failure(self, error: BaseException, hook: str, bar: int | None) -> StrategyFailure:
        """``error`` raised by the strategy's ``hook`` (at ``bar``)."""
        return strategy_failure(self.strategy_class, error, hook, bar, self.frame.index)

    # ------------------------------------------------------------------- finished frames

    def run(self, *, finalize: bool = False) -> Record:
        """Step through the whole frame (a backtest) and return what the account did;
        ``finalize`` closes what is still open at the last close (``"end of data"``)."""
        if self.vectorized:
            close = self.frame["Close"].to_numpy(dtype=np.float64)
            on_close = self.settings.trade_on_close
            quotes = close if on_close else self.frame["Open"].to_numpy(dtype=np.float64)
            return trade_targets(
                self.settings,
                self.book.costs,
                self.targets(),
                quotes,
                close,
                delay=0 if on_close else 1,
                finalize=finalize,
            )
        self._run_events()
        account, book = self.account, self.book
        if finalize and book.trades and not account.halted:
            last = len(self.frame) - 1
            account.bar = last
            close = float(self.frame["Close"].iloc[-1])
            account.liquidate(last, {book.name: close}, "end of data")
        return Record.of(account, book)

    def _run_events(self) -> None:
        strategy, account, book, clock = self.strategy, self.account, self.book, self.clock
        self._call(strategy.init)
        frame = self.frame
        n = len(frame)
        start = warmup(strategy, n)
        if start >= n and not self.live:
            source = frame.attrs.get("source", "the data")
            warnings.warn(
                f"{source} has {n} bars; {self.name}'s indicators have no value by the last "
                "one, so it makes no decision (give it more bars)",
                TooFewBarsWarning,
                stacklevel=2,
            )
        opens, highs, lows, closes = (
            frame[c].to_numpy(dtype=np.float64).tolist() for c in _COLUMNS[:4]
        )  # Python floats: cheaper to index and compare in the loop
        next_, on_close = strategy.next, self.settings.trade_on_close
        book.bars = lambda start, stop: (highs[start:stop], lows[start:stop], closes[start:stop])
        i = -1
        try:
            for i in range(n):  # bars are sequential: each decision sees the account as left
                clock.i = account.bar = i
                book.last_close = closes[i]
                if book.orders or book.trailing:
                    account.process_bar(book, i, opens[i], highs[i], lows[i])
                if i >= start:
                    next_()
                    if on_close and book.orders:
                        account.process_close(book, i, closes[i])
                # Equity = cash + units x close is gone past a known price; check that instead.
                if not account.ruin_low < closes[i] < account.ruin_high:
                    account.liquidate(i, {book.name: closes[i]}, "margin call: equity exhausted")
                    account.halted = True
                    break
        except TradennError:
            raise
        except Exception as error:
            raise self._failure(error, "next", i) from error

    def targets(self) -> np.ndarray:
        """``positions()`` on the whole frame, proved causal on the prefixes that
        :func:`~tradenn.backtest.series.check_cuts` gives (the values there must not change)
        unless the runner was made with ``check=False``."""
        frame, n = self.frame, len(self.frame)
        targets = target_array(self._call(self.strategy.positions, _private(frame)), n, self.name)
        cuts = check_cuts(n) if self.check else []
        for cut in cuts:
            early = target_array(
                self._call(self.strategy.positions, _private(frame.iloc[:cut])), cut, self.name
            )
            try:
                check_causal(targets[:cut], early, f"{self.name}.positions")
            except LookAheadError as error:
                raise LookAheadError(str(error).replace("indicator ", "")) from None
        return targets

    # ------------------------------------------------------------------- live bars

    def advance(
        self, time: pd.Timestamp, open_: float, high: float, low: float, close: float, volume: float
    ) -> float | None:
        """Take in one new bar: fill what was pending at it, decide, check margin.

        Returns the target decided at this bar for a ``positions()`` strategy (None for
        ``next()`` strategies and before the first decision).
        """
        i = self.bars
        self._append(time, (open_, high, low, close, volume))
        account, book = self.account, self.book
        self.clock.i = account.bar = i
        book.last_close = close
        if account.halted:
            return None
        if book.orders or book.trailing:
            account.process_bar(book, i, open_, high, low)
        if self.pending_target is not None:
            account.trade_to(book, self.pending_target, open_, i)
            self.pending_target = None
        decided = self._decide_target(i) if self.vectorized else self._decide_next(i)
        if self.settings.trade_on_close:
            if book.orders:
                account.process_close(book, i, close)
            if self.pending_target is not None:
                account.trade_to(book, self.pending_target, close, i)
                self.pending_target = None
        if not account.ruin_low < close < account.ruin_high:
            account.liquidate(i, {book.name: close}, "margin call: equity exhausted")
            account.halted = True
        return decided

    def _window_bars(self, start: int, stop: int) -> tuple[np.ndarray, ...] | None:
        """Highs, lows and closes of bars ``start .. stop - 1`` from the live window (None
        once they have left it); the account's trailing stops read them."""
        offset = self.offset
        if start < offset:
            return None
        columns = self.window.columns()
        return tuple(columns[name][start - offset : stop - offset] for name in _COLUMNS[1:4])

    def _append(self, time: pd.Timestamp, values: tuple) -> None:
        """Add a bar to the window, dropping the oldest once the window is full."""
        keep = self.history if self.started and self.history != "all" else None
        self.window.append(time, values, keep)
        self.bars += 1

    @property
    def offset(self) -> int:
        """Bar number of the window's first bar."""
        return self.bars - len(self.window)

    def _decide_next(self, i: int) -> None:
        strategy = self.strategy
        strategy.data.rebind(self.window, self.offset)
        try:
            if not self.ready:
                # init() declares the indicators on the bars so far.
                self.clock.i = -1
                try:
                    strategy.init()
                finally:
                    self.clock.i = i
                self.ready = True
            else:
                for indicator in strategy.indicators:
                    indicator.refresh(self.offset, len(self.window))
        except (ValueError, TypeError, IndexError, TradennError) as error:
            if self.started:
                raise
            # Indicators that cannot be computed on so few bars (or parameters the strategy
            # rejects): say why, and try again with the next bar.
            self.waiting = f"{self.name}.init() failed on {i + 1} bars ({error})"
            self.strategy, self.ready = self._fresh(), False
            return
        self.waiting = None
        if not self.started:
            # Until the warm-up ends the window is the whole history: the backtest's rule.
            if warmup(strategy, len(self.window)) > i:
                return
            self.started = True
            if self.history is None:
                self.history = max(DEFAULT_HISTORY, 4 * (i + 1))
        strategy.next()

    def _decide_target(self, i: int) -> float:
        if not self.started:
            self.started = True
            self.history = self.history or DEFAULT_HISTORY
        frame = self.window.frame()
        strategy = self.strategy
        strategy.data.rebind(frame, self.offset)
        decide = getattr(strategy, "target_now", None)
        if decide is not None:  # the strategy answers for the last bar only
            w = float(target_array([self._call(decide, frame)], 1, self.name)[0])
        else:
            raw = self._call(strategy.positions, frame.copy())
            w = float(target_array(raw, len(frame), self.name)[-1])
        self.waiting = strategy.waiting
        if w != self.target:
            self.pending_target = w
        self.target = w
        return w

    def _fresh(self) -> Strategy:
        data = BarData(self.window.frame(), self.clock, self.offset, live=True)
        strategy = self.strategy_class(self.account, data, self.clock, self.params)
        strategy.store, strategy.progress = self.store, self.progress
        return strategy

    # ------------------------------------------------------------------- snapshots

    def state(self) -> dict[str, Any]:
        """What a restart needs besides the window of bars: the account, the strategy's own
        state, and where the runner is (bars seen, window, warm-up, targets)."""
        return {
            "account": self.account.state(),
            "strategy": self.strategy.state() if self.ready or self.vectorized else {},
            "bars": self.bars,
            "window": len(self.window),
            "history": self.history,
            "started": self.started,
            "ready": self.ready,
            "target": self.target,
            "pending_target": self.pending_target,
        }

    @classmethod
    def resume(
        cls,
        strategy: type[Strategy],
        params: Mapping[str, Any],
        settings: Settings,
        state: Mapping[str, Any],
        window: pd.DataFrame,
        store: Any = None,
        progress: bool = False,
    ) -> Runner:
        """A live runner continuing from :meth:`state`, given the last bars it kept."""
        runner = cls(strategy, params, settings, window, live=True, store=store, progress=progress)
        runner.account = Account.restore(settings, state["account"])
        (runner.book,) = runner.account.books.values()
        runner.book.bars = runner._window_bars
        runner.bars = state["bars"]
        runner.history = state["history"]
        runner.started = state["started"]
        runner.target = state["target"]
        runner.pending_target = state["pending_target"]
        runner.clock.i = runner.bars - 1
        runner.strategy = runner._fresh()
        if state["ready"]:  # init() declares the indicators, on the window
            runner.clock.i = -1
            runner.strategy.init()
            runner.clock.i = runner.bars - 1
            runner.ready = True
        runner.strategy.restore_state(state["strategy"])
        return runner


class PortfolioRunner:
    """One :class:`~tradenn.backtest.portfolio.PortfolioStrategy` stepping through a panel's
    bars against one multi-asset :class:`Account`.

    Per bar ``i``: pending target trades fill at the assets' opens (assets without a bar at
    ``i`` wait for their next bar); the strategy decides at the close (its ``weights()`` row, or
    what ``next()`` asked with ``rebalance``), on the rebalancing schedule; with
    ``trade_on_close`` the trades fill at the close; assets whose data end at ``i`` (before the
    panel's last bar) are sold at their close; then the margin is checked. ``check_weights``
    validates target rows (the engine's leverage and shorting rules).
    """

    def __init__(
        self,
        strategy: type,
        params: Mapping[str, Any],
        settings: Settings,
        panel: pd.DataFrame,
        *,
        vectorized: bool,
        check_weights: Callable[..., np.ndarray],
    ) -> None:
        self.params = dict(params)
        self.settings = settings
        self.panel = panel
        self.assets = panel_assets(panel)
        self.vectorized = vectorized
        self.check_weights = check_weights
        self.clock = Clock(-1)
        self.account = Account(settings, self.assets)
        self.view = PanelData(panel, self.clock)
        self.strategy = strategy(self.account, self.view, self.clock, self.params)
        self.prices = PanelPrices(panel)
        self.target_log = np.zeros((len(panel), len(self.assets)))
        self.settled = [0.0] * len(self.assets)  # units per asset after its last rebalance

    def run(self) -> None:
        """Step through every bar of the panel."""
        strategy = self.strategy
        label = type(strategy).__name__
        schedule = rebalance_schedule(self.params["rebalance_every"], self.panel.index, label)
        drift = self.params["drift_threshold"]
        if not (isinstance(drift, int | float) and math.isfinite(drift) and drift >= 0):
            raise BacktestError(f"{label}: drift_threshold must be >= 0, got {drift!r}")
        self._hook(strategy.init, "init")
        targets = self._hook(self._weights, "weights") if self.vectorized else None
        self._hook(self._steps, "next", targets, schedule, drift)

    def _hook(self, method: Callable, hook: str, *args: Any) -> Any:
        """``method(*args)``, the strategy's ``hook`` or a loop calling it: a ValueError or
        TypeError from setup is the strategy rejecting it; anything else raised by the
        strategy's code is a :class:`StrategyFailure` naming the hook (and bar)."""
        cls = type(self.strategy)
        try:
            return method(*args)
        except (ValueError, TypeError) as error:
            if hook == "next":
                raise strategy_failure(cls, error, hook, self.clock.i, self.panel.index) from error
            raise setup_rejected(cls, error) from error
        except TradennError:
            raise
        except Exception as error:
            bar = self.clock.i if hook == "next" else None
            raise strategy_failure(cls, error, hook, bar, self.panel.index) from error

    def _steps(self, targets: np.ndarray | None, schedule: Any, drift: float) -> None:
        """The bar loop of :meth:`run` (bars are sequential: each rebalance is sized on the
        equity the last one left)."""
        strategy, account, prices, clock = self.strategy, self.account, self.prices, self.clock
        label = type(strategy).__name__
        names, n = self.assets, len(self.panel)
        books = list(account.books.values())
        on_close = self.settings.trade_on_close
        quotes = prices.close if on_close else prices.open
        target = np.zeros(len(names))
        pending: dict[int, int] = {}  # asset -> bar its latest decision was made on
        for a, book in enumerate(books):  # what ATR trailing stops measure
            book.bars = functools.partial(_asset_bars, prices, a)
        rebalanced = False  # a schedule re-trades only once next() has asked for weights
        for i in range(n):  # sequential: each rebalance is sized on the equity the last one left
            clock.i = account.bar = i
            marks = prices.marks[i].tolist()
            for book, mark in zip(books, marks, strict=True):
                book.last_close = mark
            if targets is None:  # only next() places orders
                self._orders(books, i, close=False)
            if not on_close and pending:
                self._execute(pending, target, i, quotes[i])
            scheduled = None if schedule is None else bool(schedule[i])
            if targets is not None:
                target = self._decide(target, targets[i], pending, i, scheduled, drift)
            else:
                self.view.sync(i)
                strategy.next()
                request = strategy.take_request()
                if request is not None:
                    rebalanced = True
                    row = self._request_row(request, i, label)
                    target = self._decide(target, row, pending, i, scheduled, drift)
                elif scheduled and rebalanced:
                    target = self._decide(target, target, pending, i, scheduled, drift)
            self.target_log[i] = target
            if on_close:
                if targets is None:
                    self._orders(books, i, close=True)
                if pending:
                    self._execute(pending, target, i, quotes[i])
            for a in prices.delisted_at.get(i, ()):
                pending.pop(a, None)
                for order in list(books[a].orders):  # no later bar can fill them
                    account.cancel(order, "delisted")
                if books[a].units:
                    account.close_position(books[a], float(prices.close[i, a]), i, "delisted")
                self.settled[a] = 0.0
            if account.margin_call(i, dict(zip(names, marks, strict=True))):
                break

    def _orders(self, books: list, i: int, *, close: bool) -> None:
        """Fill what bar ``i`` allows of the assets' orders (the same account steps as the
        single-asset runner), for each asset with a bar at ``i``: at the open and over the
        bar's range, or (``close``) market orders decided at this close."""
        prices = self.prices
        for a, book in enumerate(books):
            if not (book.orders or book.trailing) or not prices.has_bar[i, a]:
                continue
            if close:
                if book.orders:
                    self.account.process_close(book, i, float(prices.close[i, a]))
            else:
                self.account.process_bar(
                    book, i, float(prices.open[i, a]), float(prices.high[i, a]),
                    float(prices.low[i, a]),
                )  # fmt: skip

    def _request_row(self, request: Mapping[str, float], i: int, label: str) -> np.ndarray:
        row = np.zeros(len(self.assets))
        for name, weight in request.items():
            row[self.assets.index(name)] = weight
        alive = self.prices.alive[i : i + 1]
        return self.check_weights(row[None, :], alive, f"{label}.rebalance", i)[0]

    def _decide(
        self,
        target: np.ndarray,
        row: np.ndarray,
        pending: dict[int, int],
        i: int,
        scheduled: bool | None,
        drift: float,
    ) -> np.ndarray:
        """Take the targets set at bar ``i``'s close; mark the assets that must trade: those
        whose target changed (no schedule) or drifted (on schedule), and those that orders
        traded since the last rebalance."""
        if scheduled is False:
            return row.copy()
        if not self.vectorized:  # only next() places orders
            for a, book in enumerate(self.account.books.values()):
                if book.units != self.settled[a]:
                    pending[a] = i
        if scheduled is None:  # no schedule: trade what changed
            for a in np.flatnonzero(row != target).tolist():
                pending[a] = i
            return row.copy()
        equity = self.account.equity()
        for a, book in enumerate(self.account.books.values()):
            held = book.units
            w = float(row[a])
            if w == 0 and held:
                pending[a] = i
            elif equity > 0 and abs(held * book.last_close / equity - w) > drift:
                pending[a] = i
            elif equity <= 0 and w != 0:
                pending[a] = i
        return row.copy()

    def _execute(
        self, pending: dict[int, int], target: np.ndarray, i: int, quotes: np.ndarray
    ) -> None:
        """Trade the pending assets that have a bar at ``i`` towards their targets."""
        prices = self.prices
        due = [a for a in pending if prices.has_bar[i, a]]
        if not due:
            return
        names = self.assets
        # Valuation: every asset with a bar at its quote, the others at their last close.
        marks = np.where(prices.has_bar[i], quotes, prices.marks[i])
        self.account.rebalance(
            i,
            {names[a]: float(target[a]) for a in due},
            {names[a]: float(quotes[a]) for a in due},
            marks=dict(zip(names, marks.tolist(), strict=True)),
            placed={names[a]: pending[a] for a in due},
        )
        books = list(self.account.books.values())
        for a in due:
            del pending[a]
            self.settled[a] = books[a].units

    def _weights(self) -> np.ndarray:
        """The vectorized targets, checked for shape, range, leverage and look-ahead."""
        panel, strategy = self.panel, self.strategy
        n = len(panel)
        label = f"{type(strategy).__name__}.weights"
        full = self._weight_matrix(strategy.weights(_private(panel)), n, label)
        for cut in check_cuts(n):
            early = self._weight_matrix(strategy.weights(_private(panel.iloc[:cut])), cut, label)
            for a, name in enumerate(self.assets):
                try:
                    check_causal(full[:cut, a], early[:, a], f"{label} for {name!r}")
                except LookAheadError as error:
                    raise LookAheadError(str(error).replace("indicator ", "")) from None
        return self.check_weights(full, self.prices.alive, label)

    def _weight_matrix(self, raw: Any, n: int, label: str) -> np.ndarray:
        if not isinstance(raw, pd.DataFrame):
            raise BacktestError(f"{label} must return a DataFrame (bars x assets), got {type(raw)}")
        unknown = [c for c in raw.columns if c not in self.assets]
        if unknown:
            raise BacktestError(
                f"{label}: unknown asset {unknown[0]!r}; assets: {', '.join(self.assets)}"
            )
        if len(raw) != n:
            raise BacktestError(f"{label} returned {len(raw)} rows; expected one per bar ({n})")
        frame = raw.reindex(columns=self.assets)
        return frame.to_numpy(dtype=np.float64)  # NaN (no view yet) becomes 0 in check_weights


def _asset_bars(prices: PanelPrices, a: int, start: int, stop: int) -> tuple[list, ...] | None:
    """Asset ``a``'s highs, lows and closes of bars ``start .. stop - 1`` (a
    :attr:`~tradenn.account.Book.bars` source); None if it misses a bar among them."""
    closes = prices.close[start:stop, a]
    if np.isnan(closes).any():
        return None
    return prices.high[start:stop, a].tolist(), prices.low[start:stop, a].tolist(), closes.tolist()


class PanelPrices:
    """A panel's prices as arrays (bars x assets), and when each asset trades.

    ``marks`` are valuation prices (the last close carried forward; 0 before the first bar);
    ``alive`` is where an asset may hold a position: from its first bar until, for an asset
    whose data ends before the panel's, its last bar (``delisted_at``: bar -> assets sold at
    that bar's close).
    """

    def __init__(self, panel: pd.DataFrame) -> None:
        self.open = panel["Open"].to_numpy(dtype=np.float64)
        self.high = panel["High"].to_numpy(dtype=np.float64)
        self.low = panel["Low"].to_numpy(dtype=np.float64)
        close = panel["Close"]
        self.close = close.to_numpy(dtype=np.float64)
        self.has_bar = close.notna().to_numpy()
        self.marks = close.ffill().fillna(0.0).to_numpy(dtype=np.float64)
        n = len(panel)
        self.last_bar = n - 1 - np.argmax(self.has_bar[::-1], axis=0)
        listed = np.maximum.accumulate(self.has_bar, axis=0)
        ended = np.arange(n)[:, None] >= self.last_bar[None, :]
        delisted = self.last_bar < n - 1
        self.alive = listed & ~(ended & delisted[None, :])
        self.delisted_at: dict[int, list[int]] = {}
        for a in np.flatnonzero(delisted).tolist():
            self.delisted_at.setdefault(int(self.last_bar[a]), []).append(a)


_CALENDAR = {"W": "W", "M": "M", "Q": "Q", "Y": "Y"}


def rebalance_schedule(every: Any, index: pd.DatetimeIndex, label: str) -> np.ndarray | None:
    """Bars on which a rebalance is due (None: whenever targets change)."""
    n = len(index)
    if every is None:
        return None
    if isinstance(every, str):
        freq = _CALENDAR.get(every.upper())
        if freq is None:
            raise BacktestError(
                f"{label}: rebalance_every must be None, a number of bars or one of "
                f"{', '.join(_CALENDAR)}; got {every!r}"
            )
        naive = index.tz_localize(None) if index.tz is not None else index
        periods = naive.to_period(freq).asi8
        return np.diff(periods, prepend=periods[0] - 1) != 0
    if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
        raise BacktestError(
            f"{label}: rebalance_every must be None, a positive number of bars or a calendar "
            f"period; got {every!r}"
        )
    return np.arange(n) % int(every) == 0
