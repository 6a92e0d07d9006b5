"""Brokers for live runs: the interface a real adapter implements, and a simulated one.

:class:`SimulatedBroker` does not model fills itself: it drives the backtester's
:class:`tradenn.backtest.broker.Broker` over a growing history of bars, so a paper run fills and
charges exactly like a backtest (market orders at the next bar's open, commission, spread and
slippage, whole units, rejections recorded with their reason).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tradenn.backtest.broker import Broker as _BacktestBroker
from tradenn.backtest.broker import CostModel, Order, account_problem
from tradenn.backtest.series import Clock
from tradenn.live.feeds import Bar


@dataclass(frozen=True)
class Fill:
    """One execution: ``units`` traded at ``price`` (costs included) for order ``order_id``;
    ``position`` and ``cash`` are the account right after it."""

    id: int
    order_id: int
    bar: int
    side: int
    units: float
    price: float
    commission: float
    position: float
    cash: float


class Broker(abc.ABC):
    """What the run loop needs from a broker; a real broker adapter implements this.

    Orders are :class:`tradenn.backtest.broker.Order` objects; order ids are 1-based positions
    in :attr:`order_log` (every order ever placed, in placement order).
    """

    symbol: str

    @abc.abstractmethod
    def submit(self, side: int, size: float | None, **kwargs: Any) -> Order:
        """Place an order (``side`` +1 buy, -1 sell; ``kwargs``: limit, stop, sl, tp, tag)."""

    @abc.abstractmethod
    def cancel(self, order: Order, reason: str = "canceled") -> None:
        """Cancel a pending order."""

    @abc.abstractmethod
    def positions(self) -> dict[str, float]:
        """Units held per symbol (negative when short)."""

    @property
    @abc.abstractmethod
    def cash(self) -> float:
        """Cash in the account."""

    @property
    @abc.abstractmethod
    def equity(self) -> float:
        """Cash plus positions marked at the last close."""

    @property
    @abc.abstractmethod
    def order_log(self) -> list[Order]:
        """Every order ever placed, in placement order."""

    @abc.abstractmethod
    def process_bar(self, bar: Bar) -> list[Fill]:
        """Take in a new bar; fill what was pending at it; return the fills."""


class _RecordingBroker(_BacktestBroker):
    """The backtest broker, unchanged, noting each fill's order, units and commission."""

    def reset(self) -> None:
        super().reset()
        self.fill_log: list[Fill] = []

    def _book(self, order: Order, price: float, i: int, *, closing, opening: float) -> None:
        before_units, before_fees, before_fills = self.units, self.commissions, len(self.fills)
        super()._book(order, price, i, closing=closing, opening=opening)
        if len(self.fills) > before_fills:
            self.fill_log.append(
                Fill(
                    len(self.fill_log) + 1,
                    _position(self.order_log, order) + 1,
                    i,
                    order.side,
                    abs(self.units - before_units),
                    price,
                    self.commissions - before_fees,
                    self.units,
                    self.cash,
                )
            )


def _position(orders: list[Order], order: Order) -> int:
    """Index of ``order`` (by identity) in ``orders``, searching from the end: fills are of
    recent orders."""
    for k in range(len(orders) - 1, -1, -1):
        if orders[k] is order:
            return k
    raise ValueError("SimulatedBroker: a fill for an order that was never placed")


