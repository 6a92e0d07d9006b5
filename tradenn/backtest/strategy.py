"""The strategy contract: declare indicators in ``init()``, trade bar by bar in ``next()``.

:class:`StrategyBase` is what every strategy shares (parameters, ``init``/``next``, the account
it reads); :class:`Strategy` (one asset: orders, indicators) and
:class:`~tradenn.backtest.portfolio.PortfolioStrategy` (several assets: target weights) are its
two siblings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tradenn.account import Account, Order, Position, Trade, Trail
from tradenn.backtest.series import BarData, BarSeries, Clock, check_causal, check_cuts
from tradenn.errors import TradennError

_RESERVED = frozenset({"history_bars"})  # class attributes that configure, not parameters


class StrategyBase:
    """What every strategy shares: parameters, the two hooks, and the account it reads.

    Parameters are public class attributes that are plain values; the engine sets the values
    of one run on the instance. ``init()`` runs once before the first bar, ``next()`` at the
    close of every bar after the warm-up.

    ``history_bars`` (a class attribute, not a parameter) is how many bars the paper loop keeps
    to recompute indicators or ``positions()`` each bar; None lets the loop choose, ``"all"``
    keeps every bar (a model that retrains on its whole history; see
    :mod:`tradenn.backtest.runner`).

    Three attributes are for live runs: ``store``, where the paper loop keeps files the
    strategy saves (its trained models; None in a backtest); ``progress``, whether training may
    show progress bars; and ``waiting``, which a strategy sets to a sentence saying why it
    cannot decide yet (the loop logs it once).
    """

    history_bars: ClassVar[int | str | None] = None

    def __init__(self, account: Account, data: Any, clock: Clock, params: dict[str, Any]):
        self._account = account
        self._clock = clock
        self.data = data
        self.store: Any = None
        self.progress = False
        self.waiting: str | None = None
        for name, value in params.items():
            setattr(self, name, value)

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """The strategy's parameters: public class attributes that are plain values."""
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass in (object, StrategyBase, Strategy) or not issubclass(klass, StrategyBase):
                continue
            for name, value in vars(klass).items():
                if (
                    name.startswith("_")
                    or name in _RESERVED
                    or callable(value)
                    or isinstance(value, property | classmethod | staticmethod)
                ):
                    continue
                found[name] = value
        return found

    @classmethod
    def check_parameters(cls, params: dict[str, Any]) -> None:
        """Raise ``ValueError`` naming a parameter whose value the strategy cannot run with.

        Called with every parameter's value before a run (a backtest, each combination of a
        sweep, a paper run), so a bad value is one error at once. Here: every numeric parameter
        must be a finite number. Strategies add their own rules (``super()`` first)::

            @classmethod
            def check_parameters(cls, params):
                super().check_parameters(params)
                if not 0 < params["fast"] < params["slow"]:
                    raise ValueError("need 0 < fast < slow")
        """
        for name, default in cls.parameters().items():
            value = params.get(name, default)
            numeric = isinstance(default, int | float) and not isinstance(default, bool)
            if numeric and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")

    def parameters_now(self) -> dict[str, Any]:
        """The parameters with the values this instance runs with."""
        return {name: getattr(self, name) for name in self.parameters()}

    def init(self) -> None:
        """Prepare before the first bar (declare indicators). Runs once."""

    def next(self) -> None:
        """Decide at the close of the current bar. Runs once per bar after the warm-up."""

    def diagnostics(self) -> dict[str, Any]:
        """Extra figures for the result (``Result.diagnostics``), read after the run.

        Model strategies report their out-of-sample forecast quality here; rule-based
        strategies have none.
        """
        return {}

    @property
    def equity(self) -> float:
        """Cash plus every holding marked at the current close."""
        return self._account.equity()

    @property
    def cash(self) -> float:
        """Money not invested (negative when borrowing)."""
        return self._account.cash

    @property
    def trades(self) -> tuple[Trade, ...]:
        """Open trades, oldest first (of every asset)."""
        return tuple(t for b in self._account.books.values() for t in b.trades)

    @property
    def closed_trades(self) -> tuple[Trade, ...]:
        """Trades closed during this run, in the order they closed (of every asset)."""
        return tuple(t for b in self._account.books.values() for t in b.closed_trades)

    @property
    def orders(self) -> tuple[Order, ...]:
        """Pending orders, brackets included (of every asset)."""
        return tuple(
            o for b in self._account.books.values() for o in b.orders if o.status == "pending"
        )

    def state(self) -> dict[str, Any]:
        """What the strategy keeps between bars: its attributes other than the engine's
        (account, clock, data, position) and its indicators. The paper loop saves this with
        every bar so that a restart continues where the run stopped."""
        return {
            name: value
            for name, value in vars(self).items()
            if name not in _FRAMEWORK and not _is_series(value)
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the attributes a :meth:`state` snapshot holds (after ``init()``)."""
        for name, value in state.items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.parameters())
        return f"{type(self).__name__}({params})"


_FRAMEWORK = frozenset(
    {
        "_account",
        "_clock",
        "_book",
        "_indicators",
        "_request",
        "data",
        "position",
        "store",
        "progress",
    }
)


def _is_series(value: Any) -> bool:
    if isinstance(value, BarSeries):
        return True
    return (
        isinstance(value, tuple | list)
        and bool(value)
        and all(isinstance(v, BarSeries) for v in value)
    )


@dataclass(frozen=True)
class Indicator:
    """One ``Strategy.I`` declaration: the series it fills and how to compute them again.

    ``refresh(offset, n)`` recomputes ``func(*args, **kwargs)`` on what its inputs hold now (the
    paper loop's window, whose first bar is ``offset``) and rebinds the series to the result.
    A function with a ``latest`` attribute (``latest(*args, **kwargs)`` -> the value at the
    last bar only; :func:`tradenn.features.sma` has one) is updated by one value per bar
    instead, once the series already covers the bars before.
    """

    name: str
    func: Callable
    args: tuple
    kwargs: dict
    series: tuple[BarSeries, ...]

    def refresh(self, offset: int, n: int) -> None:
        """Recompute on the inputs' current ``n`` values, the first of which is bar
        ``offset``."""
        latest = getattr(self.func, "latest", None)
        if latest is not None and len(self.series) == 1:
            (series,) = self.series
            # The series holds bars [start, start + len) ; the window is [offset, offset + n).
            held, start = series.full(), series.offset
            if start <= offset and start + len(held) == offset + n - 1:
                value = latest(*_unwrap(self.args), **self.kwargs)
                values = np.empty(n, dtype=held.dtype if held.dtype != bool else bool)
                values[:-1] = held[offset - start :]
                values[-1] = value
                series.rebind(values, offset)
                return
        outputs = _outputs(self.func(*_unwrap(self.args), **self.kwargs), n, self.name)
        for series, values in zip(self.series, outputs, strict=True):
            series.rebind(values, offset)


class Strategy(StrategyBase):
    """Base class of single-asset strategies: indicators with :meth:`I`, orders with :meth:`buy`.

    Subclass it, give parameters as class attributes, declare indicators in :meth:`init` with
    :meth:`I`, and trade in :meth:`next`, which runs at the close of every bar once all
    indicators have values::

        class TrendFilter(Strategy):
            window = 200  # a parameter: optimizable, settable from the command line

            def init(self):
                self.trend = self.I(sma, self.data.Close, self.window)

            def next(self):
                price, trend = self.data.Close[-1], self.trend[-1]
                if price > trend and not self.position:
                    self.buy()
                elif price < trend and self.position.is_long:
                    self.position.close()

    ``strategies/sma_cross.py`` is a complete one: two indicators, a parameter check and
    reversals with :func:`~tradenn.backtest.crossover`.

    Inside ``next()``, ``self.data`` and every indicator show bars up to the current one only
    (``self.data.Close[-1]`` is now); a later bar cannot be read. Indicators are computed once on
    the whole series, vectorized, and :meth:`I` proves each is causal by recomputing it on
    truncated data (see :meth:`I`).

    A strategy may instead (or also) define ``positions(self, data) -> pd.Series``: the target
    exposure in [-1, 1] (fraction of equity, negative short) decided at the close of each bar.
    The engine then takes a fast vectorized path with the same fill and cost model.
    """

    def __init__(self, account: Account, data: BarData, clock: Clock, params: dict[str, Any]):
        super().__init__(account, data, clock, params)
        (self._book,) = account.books.values()
        self._indicators: list[Indicator] = []
        self.position = Position(self._book)

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        """The indicators declared with :meth:`I`, in declaration order."""
        return tuple(self._indicators)

    def init(self) -> None:
        """Declare indicators with :meth:`I`. Runs once, before the first bar."""

    # ------------------------------------------------------------------- indicators

    def I(  # noqa: E743 - the name users of other backtesters know
        self,
        func: Callable,
        *args: Any,
        name: str | None = None,
        check_lookahead: bool = True,
        **kwargs: Any,
    ) -> BarSeries | tuple[BarSeries, ...]:
        """Declare an indicator: ``func(*args, **kwargs)`` computed once over the whole data.

        ``BarSeries`` arguments (``self.data.Close``, other indicators) are passed as full numpy
        arrays. The result (an array, a Series, a tuple of them, or a 2-D array of rows) must
        have one value per bar; it is returned as :class:`BarSeries` revealed bar by bar
        (a tuple for several outputs).

        With ``check_lookahead`` (the default) the indicator is computed again on the first
        third and the first two thirds of the data (of its first 20,000 bars when longer,
        :func:`~tradenn.backtest.series.check_cuts`); if any value it gave there changes, it used
        later bars, and :class:`LookAheadError` is raised. Pass ``check_lookahead=False`` only
        for an indicator too costly to compute three times, and only if it is causal.
        """
        n = len(self.data.frame)
        label = name or _describe(func, args)
        outputs = _outputs(func(*_unwrap(args), **kwargs), n, label)
        if check_lookahead and not self.data.live:  # live bars have no future to peek at
            for cut in check_cuts(n):
                try:
                    early = _outputs(func(*_unwrap(args, cut), **kwargs), cut, label)
                except (ValueError, IndexError, TypeError) as error:
                    raise TradennError(
                        f"indicator {label} failed on the first {cut} bars during the look-ahead "
                        f"check ({error}); pass check_lookahead=False if it needs more history"
                    ) from None
                for full, part in zip(outputs, early, strict=True):
                    check_causal(full[:cut], part, label)
        offset = self.data.offset
        series = tuple(
            BarSeries(values, self._clock, label if len(outputs) == 1 else f"{label}[{k}]", offset)
            for k, values in enumerate(outputs)
        )
        self._indicators.append(Indicator(label, func, args, kwargs, series))
        return series[0] if len(series) == 1 else series

    # ------------------------------------------------------------------- orders

    def risk_size(self, stop: float, risk: float = 0.01, *, entry: float | None = None) -> float:
        """Units whose loss at ``stop`` is ``risk`` of the equity, entering at ``entry`` (the
        last close by default): :func:`tradenn.backtest.lib.risk_size` with this run's equity
        and units mode. Use it as ``self.buy(size=self.risk_size(stop), sl=stop)``."""
        from tradenn.backtest.lib import risk_size

        entry = self.data.Close[-1] if entry is None else entry
        return risk_size(
            self.equity, entry, stop, risk, fractional=self._account.settings.fractional
        )

    def atr_size(self, atr: float, multiple: float = 2.0, risk: float = 0.01) -> float:
        """Units whose loss over ``multiple`` ATRs is ``risk`` of the equity:
        :func:`tradenn.backtest.lib.atr_size` with this run's equity and units mode."""
        from tradenn.backtest.lib import atr_size

        return atr_size(
            self.equity, atr, multiple, risk, fractional=self._account.settings.fractional
        )

    def buy(
        self,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        trail: Trail | None = None,
    ) -> Order:
        """Place a buy order (see :mod:`tradenn.account` for sizing and fill rules).

        ``size``: None = all free buying power in whole units; ``0 < size < 1`` = fraction of
        equity; ``size >= 1`` = units. ``limit``/``stop`` make it a limit, stop or stop-limit
        order; ``sl``/``tp`` attach a stop-loss and a take-profit to the trade it opens, and
        ``trail`` (a :class:`~tradenn.account.Trail`) makes that stop trail the close.
        """
        return self._account.submit(
            self._book, 1, size, limit=limit, stop=stop, sl=sl, tp=tp, tag=tag, trail=trail
        )

    def sell(
        self,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        trail: Trail | None = None,
    ) -> Order:
        """Place a sell order: closes longs first (FIFO), then opens a short with the rest."""
        return self._account.submit(
            self._book, -1, size, limit=limit, stop=stop, sl=sl, tp=tp, tag=tag, trail=trail
        )


# ----------------------------------------------------------------------- helpers


def _unwrap(args: tuple, cut: int | None = None) -> list:
    """Full arrays for BarSeries arguments; with ``cut``, every per-bar argument truncated."""
    out = []
    for arg in args:
        if isinstance(arg, BarSeries):
            arg = arg.full()
        if cut is not None:
            if isinstance(arg, np.ndarray) and arg.ndim >= 1 and arg.shape[-1] > cut:
                arg = arg[..., :cut]
            elif isinstance(arg, pd.Series | pd.DataFrame):
                arg = arg.iloc[:cut]
        out.append(arg)
    return out


def _outputs(result: Any, n: int, label: str) -> list[np.ndarray]:
    """Normalize an indicator's result to a list of float arrays of length ``n``."""
    if isinstance(result, pd.DataFrame):
        parts = [result[c].to_numpy() for c in result.columns]
    elif isinstance(result, tuple | list):
        parts = [np.asarray(r) for r in result]
    else:
        array = np.asarray(result)
        parts = list(array) if array.ndim == 2 else [array]
    arrays = []
    for part in parts:
        part = np.asarray(part, dtype=np.float64) if part.dtype != bool else part
        if part.ndim != 1 or len(part) != n:
            raise TradennError(
                f"indicator {label} returned shape {part.shape}; expected one value per bar ({n},)"
            )
        arrays.append(part)
    return arrays


def _describe(func: Callable, args: tuple) -> str:
    shown = []
    for arg in args:
        if isinstance(arg, BarSeries):
            shown.append(arg.name)
        elif isinstance(arg, int | float | str | bool):
            shown.append(repr(arg))
        else:
            shown.append("...")
    return f"{getattr(func, '__name__', 'indicator')}({', '.join(shown)})"
