"""The backtest engine: run a strategy over a price frame, event by event or vectorized."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.broker import Broker, CostModel, Order, account_problem
from tradenn.backtest.result import Result
from tradenn.backtest.series import BarData, Clock, LookAheadError
from tradenn.backtest.strategy import Strategy, _assert_causal
from tradenn.data.timezones import bar_times, wall_clock
from tradenn.data.validation import validate
from tradenn.errors import TradennError


class BacktestError(TradennError):
    """A backtest that cannot run as configured (bad argument, parameter or strategy output)."""


class Backtest:
    """Run a :class:`Strategy` over a price frame with a realistic fill and cost model.

    Parameters
    ----------
    data : DataFrame or str
        A price frame (see :mod:`tradenn.data`) or a source for :func:`tradenn.data.load`.
        Several assets (a mapping name -> frame, a list of sources, a panel) or a
        ``PortfolioStrategy`` give a :class:`~tradenn.backtest.portfolio.PortfolioBacktest`.
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
    """

    def __new__(cls, data: Any = None, strategy: Any = None, *args: Any, **kwargs: Any):
        # Several assets, a panel or a PortfolioStrategy: the portfolio engine (a subclass).
        if cls is Backtest and _wants_portfolio(data, strategy):
            from tradenn.backtest.portfolio import PortfolioBacktest

            return super().__new__(PortfolioBacktest)
        return super().__new__(cls)

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
    ) -> None:
        if isinstance(data, str):
            from tradenn.data import load

            data = load(data)
        else:
            validate(data, data.attrs.get("source", "data"))
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            raise BacktestError(f"strategy must be a Strategy subclass, got {strategy!r}")
        problem = account_problem(
            cash=cash,
            commission=commission,
            fixed_commission=fixed_commission,
            spread=spread,
            slippage_bps=slippage_bps,
            margin=margin,
        )
        if problem:
            raise BacktestError(problem)
        if vectorized and not hasattr(strategy, "positions"):
            raise BacktestError(f"{strategy.__name__} has no positions() for the vectorized path")
        self.data = data
        self.strategy = strategy
        self.cash = float(cash)
        self.costs = CostModel(commission, fixed_commission, spread, slippage_bps)
        self.margin = margin
        self.trade_on_close = trade_on_close
        self.exclusive_orders = exclusive_orders
        self.fractional = fractional
        self.finalize_trades = finalize_trades
        self.bars_per_year = bars_per_year
        self.risk_free_rate = risk_free_rate
        self.vectorized = hasattr(strategy, "positions") if vectorized is None else vectorized

    # ------------------------------------------------------------------------------ run

    def run(self, **params: Any) -> Result:
        """Run the strategy with its parameters overridden by ``params``; return a Result."""
        values = _parameter_values(self.strategy, params)
        frame = self.data
        o, h, lo, c = (
            frame[col].to_numpy(dtype=np.float64) for col in ("Open", "High", "Low", "Close")
        )
        clock = Clock(-1)  # nothing is revealed during init(): indicators go through self.I
        broker = Broker(
            o,
            h,
            lo,
            c,
            cash=self.cash,
            costs=self.costs,
            margin=self.margin,
            trade_on_close=self.trade_on_close,
            exclusive_orders=self.exclusive_orders,
            fractional=self.fractional,
            clock=clock,
        )
        strategy = self.strategy(broker, BarData(frame, clock), clock, values)
        if self.vectorized:
            self._run_targets(strategy, broker, clock, o, c)
        else:
            self._run_events(strategy, broker, clock, c)
        if self.finalize_trades and broker.trades and not broker.halted:
            clock.i = len(frame) - 1
            broker.liquidate(clock.i, "end of data")
        return self._result(strategy, broker, values)

    def _run_events(self, strategy: Strategy, broker: Broker, clock: Clock, close) -> None:
        try:
            strategy.init()
        except (ValueError, TypeError) as error:  # a strategy rejecting its parameters
            raise BacktestError(f"{type(strategy).__name__}: {error}") from error
        n = len(close)
        start = _warmup(strategy, n)
        next_, process, on_close = strategy.next, broker.process, self.trade_on_close
        closes = close.tolist()  # Python floats: cheaper to index and compare in the loop
        for i in range(n):  # bars are sequential: each decision sees the account the last one left
            clock.i = i
            if broker.orders:
                process(i)
            if i >= start:
                next_()
                if on_close and broker.orders:
                    broker.process_close(i)
            # Equity = cash + units x close is gone past a known price; check that, not equity.
            if not broker.ruin_low < closes[i] < broker.ruin_high:
                broker.liquidate(i, "margin call: equity exhausted")
                broker.halted = True
                break

    def _run_targets(self, strategy: Strategy, broker: Broker, clock: Clock, open_, close) -> None:
        """The vectorized path: target exposures decided at each close, traded only where they
        change, through the same broker (so the same sizing, fills and costs)."""
        frame = self.data
        n = len(frame)
        try:
            raw = strategy.positions(frame.copy())
        except (ValueError, TypeError) as error:
            raise BacktestError(f"{type(strategy).__name__}: {error}") from error
        targets = _targets(raw, n, type(strategy).__name__)
        for cut in sorted({n // 3, 2 * n // 3} - {0}):
            early = _targets(
                strategy.positions(frame.iloc[:cut].copy()), cut, type(strategy).__name__
            )
            try:
                _assert_causal(targets[:cut], early, f"{type(strategy).__name__}.positions")
            except LookAheadError as error:
                raise LookAheadError(str(error).replace("indicator ", "")) from None
        changes = np.flatnonzero(np.diff(targets, prepend=0.0))
        ruin = self._trade_targets(broker, clock, targets, changes, open_, close, n)
        if ruin is not None:
            # Equity ran out at bar `ruin`: replay the changes before it (the account is the same
            # up to there), then liquidate. Rare, so the common path never checks per segment.
            broker.reset()
            self._trade_targets(broker, clock, targets, changes, open_, close, ruin)
            clock.i = ruin
            broker.liquidate(ruin, "margin call: equity exhausted")
            broker.halted = True

    def _trade_targets(self, broker, clock, targets, changes, open_, close, stop) -> int | None:
        """Trade the target changes whose fills fall before bar ``stop``; return the first bar
        whose closing equity is <= 0, if any."""
        shift = 0 if self.trade_on_close else 1
        quotes = close if self.trade_on_close else open_
        for t in changes:  # sequential only over changes: whole-unit sizing depends on equity
            f = t + shift
            if f >= stop:
                break
            clock.i = f
            broker.trade_to(float(targets[t]), float(quotes[f]), f)
        units, cash = _account_path(broker.fills, self.cash, len(close))
        gone = np.flatnonzero((cash + units * close)[:stop] <= 0)
        return int(gone[0]) if len(gone) else None

    def optimize(self, **kwargs: Any):
        """Search the strategy's parameters; see :func:`tradenn.backtest.optimize.optimize`.

        ``bt.optimize(fast=range(5, 30, 5), slow=range(20, 100, 10), constraint=lambda p:
        p["fast"] < p["slow"])`` returns an :class:`~tradenn.backtest.optimize.OptimizeResult`
        (best parameters and stats, the full table, the Deflated Sharpe Ratio and PBO).
        """
        from tradenn.backtest.optimize import optimize

        return optimize(self, **kwargs)

    # --------------------------------------------------------------------------- results

    def _result(self, strategy: Strategy, broker: Broker, params: dict) -> Result:
        from tradenn.backtest.stats import compute_stats

        frame = self.data
        n = len(frame)
        close = frame["Close"].to_numpy(dtype=np.float64)
        units, cash = _account_path(broker.fills, self.cash, n)
        equity = pd.Series(cash + units * close, index=frame.index, name="Equity")
        position = pd.Series(units, index=frame.index, name="Position")
        trades = _trades_frame(broker.closed_trades, frame.index)
        orders = _orders_frame(broker.order_log, frame.index)
        stats = compute_stats(
            equity,
            trades,
            frame["Close"],
            units,
            commissions=broker.commissions,
            bars_per_year=self.bars_per_year,
            risk_free_rate=self.risk_free_rate,
        )
        stats["# Orders Rejected"] = (
            int((orders["Status"] == "rejected").sum()) if len(orders) else 0
        )
        return Result(
            stats=stats,
            trades=trades,
            orders=orders,
            equity=equity,
            position=position,
            data=frame,
            params=params,
            strategy_name=type(strategy).__name__,
            indicators=dict(strategy._indicators),
            diagnostics=dict(strategy.diagnostics()),
        )


# --------------------------------------------------------------------------- helpers


def _wants_portfolio(data: Any, strategy: Any) -> bool:
    """True for data of several assets (a mapping, a list of sources, a panel) or a
    PortfolioStrategy: :class:`Backtest` then builds a ``PortfolioBacktest``."""
    if isinstance(data, Mapping) or isinstance(data, list | tuple):
        return True
    if isinstance(data, pd.DataFrame) and isinstance(data.columns, pd.MultiIndex):
        return True
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        from tradenn.backtest.portfolio import PortfolioStrategy

        return issubclass(strategy, PortfolioStrategy)
    return False


def _parameter_values(strategy: type[Strategy], params: dict[str, Any]) -> dict[str, Any]:
    """The strategy's parameters with ``params`` applied; an unknown name is an error."""
    known = strategy.parameters()
    unknown = sorted(set(params) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise BacktestError(
            f"{strategy.__name__} has no parameter {unknown[0]!r}; its parameters: {listed}"
        )
    return {**known, **params}


def _warmup(strategy: Strategy, n: int) -> int:
    """First bar at which every indicator has a value (``next()`` starts there)."""
    start = 0
    for _, values in strategy._indicators:
        if values.dtype == bool:
            continue
        valid = np.flatnonzero(~np.isnan(values))
        start = max(start, int(valid[0]) if len(valid) else n)
    return start


def _targets(raw: Any, n: int, label: str) -> np.ndarray:
    values = np.asarray(raw.to_numpy() if isinstance(raw, pd.Series) else raw, dtype=np.float64)
    if values.shape != (n,):
        raise BacktestError(f"{label}.positions returned shape {values.shape}; expected ({n},)")
    values = np.nan_to_num(values, nan=0.0)  # no view yet (warm-up) means flat
    bad = np.flatnonzero((values < -1) | (values > 1) | ~np.isfinite(values))
    if len(bad):
        raise BacktestError(
            f"{label}.positions must lie in [-1, 1]; got {values[bad[0]]:g} at bar {bad[0]}"
        )
    return values


def _account_path(fills: list, cash: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Units and cash held at each bar's close, from the fills (step functions)."""
    units = np.zeros(n)
    money = np.full(n, cash)
    if fills:
        bars, units_after, cash_after = (np.array(x) for x in zip(*fills, strict=True))
        last = np.searchsorted(bars, np.arange(n), side="right") - 1
        filled = last >= 0
        units[filled] = units_after[last[filled]]
        money[filled] = cash_after[last[filled]]
    return units, money


def _trades_frame(trades, index: pd.DatetimeIndex) -> pd.DataFrame:
    columns = [
        "Size",
        "EntryBar",
        "ExitBar",
        "EntryPrice",
        "ExitPrice",
        "EntryTime",
        "ExitTime",
        "PnL",
        "ReturnPct",
        "Commission",
        "Duration",
        "Tag",
    ]
    if not trades:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "Size": [t.size for t in trades],
            "EntryBar": [t.entry_bar for t in trades],
            "ExitBar": [t.exit_bar for t in trades],
            "EntryPrice": [t.entry_price for t in trades],
            "ExitPrice": [t.exit_price for t in trades],
            "Commission": [t.commission for t in trades],
            "Tag": [t.tag for t in trades],
        }
    )
    frame["EntryTime"] = index[frame["EntryBar"].to_numpy()]
    frame["ExitTime"] = index[frame["ExitBar"].to_numpy()]
    frame["PnL"] = frame["Size"] * (frame["ExitPrice"] - frame["EntryPrice"]) - frame["Commission"]
    frame["ReturnPct"] = frame["PnL"] / (frame["Size"].abs() * frame["EntryPrice"])
    # Wall-clock time: a trade held over a DST change is not an hour longer or shorter.
    frame["Duration"] = wall_clock(frame["ExitTime"]) - wall_clock(frame["EntryTime"])
    return frame[columns]


def _times(bars: list, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Timestamps of bar positions in the index's zone, NaT where there is none."""
    return bar_times(index, bars)


def _orders_frame(orders: list[Order], index: pd.DatetimeIndex) -> pd.DataFrame:
    columns = {
        "PlacedTime": _times([o.placed_bar for o in orders], index),
        "Side": ["buy" if o.side > 0 else "sell" for o in orders],
        "Size": [o.size for o in orders],
        "Type": [o.kind for o in orders],
        "Limit": [o.limit for o in orders],
        "Stop": [o.stop for o in orders],
        "SL": [o.sl for o in orders],
        "TP": [o.tp for o in orders],
        "Status": [o.status for o in orders],
        "FillTime": _times([o.fill_bar for o in orders], index),
        "FillPrice": [o.fill_price for o in orders],
        "Reason": [o.reason for o in orders],
        "Tag": [o.tag for o in orders],
    }
    return pd.DataFrame(columns)
