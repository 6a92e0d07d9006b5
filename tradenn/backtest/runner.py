"""The runner: reveals bars one at a time to a single-asset strategy and trades through the
account. A backtest is the runner over a finished frame; the paper loop is the same runner over
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
frame (and on its first third and two thirds, to prove it causal), and only the bars where the
target changes are stepped: nothing else can happen between them, so the loop is over
changes, not bars.

**Live bars** (:meth:`Runner.advance`). Nothing later exists, so there is nothing to check;
instead each bar costs the same however long the run: the runner keeps a trailing window of
bars and recomputes each indicator (or ``positions()``) over that window only. Until the
strategy's warm-up is complete the window is the whole history; then it is fixed at
``history_bars`` (a strategy class attribute) or, by default, the larger of
:data:`DEFAULT_HISTORY` and four times the warm-up. Rolling indicators over the window equal
the whole-history ones to rounding; recursive smoothers (EMA, RSI) forget their start
geometrically and agree after a few hundred bars. A strategy with longer memory sets
``history_bars``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tradenn.account import Account, Settings
from tradenn.backtest.series import BarData, BarWindow, Clock, LookAheadError, check_causal
from tradenn.backtest.strategy import Strategy, StrategyBase
from tradenn.errors import BacktestError, TradennError

__all__ = ["DEFAULT_HISTORY", "Runner", "parameter_values", "target_array", "warmup"]

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
    return {**known, **params}


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
    ) -> None:
        self.strategy_class = strategy
        self.params = dict(params)
        self.settings = settings
        self.live = live
        self.vectorized = hasattr(strategy, "positions") if vectorized is None else vectorized
        self.account = Account(settings, [asset])
        (self.book,) = self.account.books.values()
        self.clock = Clock(-1)  # nothing is revealed during init(): indicators go through self.I
        self.frame = frame
        self.window = BarWindow(frame) if live else None
        self.strategy = strategy(
            self.account, BarData(frame, self.clock, live=live), self.clock, self.params
        )
        # Live state: bars seen, the window kept, whether next() has started, the target.
        self.bars = len(frame)
        self.history = strategy.history_bars
        self.started = False
        self.ready = False
        self.target = 0.0
        self.pending_target: float | None = None

    @property
    def name(self) -> str:
        return self.strategy_class.__name__

    def _call(self, method, *args):
        """A strategy hook; a ValueError or TypeError is the strategy rejecting its setup."""
        try:
            return method(*args)
        except (ValueError, TypeError) as error:
            raise BacktestError(f"{self.name}: {error}") from error

    # ------------------------------------------------------------------- finished frames

    def run(self) -> None:
        """Step through the whole frame (a backtest)."""
        if self.vectorized:
            self._run_targets()
        else:
            self._run_events()

    def _run_events(self) -> None:
        strategy, account, book, clock = self.strategy, self.account, self.book, self.clock
        self._call(strategy.init)
        frame = self.frame
        n = len(frame)
        start = warmup(strategy, n)
        opens, highs, lows, closes = (
            frame[c].to_numpy(dtype=np.float64).tolist() for c in _COLUMNS[:4]
        )  # Python floats: cheaper to index and compare in the loop
        next_, on_close = strategy.next, self.settings.trade_on_close
        for i in range(n):  # bars are sequential: each decision sees the account the last left
            clock.i = account.bar = i
            book.last_close = closes[i]
            if book.orders:
                account.process_bar(book, i, opens[i], highs[i], lows[i])
            if i >= start:
                next_()
                if on_close and book.orders:
                    account.process_close(book, i, closes[i])
            # Equity = cash + units x close is gone past a known price; check that, not equity.
            if not account.ruin_low < closes[i] < account.ruin_high:
                account.liquidate(i, {book.name: closes[i]}, "margin call: equity exhausted")
                account.halted = True
                break

    def targets(self) -> np.ndarray:
        """``positions()`` on the whole frame, proved causal on its first third and two
        thirds (the values there must not change)."""
        frame, n = self.frame, len(self.frame)
        targets = target_array(self._call(self.strategy.positions, frame.copy()), n, self.name)
        for cut in sorted({n // 3, 2 * n // 3} - {0}):
            early = target_array(
                self._call(self.strategy.positions, frame.iloc[:cut].copy()), cut, self.name
            )
            try:
                check_causal(targets[:cut], early, f"{self.name}.positions")
            except LookAheadError as error:
                raise LookAheadError(str(error).replace("indicator ", "")) from None
        return targets

    def _run_targets(self) -> None:
        """Target changes only: the account is untouched between them."""
        targets = self.targets()
        frame, n = self.frame, len(self.frame)
        close = frame["Close"].to_numpy(dtype=np.float64)
        quotes = close if self.settings.trade_on_close else frame["Open"].to_numpy(np.float64)
        shift = 0 if self.settings.trade_on_close else 1
        changes = np.flatnonzero(np.diff(targets, prepend=0.0))
        account, book = self.account, self.book
        for t in changes:  # sequential only over changes: whole-unit sizing depends on equity
            f = int(t) + shift
            if f >= n:
                break
            if account.fills:
                # Equity ran out between the last trade and this one: liquidate where it did.
                ruined = self._ruin(close, account.fills[-1].bar, f)
                if ruined is not None:
                    return self._margin_call(ruined, close[ruined])
            self.clock.i = account.bar = f
            book.last_close = close[f]
            account.trade_to(book, float(targets[t]), float(quotes[f]), f)
        if account.fills:
            ruined = self._ruin(close, account.fills[-1].bar, n)
            if ruined is not None:
                return self._margin_call(ruined, close[ruined])
        self.clock.i = account.bar = n - 1
        book.last_close = close[-1]

    def _ruin(self, close: np.ndarray, since: int, until: int) -> int | None:
        """First bar in [since, until) whose closing equity is <= 0 (vectorized)."""
        equity = self.account.cash + self.book.units * close[since:until]
        gone = np.flatnonzero(equity <= 0)
        return since + int(gone[0]) if len(gone) else None

    def _margin_call(self, i: int, close: float) -> None:
        self.clock.i = self.account.bar = i
        self.book.last_close = close
        self.account.liquidate(i, {self.book.name: close}, "margin call: equity exhausted")
        self.account.halted = True

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
        if book.orders:
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

    def _append(self, time: pd.Timestamp, values: tuple) -> None:
        """Add a bar to the window, dropping the oldest once the window is full."""
        keep = self.history if self.started else None
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
        except (ValueError, TypeError, IndexError, TradennError):
            if self.started:
                raise
            # Indicators that cannot be computed on so few bars: try again with the next one.
            self.strategy, self.ready = self._fresh(), False
            return
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
        self.strategy.data.rebind(self.window, self.offset)
        frame = self.window.frame()
        raw = self._call(self.strategy.positions, frame)
        w = float(target_array(raw, len(frame), self.name)[-1])
        if w != self.target:
            self.pending_target = w
        self.target = w
        return w

    def _fresh(self) -> Strategy:
        data = BarData(self.window.frame(), self.clock, self.offset, live=True)
        return self.strategy_class(self.account, data, self.clock, self.params)

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
    ) -> Runner:
        """A live runner continuing from :meth:`state`, given the last bars it kept."""
        runner = cls(strategy, params, settings, window, live=True)
        runner.account = Account.restore(settings, state["account"])
        (runner.book,) = runner.account.books.values()
        runner.bars = state["bars"]
        runner.history = state["history"]
        runner.started = state["started"]
        runner.target = state["target"]
        runner.pending_target = state["pending_target"]
        runner.clock.i = runner.bars - 1
        runner.strategy = runner._fresh()
        if state["ready"]:
            runner.clock.i = -1
            strategy_ = runner.strategy
            strategy_.init()
            runner.clock.i = runner.bars - 1
            runner.ready = True
        runner.strategy.restore_state(state["strategy"])
        return runner
