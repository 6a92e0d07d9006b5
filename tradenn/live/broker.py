"""Brokers for live runs: the interface a real adapter implements, and a simulated one.

:class:`SimulatedBroker` is a view of the :class:`tradenn.account.Account` that the
paper loop's runner steps, so a paper run fills and charges exactly like a backtest (market
orders at the next bar's open, commission, spread and slippage, whole units, rejections
recorded with their reason): there is no second fill model.
"""

from __future__ import annotations

import abc
from typing import Any

import pandas as pd

from tradenn.account import Account, Fill, Order, Settings


class Broker(abc.ABC):
    """What the run loop needs from a broker; a real broker adapter implements this.

    Orders are :class:`tradenn.account.Order` objects, numbered by ``order.id`` from 1 in
    placement order. Fills reach the run loop through the account the broker acts on.
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
        """Orders placed since the run loop last recorded a bar (the ledger holds the rest)."""


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

    The settings are validated here (:class:`~tradenn.account.Settings`); the paper
    loop builds the account from them and :meth:`attach` es this broker to it.
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
        self.settings = Settings(
            cash=cash,
            commission=commission,
            fixed_commission=fixed_commission,
            spread=spread,
            slippage_bps=slippage_bps,
            margin=margin,
            exclusive_orders=exclusive_orders,
            fractional=fractional,
        )
        self.symbol = symbol
        self.account: Account | None = None

    def attach(self, account: Account) -> None:
        """Act on ``account`` (one book: this broker's instrument)."""
        self.account = account
        (self._book,) = account.books.values()

    # ------------------------------------------------------------------------ the interface

    def submit(self, side: int, size: float | None, **kwargs: Any) -> Order:
        """Queue an order at the current bar (it fills from the next bar on)."""
        return self.account.submit(self._book, side, size, **kwargs)

    def cancel(self, order: Order, reason: str = "canceled") -> None:
        """Cancel a pending order; a filled or already canceled one is left as it is."""
        self.account.cancel(order, reason)

    def positions(self) -> dict[str, float]:
        """``{symbol: units}`` (0 when flat)."""
        return {self.symbol: float(self._book.units)}

    @property
    def cash(self) -> float:
        return float(self.account.cash)

    @property
    def units(self) -> float:
        """Net units held."""
        return float(self._book.units)

    @property
    def equity(self) -> float:
        return float(self.account.equity()) if self._book.units else self.cash

    @property
    def order_log(self) -> list[Order]:
        return self.account.order_log

    @property
    def halted(self) -> bool:
        """True once a margin call has closed the account."""
        return self.account.halted


def order_row(order: Order, times: dict[int, pd.Timestamp]) -> dict[str, Any]:
    """An order as a ledger row (``times``: bar number -> timestamp, for the bars it names)."""

    def stamp(bar: int | None) -> str | None:
        return None if bar is None or bar < 0 else pd.Timestamp(times[bar]).isoformat()

    return {
        "id": order.id,
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


def fill_row(fill: Fill, time: pd.Timestamp) -> dict[str, Any]:
    """A fill (made at ``time``) as a ledger row."""
    return {
        "id": fill.id,
        "order_id": fill.order.id,
        "time": pd.Timestamp(time).isoformat(),
        "side": "buy" if fill.side > 0 else "sell",
        "units": float(fill.units),
        "price": float(fill.price),
        "commission": float(fill.commission),
        "position": float(fill.position),
        "cash": float(fill.cash),
    }
