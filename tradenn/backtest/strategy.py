"""The strategy contract: declare indicators in ``init()``, trade bar by bar in ``next()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.broker import Broker, Order, Position, Trade
from tradenn.backtest.series import BarData, BarSeries, Clock, LookAheadError
from tradenn.errors import TradennError


class Strategy:
    """Base class of every trading strategy.

    Subclass it, give parameters as class attributes, declare indicators in :meth:`init` with
    :meth:`I`, and trade in :meth:`next`, which runs at the close of every bar once all
    indicators have values::

        class SmaCross(Strategy):
            fast = 10
            slow = 20

            def init(self):
                self.f = self.I(sma, self.data.Close, self.fast)
                self.s = self.I(sma, self.data.Close, self.slow)

            def next(self):
                if crossover(self.f, self.s):
                    self.position.close()
                    self.buy()
                elif crossover(self.s, self.f):
                    self.position.close()
                    self.sell()

    Inside ``next()``, ``self.data`` and every indicator show bars up to the current one only
    (``self.data.Close[-1]`` is now); a later bar cannot be read. Indicators are computed once on
    the whole series, vectorized, and :meth:`I` proves each is causal by recomputing it on
    truncated data (see :meth:`I`).

    A strategy may instead (or also) define ``positions(self, data) -> pd.Series``: the target
    exposure in [-1, 1] (fraction of equity, negative short) decided at the close of each bar.
    The engine then takes a fast vectorized path with the same fill and cost model.
    """

    def __init__(self, broker: Broker, data: BarData, clock: Clock, params: dict[str, Any]):
        self._broker = broker
        self._clock = clock
        self.data = data
        self._indicators: list[tuple[str, np.ndarray]] = []
        self.position = Position(broker)
        for name, value in params.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------- parameters

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """The strategy's parameters: public class attributes that are plain values."""
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Strategy or not issubclass(klass, Strategy):
                continue
            for name, value in vars(klass).items():
                if (
                    name.startswith("_")
                    or callable(value)
                    or isinstance(value, property | classmethod | staticmethod)
                ):
                    continue
                found[name] = value
        return found

    # ------------------------------------------------------------------- to override

    def init(self) -> None:
        """Declare indicators with :meth:`I`. Runs once, before the first bar."""

    def next(self) -> None:
        """Decide at the close of the current bar. Runs once per bar after the warm-up."""

    def diagnostics(self) -> dict[str, Any]:
        """Extra figures for the result (``Result.diagnostics``), read after the run.

        Model strategies report their out-of-sample forecast quality here; rule-based
        strategies have none.
        """
        return {}

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
        third and the first two thirds of the data; if any value it gave there changes, it used
        later bars, and :class:`LookAheadError` is raised. Pass ``check_lookahead=False`` only
        for an indicator too costly to compute three times, and only if it is causal.
        """
        n = len(self.data._frame)
        label = name or _describe(func, args)
        outputs = _outputs(func(*_unwrap(args), **kwargs), n, label)
        if check_lookahead:
            for cut in sorted({n // 3, 2 * n // 3} - {0}):
                try:
                    early = _outputs(func(*_unwrap(args, cut), **kwargs), cut, label)
                except (ValueError, IndexError, TypeError) as error:
                    raise TradennError(
                        f"indicator {label} failed on the first {cut} bars during the look-ahead "
                        f"check ({error}); pass check_lookahead=False if it needs more history"
                    ) from None
                for full, part in zip(outputs, early, strict=True):
                    _assert_causal(full[:cut], part, label)
        series = tuple(
            BarSeries(values, self._clock, label if len(outputs) == 1 else f"{label}[{k}]")
            for k, values in enumerate(outputs)
        )
        for s in series:
            self._indicators.append((s.name, s._full()))
        return series[0] if len(series) == 1 else series

    # ------------------------------------------------------------------- orders

    def buy(
        self,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
    ) -> Order:
        """Place a buy order (see :mod:`tradenn.backtest.broker` for sizing and fill rules).

        ``size``: None = all free buying power in whole units; ``0 < size < 1`` = fraction of
        equity; ``size >= 1`` = units. ``limit``/``stop`` make it a limit, stop or stop-limit
        order; ``sl``/``tp`` attach a stop-loss and a take-profit to the trade it opens.
        """
        return self._broker.place(1, size, limit=limit, stop=stop, sl=sl, tp=tp, tag=tag)

    def sell(
        self,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
    ) -> Order:
        """Place a sell order: closes longs first (FIFO), then opens a short with the rest."""
        return self._broker.place(-1, size, limit=limit, stop=stop, sl=sl, tp=tp, tag=tag)

    @property
    def equity(self) -> float:
        """Cash plus the position marked at the current close."""
        return self._broker.equity

    @property
    def trades(self) -> tuple[Trade, ...]:
        """Open trades, oldest first."""
        return tuple(self._broker.trades)

    @property
    def closed_trades(self) -> tuple[Trade, ...]:
        """Closed trades, in the order they closed."""
        return tuple(self._broker.closed_trades)

    @property
    def orders(self) -> tuple[Order, ...]:
        """Pending orders, brackets included."""
        return tuple(o for o in self._broker.orders if o.status == "pending")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.parameters())
        return f"{type(self).__name__}({params})"


# ----------------------------------------------------------------------- helpers


def _unwrap(args: tuple, cut: int | None = None) -> list:
    """Full arrays for BarSeries arguments; with ``cut``, every per-bar argument truncated."""
    out = []
    for arg in args:
        if isinstance(arg, BarSeries):
            arg = arg._full()
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


def _assert_causal(full: np.ndarray, early: np.ndarray, label: str) -> None:
    same = (
        np.isclose(full, early, rtol=1e-9, atol=1e-12, equal_nan=True)
        if full.dtype != bool
        else full == early
    )
    if not same.all():
        bar = int(np.flatnonzero(~same)[0])
        raise LookAheadError(
            f"indicator {label} uses future data: its value at bar {bar} changes when later "
            f"bars are removed ({float(early[bar]):g} vs {float(full[bar]):g})"
        )


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
