"""The single-asset backtest: a strategy, a price frame and the account's settings, run by the
:class:`~tradenn.backtest.runner.Runner` (event by event with ``next()``, or vectorized with
``positions()``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tradenn.account import Record, Settings
from tradenn.backtest.result import (
    Result,
    account_path,
    describe_setup,
    orders_frame,
    trade_columns,
    trades_frame,
)
from tradenn.backtest.runner import Runner, fewer_collections, parameter_values
from tradenn.backtest.series import frame_arrays
from tradenn.backtest.stats import warn_if_implausible
from tradenn.backtest.strategy import Strategy
from tradenn.data.panel import is_panel
from tradenn.data.validation import price_frame
from tradenn.errors import BacktestError

__all__ = ["Backtest", "BacktestEngine", "BacktestError", "engine_for"]


class BacktestEngine:
    """What the two engines share: settings, the run contract, optimization.

    :class:`Backtest` runs a :class:`~tradenn.backtest.Strategy` on one asset,
    :class:`~tradenn.backtest.portfolio.PortfolioBacktest` a
    :class:`~tradenn.backtest.portfolio.PortfolioStrategy` on several; :func:`engine_for`
    names the one a strategy class needs.
    """

    vectorized_method: ClassVar[str]
    """The strategy method of the vectorized path: ``positions`` (one asset) or ``weights``."""

    settings: Settings
    data: pd.DataFrame

    def _vectorized(self, strategy: type, vectorized: bool | None) -> bool:
        """Whether runs take the vectorized path: as asked, else when the strategy defines
        :attr:`vectorized_method`; asking for it without that method is an error."""
        method = self.vectorized_method
        if vectorized and not hasattr(strategy, method):
            raise BacktestError(f"{strategy.__name__} has no {method}() for the vectorized path")
        return hasattr(strategy, method) if vectorized is None else vectorized

    @property
    def cash(self) -> float:
        """Starting cash."""
        return self.settings.cash

    def run(self, **params: Any) -> Any:
        """Run the strategy with its parameters overridden by ``params``; return its result.

        Warns once (:func:`~tradenn.backtest.stats.warn_if_implausible`) when the result is too
        good to be true. Sweeps call :meth:`evaluate`, which does not warn, and warn for their
        best combination only, when they re-run it."""
        result = self._result_of(params)
        warn_if_implausible(result.label, result.stats, len(result.equity))
        return result

    def evaluate(self, **params: Any) -> tuple[pd.Series, np.ndarray]:
        """The statistics and the per-bar equity of one run, as :meth:`run` gives them but
        without its warning (what a sweep keeps of each combination); engines may compute them
        without building the whole result."""
        result = self._result_of(params)
        return result.stats, result.equity.to_numpy(dtype=np.float64)

    def _result_of(self, params: dict[str, Any]) -> Any:
        values = parameter_values(self.strategy, params)
        with fewer_collections():  # the whole run, statistics included
            return self._run(values)

    def _run(self, values: dict[str, Any]) -> Any:
        """The result of one run with every parameter's value given."""
        raise NotImplementedError

    def optimize(self, **kwargs: Any):
        """Search the strategy's parameters; see :func:`tradenn.backtest.optimize.optimize`.

        ``bt.optimize(fast=range(5, 30, 5), slow=range(20, 100, 10), constraint=lambda p:
        p["fast"] < p["slow"])`` returns an :class:`~tradenn.backtest.optimize.OptimizeResult`
        (best parameters and stats, the full table, the Deflated Sharpe Ratio and PBO).
        """
        from tradenn.backtest.optimize import optimize

        return optimize(self, **kwargs)


def engine_for(strategy: type) -> type[BacktestEngine]:
    """The engine that runs ``strategy``: PortfolioBacktest for a PortfolioStrategy, Backtest
    otherwise."""
    from tradenn.backtest.portfolio import PortfolioBacktest, PortfolioStrategy

    if isinstance(strategy, type) and issubclass(strategy, PortfolioStrategy):
        return PortfolioBacktest
    return Backtest