class SimulatedBroker(Broker):
    """A paper account with the backtester's fill and cost model.

    Parameters
    ----------
    cash : float
        Starting cash.
    commission, fixed_commission, spread, slippage_bps : float
        Costs, as in :class:`tradenn.backtest.Backtest`.
    margin, exclusive_orders, fractional
        As in :class:`tradenn.backtest.Backtest`.
    symbol : str
        Name of the instrument (for :meth:`positions` and the ledger).
    """

    def __init__(
        self,
        cash: float = 10_000.0,
        *,
        commission: float = 0.0,
        fixed_commission: float = 0.0,
        spread: float = 0.0,
        slippage_bps: float = 0.0,
        margin: float = 1.0,
        exclusive_orders: bool = False,
        fractional: bool = False,
        symbol: str = "",
    ) -> None:
        problem = account_problem(
            cash=cash,
            commission=commission,
            fixed_commission=fixed_commission,
            spread=spread,
            slippage_bps=slippage_bps,
            margin=margin,
        )
        if problem:
            raise ValueError(f"SimulatedBroker: {problem}")
        self.symbol = symbol
        self.settings = {
            "cash": float(cash),
            "commission": float(commission),
            "fixed_commission": float(fixed_commission),
            "spread": float(spread),
            "slippage_bps": float(slippage_bps),
            "margin": float(margin),
            "exclusive_orders": bool(exclusive_orders),
            "fractional": bool(fractional),
        }
        # The bars so far, as lists the backtest broker indexes by bar number (they only grow).
        self.times: list[pd.Timestamp] = []
        self._open: list[float] = []
        self._high: list[float] = []
        self._low: list[float] = []
        self._close: list[float] = []
        self._volume: list[float] = []
        self.clock = Clock(-1)
        self.core = _RecordingBroker(
            self._open,
            self._high,
            self._low,
            self._close,
            cash=cash,
            costs=CostModel(commission, fixed_commission, spread, slippage_bps),
            margin=margin,
            exclusive_orders=exclusive_orders,
            fractional=fractional,
            clock=self.clock,
        )
        self.pending_target: float | None = None  # a positions() decision for the next open

    # ------------------------------------------------------------------------ the interface

    def submit(self, side: int, size: float | None, **kwargs: Any) -> Order:
        """Queue an order at the current bar (it fills from the next bar on)."""
        return self.core.place(side, size, **kwargs)

    def cancel(self, order: Order, reason: str = "canceled") -> None:
        """Cancel a pending order; a filled or already canceled one is left as it is."""
        if order.status == "pending":
            order.status, order.reason = "canceled", reason
            self.core.orders = [o for o in self.core.orders if o.status == "pending"]

    def positions(self) -> dict[str, float]:
        """``{symbol: units}`` (0 when flat)."""
        return {self.symbol: float(self.core.units)}

    @property
    def cash(self) -> float:
        return float(self.core.cash)

    @property
    def units(self) -> float:
        """Net units held."""
        return float(self.core.units)

    @property
    def equity(self) -> float:
        return float(self.core.equity) if self._close else self.cash

    @property
    def order_log(self) -> list[Order]:
        return self.core.order_log

    @property
    def fills(self) -> list[Fill]:
        """Every fill so far."""
        return self.core.fill_log

    @property
    def halted(self) -> bool:
        """True once a margin call has closed the account."""
        return self.core.halted

    def process_bar(self, bar: Bar) -> list[Fill]:
        """Append ``bar`` and fill at it what was pending: orders from earlier bars (at its open
        and over its range) and a pending ``positions()`` target (at its open)."""
        self.times.append(pd.Timestamp(bar.time))
        for series, value in zip(
            (self._open, self._high, self._low, self._close, self._volume), bar[1:], strict=True
        ):
            series.append(float(value))
        i = len(self._close) - 1
        self.clock.i = i
        before = len(self.core.fill_log)
        if self.core.halted:
            return []
        if self.core.orders:
            self.core.process(i)
        if self.pending_target is not None:
            self._trade_target(self.pending_target, self._open[i], i)
            self.pending_target = None
        return self.core.fill_log[before:]

    def frame(self) -> pd.DataFrame:
        """The bars so far as a price frame."""
        return pd.DataFrame(
            {
                "Open": self._open,
                "High": self._high,
                "Low": self._low,
                "Close": self._close,
                "Volume": self._volume,
            },
            index=pd.DatetimeIndex(self.times),
        )

    def check_margin(self) -> bool:
        """Liquidate at the current close if equity is exhausted (as the backtester does);
        True if it happened."""
        i = self.clock.i
        if self.core.halted or self.core.ruin_low < self._close[i] < self.core.ruin_high:
            return False
        self.core.liquidate(i, "margin call: equity exhausted")
        self.core.halted = True
        return True

    def _trade_target(self, w: float, quote: float, i: int) -> None:
        """Move to target exposure ``w`` at ``quote``: the backtester's own step."""
        self.core.trade_to(w, quote, i)


def order_row(order_id: int, order: Order, times: list[pd.Timestamp]) -> dict[str, Any]:
    """An order as a ledger row."""

    def stamp(bar: int | None) -> str | None:
        return None if bar is None or bar < 0 else pd.Timestamp(times[bar]).isoformat()

    return {
        "id": order_id,
        "placed_time": stamp(order.placed_bar),
        "side": "buy" if order.side > 0 else "sell",
        "size": None if order.size is None else float(order.size),
        "type": order.kind,
        "limit_price": order.limit,
        "stop_price": order.stop,
        "sl": order.sl,
        "tp": order.tp,
        "tag": None if order.tag is None else str(order.tag),
        "status": order.status,
        "fill_time": stamp(order.fill_bar),
        "fill_price": order.fill_price,
        "reason": order.reason,
    }


def fill_row(fill: Fill, times: list[pd.Timestamp]) -> dict[str, Any]:
    """A fill as a ledger row."""
    return {
        "id": fill.id,
        "order_id": fill.order_id,
        "time": pd.Timestamp(times[fill.bar]).isoformat(),
        "side": "buy" if fill.side > 0 else "sell",
        "units": float(fill.units),
        "price": float(fill.price),
        "commission": float(fill.commission),
        "position": float(fill.position),
        "cash": float(fill.cash),
    }
