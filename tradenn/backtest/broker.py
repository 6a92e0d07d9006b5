"""Orders, fills, trades and the account: the fill and cost model every tradenn backtest shares.

Fill rules (a bar has open O, high H, low L, close C):

* **Market** orders placed during bar t's ``next()`` fill at bar t+1's open (or at bar t's close
  with ``trade_on_close=True``).
* **Limit** buy at X fills when ``L <= X``, at ``min(O, X)``: a bar that opens below the limit fills
  at the better open. Limit sells mirror this (``H >= X``, at ``max(O, X)``).
* **Stop** buy at X triggers when ``H >= X`` and fills at ``max(O, X)``: a bar that gaps above the
  stop fills at the worse open. Stop sells mirror this.
* **Stop-limit**: once the stop triggers it becomes a limit order; it fills in the same bar only if
  the limit is marketable at the trigger price, otherwise from the next bar on.
* **Brackets** ``sl=``/``tp=`` attach a stop and a limit order to the trade an entry opens; they
  are checked from the entry's bar (the rest of that bar follows a fill at its open). When one bar
  reaches both, the stop-loss is assumed to fill first: the worse outcome, since the path inside
  a bar is unknown. One cancels the other.

Costs: every fill pays ``commission x traded value + fixed_commission``; buys fill
``spread/2 + slippage_bps/10_000`` above the quoted price and sells as far below it.

Sizing: ``size=None`` invests all free buying power in whole units (fractional with
``fractional=True``) after paying the commission; ``0 < |size| < 1`` is that fraction of equity;
``|size| >= 1`` is a number of units. Buying power is ``equity / margin`` minus the exposure
already held (``margin=1``: no leverage, cash never goes negative; ``margin=0.5``: 2x). An order
that cannot be afforded is rejected and recorded, never silently resized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_EPS = 1e-9  # below this many units a position is flat (fractional trading round-off)


@dataclass(eq=False)
class Order:
    """An instruction to trade, as placed by ``Strategy.buy``/``sell`` or by a bracket.

    ``size`` is positive for a buy and negative for a sell (``None``: all in, with ``side``).
    ``status`` is ``"pending"``, ``"filled"``, ``"rejected"`` or ``"canceled"``.
    """

    side: int
    size: float | None
    limit: float | None = None
    stop: float | None = None
    sl: float | None = None
    tp: float | None = None
    tag: object = None
    placed_bar: int = 0
    parent: Trade | None = None  # a bracket or a trade.close(): closes this trade only
    reduce_only: bool = False  # position.close(): never opens a new position
    in_units: bool = False  # size counts units even below 1 (the vectorized path's orders)
    exclusive: bool = False
    status: str = "pending"
    stop_triggered: bool = False
    fill_bar: int | None = None
    fill_price: float | None = None
    reason: str = ""

    @property
    def kind(self) -> str:
        """``market``, ``limit``, ``stop`` or ``stop-limit``."""
        if self.stop is not None:
            return "stop-limit" if self.limit is not None else "stop"
        return "limit" if self.limit is not None else "market"

    @property
    def is_contingent(self) -> bool:
        """True for a bracket (stop-loss or take-profit) attached to a trade."""
        return self.parent is not None and (
            self.parent.sl_order is self or self.parent.tp_order is self
        )


@dataclass(eq=False)
class Trade:
    """One position lot: opened by a fill, closed (wholly or in parts) by later fills.

    ``size`` is signed units (positive long). ``commission`` is what this lot has paid so far,
    entry share included; ``pl`` and ``pl_pct`` are marked at the last close.
    """

    size: float
    entry_price: float
    entry_bar: int
    commission: float
    tag: object = None
    exit_price: float | None = None
    exit_bar: int | None = None
    sl_order: Order | None = None
    tp_order: Order | None = None
    _broker: Broker | None = field(default=None, repr=False)

    @property
    def is_long(self) -> bool:
        return self.size > 0

    @property
    def is_short(self) -> bool:
        return self.size < 0

    @property
    def pl(self) -> float:
        """Profit or loss in money, net of commissions, at the exit or the current close."""
        price = self.exit_price if self.exit_price is not None else self._broker.last_close
        return self.size * (price - self.entry_price) - self.commission

    @property
    def pl_pct(self) -> float:
        """``pl`` as a fraction of the money the lot put at risk (entry value)."""
        return self.pl / (abs(self.size) * self.entry_price)

    @property
    def sl(self) -> float | None:
        return None if self.sl_order is None else self.sl_order.stop

    @property
    def tp(self) -> float | None:
        return None if self.tp_order is None else self.tp_order.limit

    def close(self, portion: float = 1.0) -> Order:
        """Close ``portion`` (0..1] of this trade with a market order."""
        if not 0 < portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {portion}")
        units = abs(self.size) * portion
        return self._broker.place(-np.sign(self.size), units, parent=self, reduce_only=True)


class Position:
    """The net position in the instrument: the sum of the open trades."""

    __slots__ = ("_broker",)

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    @property
    def size(self) -> float:
        """Net units held (negative when short)."""
        return self._broker.units

    @property
    def pl(self) -> float:
        """Profit or loss of the open trades, net of their commissions, at the current close."""
        return sum(t.pl for t in self._broker.trades)

    @property
    def pl_pct(self) -> float:
        """``pl`` as a fraction of the entry value of the open trades (0 when flat)."""
        value = sum(abs(t.size) * t.entry_price for t in self._broker.trades)
        return self.pl / value if value else 0.0

    @property
    def is_long(self) -> bool:
        return self._broker.units > _EPS

    @property
    def is_short(self) -> bool:
        return self._broker.units < -_EPS

    def __bool__(self) -> bool:
        return bool(abs(self._broker.units) > _EPS)  # units may be a numpy float

    def close(self, portion: float = 1.0) -> Order | None:
        """Close ``portion`` (0..1] of the position with a market order; None when flat."""
        if not 0 < portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {portion}")
        units = self._broker.units
        if abs(units) <= _EPS:
            return None
        return self._broker.place(-math.copysign(1, units), abs(units) * portion, reduce_only=True)

    def __repr__(self) -> str:
        return f"<Position size={self.size:g} pl={self.pl:.2f}>"


@dataclass(frozen=True)
class CostModel:
    """Commission, spread and slippage, shared by the event and the vectorized paths."""

    commission: float = 0.0
    fixed_commission: float = 0.0
    spread: float = 0.0
    slippage_bps: float = 0.0

    @property
    def price_impact(self) -> float:
        """Fraction of the quoted price a buy pays above it (and a sell receives below it)."""
        return self.spread / 2 + self.slippage_bps / 10_000

    def fee(self, value: float) -> float:
        """Commission for a fill of traded ``value`` (money)."""
        return self.commission * value + self.fixed_commission


def account_problem(
    *,
    cash: float,
    commission: float,
    fixed_commission: float,
    spread: float,
    slippage_bps: float,
    margin: float,
) -> str | None:
    """The first invalid account or cost setting as ``"name must be rule, got value"``, or
    None when all are valid (callers raise it as their own error)."""
    checks = {
        "cash": (cash, cash > 0, "> 0"),
        "commission": (commission, 0 <= commission < 1, "in [0, 1)"),
        "fixed_commission": (fixed_commission, fixed_commission >= 0, ">= 0"),
        "spread": (spread, 0 <= spread < 1, "in [0, 1)"),
        "slippage_bps": (slippage_bps, 0 <= slippage_bps < 10_000, "in [0, 10000)"),
        "margin": (margin, 0 < margin <= 1, "in (0, 1]"),
    }
    for name, (value, ok, rule) in checks.items():
        if not ok or not math.isfinite(value):
            return f"{name} must be {rule}, got {value!r}"
    return None


class Broker:
    """The simulated account: pending orders, open and closed trades, cash, fills.

    The engine calls :meth:`process` at the start of each bar (to fill what was pending) and
    :meth:`process_close` after the strategy's ``next()`` when trading on the close.
    """

    def __init__(
        self,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        *,
        cash: float,
        costs: CostModel,
        margin: float = 1.0,
        trade_on_close: bool = False,
        exclusive_orders: bool = False,
        fractional: bool = False,
        clock=None,
    ) -> None:
        from tradenn.backtest.series import Clock

        self._open, self._high, self._low, self._close = open_, high, low, close
        self._clock = clock if clock is not None else Clock(0)
        self.cash = float(cash)
        self.costs = costs
        self.margin = margin
        self.trade_on_close = trade_on_close
        self.exclusive_orders = exclusive_orders
        self.fractional = fractional
        self._initial_cash = self.cash
        self.reset()

    def reset(self) -> None:
        """Back to the starting cash with no orders, trades or fills."""
        self.cash = self._initial_cash
        self.units = 0.0
        self.orders: list[Order] = []  # pending, in placement order
        self.trades: list[Trade] = []  # open, oldest first (FIFO)
        self.closed_trades: list[Trade] = []
        self.order_log: list[Order] = []  # every order ever placed
        self.commissions = 0.0
        self.fills: list[tuple[int, float, float]] = []  # (bar, units after, cash after)
        self.halted = False
        # Equity (cash + units x close) is <= 0 once the close leaves (ruin_low, ruin_high).
        self.ruin_low, self.ruin_high = -math.inf, math.inf

    # ------------------------------------------------------------------------ account values

    @property
    def bar(self) -> int:
        """The current bar (the engine's clock)."""
        return self._clock.i

    @property
    def last_close(self) -> float:
        return float(self._close[self.bar])

    @property
    def equity(self) -> float:
        """Cash plus the open position marked at the current close."""
        return self.cash + self.units * float(self._close[self.bar])

    # ---------------------------------------------------------------------------- placing

    def place(
        self,
        side: float,
        size: float | None,
        *,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        parent: Trade | None = None,
        reduce_only: bool = False,
    ) -> Order:
        """Queue an order (validated here; sized and priced when it fills)."""
        if size is not None:
            if not (math.isfinite(size) and size > 0):
                raise ValueError(
                    f"size must be a positive number of units or a fraction, got {size}"
                )
            if (
                1 <= size
                and not self.fractional
                and size != round(size)
                and parent is None
                and not reduce_only
            ):
                raise ValueError(
                    f"size {size} is neither a fraction of equity (0 < size < 1) nor whole units; "
                    "pass fractional=True to Backtest for fractional units"
                )
        for name, value in (("limit", limit), ("stop", stop), ("sl", sl), ("tp", tp)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive price, got {value}")
        order = Order(int(side), size, limit, stop, sl, tp, tag, self.bar, parent, reduce_only)
        if self.exclusive_orders and parent is None and not reduce_only:
            for pending in self.orders:
                if not pending.is_contingent:
                    self._cancel(pending, "canceled by a newer order (exclusive_orders)")
            self.orders = [o for o in self.orders if o.status == "pending"]
            order.exclusive = True
        self.orders.append(order)
        self.order_log.append(order)
        return order

    def _cancel(self, order: Order, reason: str) -> None:
        order.status, order.reason = "canceled", reason

    def _reject(self, order: Order, reason: str) -> None:
        order.status, order.reason = "rejected", reason

    # ---------------------------------------------------------------------------- processing

    def process(self, i: int) -> None:
        """Fill what bar ``i`` allows, in the order a trading day unfolds: market orders at the
        open, then stops and limits over the bar's range (stop-loss before take-profit)."""
        o, h, lo = float(self._open[i]), float(self._high[i]), float(self._low[i])
        for order in list(self.orders):
            if order.status != "pending" or order.is_contingent:
                continue
            if order.kind == "market":
                if order.placed_bar < i:
                    self._fill(order, o, i)
            elif order.placed_bar < i:
                self._try_conditional(order, o, h, lo, i)
        self._check_brackets(o, h, lo, i)
        self.orders = [order for order in self.orders if order.status == "pending"]

    def process_close(self, i: int) -> None:
        """Fill market orders placed during bar ``i``'s ``next()`` at its close."""
        c = float(self._close[i])
        for order in list(self.orders):
            if order.status == "pending" and order.kind == "market" and not order.is_contingent:
                self._fill(order, c, i)
        self.orders = [order for order in self.orders if order.status == "pending"]

    def _try_conditional(self, order: Order, o: float, h: float, lo: float, i: int) -> None:
        buy = order.side > 0
        if order.stop is not None and not order.stop_triggered:
            if not (h >= order.stop if buy else lo <= order.stop):
                return
            order.stop_triggered = True
            trigger = max(o, order.stop) if buy else min(o, order.stop)
            if order.limit is None:
                self._fill(order, trigger, i)
            elif trigger <= order.limit if buy else trigger >= order.limit:
                self._fill(order, trigger, i)
            return
        if order.limit is not None and (lo <= order.limit if buy else h >= order.limit):
            self._fill(order, min(o, order.limit) if buy else max(o, order.limit), i)

    def _check_brackets(self, o: float, h: float, lo: float, i: int) -> None:
        for trade in list(self.trades):
            sl, tp = trade.sl_order, trade.tp_order
            long = trade.size > 0
            if sl is not None and (lo <= sl.stop if long else h >= sl.stop):
                self._fill(sl, min(o, sl.stop) if long else max(o, sl.stop), i)
            elif tp is not None and (h >= tp.limit if long else lo <= tp.limit):
                self._fill(tp, max(o, tp.limit) if long else min(o, tp.limit), i)

    # -------------------------------------------------------------------------------- fills

    def _whole(self, units: float) -> float:
        return units if self.fractional else float(math.floor(units + _EPS))

    def _fill(self, order: Order, quote: float, i: int) -> None:
        """Size, cost and book ``order`` at the quoted price ``quote`` on bar ``i``.

        With ``c`` units of an opposite position closed in the same fill, ``h`` same-side units
        kept, per-unit trading cost ``k = quote x impact + commission x price`` and margin ``m``,
        the account after the fill has equity ``E - (c + o) k - fixed`` and must cover exposure
        ``(h + o) quote m``; so the most units ``o`` an all-in order can open is
        ``(E - c k - fixed - h quote m) / (quote m + k)``.
        """
        side = order.side
        price = quote * (1 + side * self.costs.price_impact)
        if order.parent is not None:
            trade = order.parent
            if trade not in self.trades:
                return self._cancel(order, "its trade is already closed")
            units = min(abs(trade.size), order.size if order.size is not None else math.inf)
            return self._book(order, price, i, closing=[(trade, units)], opening=0.0)
        held = self.units
        if order.reduce_only:
            if held * side >= -_EPS:
                return self._cancel(order, "nothing to close")
            return self._book(
                order, price, i, closing=self._fifo(min(order.size, abs(held))), opening=0.0
            )
        if order.exclusive and abs(held) > _EPS:
            self.close_all(quote, i, order.tag)
            held = self.units
        opposite = held * side < -_EPS
        closing = abs(held) if opposite else 0.0
        kept = 0.0 if opposite else abs(held)
        equity = self.cash + held * quote
        m, fixed = self.margin, self.costs.fixed_commission
        k = self._cost_per_unit(quote, price)
        if order.size is None:
            opening = self._whole(
                max(0.0, (equity - closing * k - fixed - kept * quote * m) / (quote * m + k))
            )
            if opening <= 0 and not closing:
                return self._reject(order, f"insufficient buying power (equity {equity:.2f})")
        else:
            total = order.size
            if total < 1 and not order.in_units:
                total = self.units_for_fraction(side, total, quote, equity)
                if total <= 0:
                    return self._reject(order, "the fraction of equity buys zero units")
            opening = max(0.0, total - closing)
            closing = min(closing, total)
            if opening > 0:
                after = equity - (closing + opening) * k - fixed
                need = (kept + opening) * quote * m
                if need > after + 1e-9 * need:
                    return self._reject(
                        order,
                        f"insufficient buying power: {opening:g} units need {need:.2f} "
                        f"of margin, equity after costs {after:.2f}",
                    )
        self._book(order, price, i, closing=self._fifo(closing), opening=opening)

    def _fifo(self, units: float) -> list[tuple[Trade, float]]:
        """The open trades (oldest first) and how many units of each to close."""
        plan = []
        for trade in self.trades:
            if units <= _EPS:
                break
            take = min(abs(trade.size), units)
            plan.append((trade, take))
            units -= take
        return plan

    def _book(self, order: Order, price: float, i: int, *, closing, opening: float) -> None:
        side = order.side
        traded = opening
        for _, units in closing:
            traded += units
        if traded <= _EPS:
            return self._cancel(order, "nothing to trade")
        fee = self.costs.fee(traded * price)
        self.cash -= side * traded * price + fee
        self.commissions += fee
        self.units += side * traded
        if abs(self.units) <= _EPS:
            self.units = 0.0
        for trade, units in closing:
            self._close_lot(trade, units, price, i, fee * units / traded)
        if opening > _EPS:
            trade = Trade(side * opening, price, i, fee * opening / traded, order.tag, _broker=self)
            self.trades.append(trade)
            self._attach_brackets(order, trade)
        order.status, order.fill_bar, order.fill_price = "filled", i, price
        self.fills.append((i, self.units, self.cash))
        units, cash = self.units, self.cash
        self.ruin_low = -cash / units if units > 0 else -math.inf
        self.ruin_high = cash / -units if units < 0 else math.inf
        if units == 0:
            self.ruin_low = -math.inf if cash > 0 else math.inf

    def _close_lot(self, trade: Trade, units: float, price: float, i: int, fee: float) -> None:
        if units >= abs(trade.size) - _EPS:
            trade.commission += fee
            trade.exit_price, trade.exit_bar = price, i
            self.trades.remove(trade)
            self.closed_trades.append(trade)
            for bracket in (trade.sl_order, trade.tp_order):
                if bracket is not None and bracket.status == "pending":
                    self._cancel(bracket, "its trade closed")
            return
        # Split: the closed part becomes its own closed trade with its share of the entry fee.
        share = units / abs(trade.size)
        part = Trade(
            math.copysign(units, trade.size),
            trade.entry_price,
            trade.entry_bar,
            trade.commission * share + fee,
            trade.tag,
            price,
            i,
            _broker=self,
        )
        trade.commission *= 1 - share
        trade.size -= math.copysign(units, trade.size)
        self.closed_trades.append(part)

    def _attach_brackets(self, order: Order, trade: Trade) -> None:
        long = trade.size > 0
        if order.sl is not None:
            if (order.sl >= trade.entry_price) if long else (order.sl <= trade.entry_price):
                order.reason = f"sl {order.sl:g} on the wrong side of entry {trade.entry_price:g}"
            else:
                trade.sl_order = self._bracket(trade, stop=order.sl)
        if order.tp is not None:
            if (order.tp <= trade.entry_price) if long else (order.tp >= trade.entry_price):
                order.reason = f"tp {order.tp:g} on the wrong side of entry {trade.entry_price:g}"
            else:
                trade.tp_order = self._bracket(trade, limit=order.tp)

    def _bracket(self, trade: Trade, *, stop=None, limit=None) -> Order:
        order = Order(
            -int(np.sign(trade.size)), None, limit, stop, placed_bar=self.bar, parent=trade
        )
        self.orders.append(order)
        self.order_log.append(order)
        return order

    # ------------------------------------------------------------------------- end of run

    def _cost_per_unit(self, quote: float, price: float) -> float:
        """What trading one unit costs beyond its quote: the price impact plus the commission."""
        return quote * self.costs.price_impact + self.costs.commission * price

    def units_for_fraction(self, side: int, fraction: float, quote: float, equity: float) -> float:
        """Units that put ``fraction`` of ``equity`` (valued at ``quote``) into a position on
        ``side``, after the costs of buying them: ``(fraction x (E - fixed)) / (quote m + k)``."""
        price = quote * (1 + side * self.costs.price_impact)
        k = self._cost_per_unit(quote, price)
        return self._whole(
            fraction * (equity - self.costs.fixed_commission) / (quote * self.margin + k)
        )

    def trade_to(self, target: float, quote: float, i: int) -> None:
        """Move to ``target`` exposure (fraction of equity, sign = side) at ``quote`` on bar
        ``i``: close everything on an exit or a flip, then trade the difference in units
        (sized by :meth:`units_for_fraction`). The step of every target-driven path."""
        held = self.units
        if held and (target == 0 or (target > 0) != (held > 0)):
            self.close_all(quote, i)
            held = self.units
        if target != 0:
            side = 1 if target > 0 else -1
            equity = self.cash + held * quote
            delta = self.units_for_fraction(side, abs(target), quote, equity) - abs(held)
            if delta > _EPS:
                self.execute(side, delta, quote, i)
            elif delta < -_EPS:
                self.execute(-side, -delta, quote, i, reduce_only=True)

    def execute(self, side: int, units: float, quote: float, i: int, *, reduce_only=False) -> Order:
        """Trade ``units`` at once at ``quote`` on bar ``i`` (the vectorized path's orders)."""
        order = Order(side, units, placed_bar=i, reduce_only=reduce_only, in_units=True)
        self.order_log.append(order)
        self._fill(order, quote, i)
        return order

    def close_all(self, quote: float, i: int, tag: object = None) -> None:
        """Close every open trade at ``quote`` (costs applied) in one fill on bar ``i``."""
        held = self.units
        if abs(held) <= _EPS:
            return
        side = -int(np.sign(held))
        order = Order(side, abs(held), placed_bar=i, reduce_only=True, tag=tag)
        self.order_log.append(order)
        price = quote * (1 + side * self.costs.price_impact)
        self._book(order, price, i, closing=self._fifo(abs(held)), opening=0.0)

    def liquidate(self, i: int, reason: str) -> None:
        """Cancel pending orders and close everything at bar ``i``'s close."""
        for order in self.orders:
            self._cancel(order, reason)
        self.orders = []
        self.close_all(float(self._close[i]), i, reason)