class Backtest(BacktestEngine):
    """Run a :class:`Strategy` over a price frame with a realistic fill and cost model.

    Parameters
    ----------
    data : DataFrame or str
        A price frame (see :mod:`tradenn.data`) or a source for :func:`tradenn.data.load`.
        Several assets and ``PortfolioStrategy`` classes run in
        :class:`~tradenn.backtest.portfolio.PortfolioBacktest` instead.
    strategy : type[Strategy]
        The strategy class (not an instance).
    cash : float
        Starting cash.
    commission : float
        Fraction of traded value paid on every fill (0.001 = 10 bps), on entry and on exit.
    fixed_commission : float
        Money paid on every fill on top of ``commission``.
    spread : float
        Bid-ask spread as a fraction of price; buys pay half above, sells half below the quote.
    slippage_bps : float
        Further adverse price move on every fill, in basis points.
    margin : float
        Margin requirement in (0, 1]: 1 = no leverage, 0.5 = 2x.
    trade_on_close : bool
        Fill market orders at the close of the bar they are placed on, not the next open.
    exclusive_orders : bool
        Each new order cancels pending orders and closes the open position first.
    fractional : bool
        Allow fractional units (FX, crypto); whole units otherwise.
    finalize_trades : bool
        Close trades still open at the end (at the last close) so they count in trade stats.
    bars_per_year : float, optional
        For annualized statistics; inferred from the index when omitted.
    risk_free_rate : float
        Annual risk-free rate for the Sharpe and Sortino ratios.
    vectorized : bool, optional
        Use the strategy's ``positions()`` (True) or ``next()`` (False); by default
        ``positions()`` when the strategy defines it.
    check_positions : bool
        Prove ``positions()`` causal on every run: it is called again on the first third and
        two thirds of the data (of its first 20,000 bars when longer), whose targets must not
        change (see
        :meth:`~tradenn.backtest.runner.Runner.targets`). A sweep checks a sample of its
        combinations this way and runs the rest without (see :func:`~tradenn.backtest.optimize.
        optimize`); ``tradenn check-lookahead`` is the thorough audit.
    """

    vectorized_method = "positions"

    def __init__(
        self,
        data: pd.DataFrame | str,
        strategy: type[Strategy],
        *,
        cash: float = 10_000.0,
        commission: float = 0.0,
        fixed_commission: float = 0.0,
        spread: float = 0.0,
        slippage_bps: float = 0.0,
        margin: float = 1.0,
        trade_on_close: bool = False,
        exclusive_orders: bool = False,
        fractional: bool = False,
        finalize_trades: bool = False,
        bars_per_year: float | None = None,
        risk_free_rate: float = 0.0,
        vectorized: bool | None = None,
        check_positions: bool = True,
    ) -> None:
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            hint = ""
            if isinstance(strategy, type) and hasattr(strategy, "rebalance"):
                hint = "; a PortfolioStrategy runs in PortfolioBacktest"
            raise BacktestError(f"strategy must be a Strategy subclass, got {strategy!r}{hint}")
        if isinstance(data, Mapping | list | tuple) or (
            isinstance(data, pd.DataFrame) and is_panel(data)
        ):
            raise BacktestError(
                "Backtest runs one asset; for several assets use PortfolioBacktest with a "
                "PortfolioStrategy"
            )
        if isinstance(data, str):
            from tradenn.data import load

            data = load(data)
        else:
            data = price_frame(data, getattr(data, "attrs", {}).get("source", "data"))
        self.settings = Settings(
            cash=cash,
            commission=commission,
            fixed_commission=fixed_commission,
            spread=spread,
            slippage_bps=slippage_bps,
            margin=margin,
            trade_on_close=trade_on_close,
            exclusive_orders=exclusive_orders,
            fractional=fractional,
        )
        self.data = data
        self.strategy = strategy
        self.finalize_trades = finalize_trades
        self.bars_per_year = bars_per_year
        self.risk_free_rate = risk_free_rate
        self.vectorized = self._vectorized(strategy, vectorized)
        self.check_positions = bool(check_positions)

    # ------------------------------------------------------------------------------ run

    def _run(self, values: dict[str, Any]) -> Result:
        runner = self._runner(values)
        return self._result(runner, runner.run(finalize=self.finalize_trades), values)

    def evaluate(self, **params: Any) -> tuple[pd.Series, np.ndarray]:
        """The statistics and the per-bar equity of one run, without the tables a
        :class:`Result` holds (orders, positions, indicators): what a sweep keeps of each
        combination. ``stats`` equals ``run(**params).stats``."""
        values = parameter_values(self.strategy, params)
        with fewer_collections():
            record = self._runner(values).run(finalize=self.finalize_trades)
            stats, equity, _, _ = self._statistics(record)
        return stats, equity

    def _runner(self, values: dict[str, Any]) -> Runner:
        return Runner(
            self.strategy,
            values,
            self.settings,
            self.data,
            vectorized=self.vectorized,
            check=self.check_positions,
            arrays=self._derive("arrays", lambda: frame_arrays(self.data)),
        )

    # --------------------------------------------------------------------------- results

    @property
    def data(self) -> pd.DataFrame:
        """The bars; setting it (a walk-forward window, a look-ahead rerun) forgets what was
        derived from the old ones."""
        return self._data

    @data.setter
    def data(self, frame: pd.DataFrame) -> None:
        self._data = frame
        self._derived: dict[str, Any] = {}

    def _derive(self, name: str, compute) -> Any:
        """``compute()``, worked out once per data: a sweep runs thousands of backtests on the
        same bars."""
        if name not in self._derived:
            self._derived[name] = compute()
        return self._derived[name]

    def _bars_per_year(self) -> float | None:
        """``bars_per_year``, or the value inferred from the data's index."""
        if self.bars_per_year is not None or len(self.data) < 2:
            return self.bars_per_year
        from tradenn.data.calendar import bars_per_year

        return self._derive("bpy", lambda: bars_per_year(self.data.index))

    def _setup(self) -> dict[str, str]:
        return describe_setup(self.settings, self.data, risk_free_rate=self.risk_free_rate)

    def _close(self) -> np.ndarray:
        return self._derive("close", lambda: self.data["Close"].to_numpy(dtype=np.float64))

    def _clock(self) -> np.ndarray:
        """The index's wall-clock times (what durations are measured in)."""
        from tradenn.data.timezones import wall_clock

        return self._derive(
            "clock", lambda: wall_clock(pd.DatetimeIndex(self.data.index)).to_numpy()
        )

    def _statistics(self, record: Record) -> tuple[pd.Series, np.ndarray, np.ndarray, dict]:
        """Stats, equity and units per bar, and the closed trades' columns of a finished run."""
        from tradenn.backtest.stats import compute_stats, log_returns

        frame = self.data
        close = self._close()
        units, cash = account_path(record.fills, self.cash, len(frame))
        equity = cash + units * close
        clock = self._clock()
        trades = trade_columns(record.trades, record.trade_tags, clock)
        stats = compute_stats(
            equity,
            trades,
            close,
            units,
            index=frame.index,
            commissions=record.commissions,
            bars_per_year=self._bars_per_year(),
            risk_free_rate=self.risk_free_rate,
            extra={"# Orders Rejected": record.rejected},
            clock=clock,
            market_returns=self._derive("log returns", lambda: log_returns(close)),
        )
        return stats, equity, units, trades

    def _result(self, runner: Runner, record: Record, params: dict) -> Result:
        frame = self.data
        strategy = runner.strategy
        stats, equity, units, columns = self._statistics(record)
        arrays = self._derive("arrays", lambda: frame_arrays(frame))
        trades = trades_frame(columns, frame.index, arrays["High"], arrays["Low"])
        indicators = {
            series.name: series.full()
            for indicator in strategy.indicators
            for series in indicator.series
        }
        return Result(
            stats=stats,
            trades=trades,
            order_table=functools.partial(orders_frame, record.orders, frame.index),
            equity=pd.Series(equity, index=frame.index, name="Equity"),
            position=pd.Series(units, index=frame.index, name="Position"),
            data=frame,
            params=params,
            strategy_name=type(strategy).__name__,
            indicators=indicators,
            diagnostics=dict(strategy.diagnostics()),
            setup=dict(self._derive("setup", self._setup)),
        )
