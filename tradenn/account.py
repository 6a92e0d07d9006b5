"""The account: the only code that changes cash, units and orders.

One :class:`Account` holds the cash that every asset shares and one :class:`Book` per asset
(its pending orders, open and closed trades, units and commissions). A single-asset backtest is
an account with one book; a portfolio, the paper broker and :class:`~tradenn.rl.MarketEnv` use
the same class. Everything that trades goes through its public methods: :meth:`Account.submit`,
:meth:`~Account.cancel`, :meth:`~Account.process_bar` (fill what a bar allows),
:meth:`~Account.trade_to` (move one asset to a target exposure), :meth:`~Account.rebalance`
(several assets at once), :meth:`~Account.close_position` and :meth:`~Account.liquidate`.
Its :meth:`~Account.state` is a JSON-ready snapshot from which :meth:`Account.restore` rebuilds
it exactly (the paper loop's restart).

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
  are checked from the entry's bar (the rest of that bar follows the entry's fill, from its
  quote). When one bar reaches both, the stop-loss is assumed to fill first: the worse outcome,
  since the path inside a bar is unknown. One cancels the other. A leg already marketable when
  the entry fills fills at once at the entry's quote, as on an exchange.
* **Order management**: :meth:`Order.cancel`; ``order.sl``/``order.tp`` and ``trade.sl``/
  ``trade.tp`` are assignable (:meth:`Account.set_bracket`); :class:`Trail` makes a trade's
  stop-loss trail the close by a distance, a percentage or an ATR multiple
  (:meth:`Account.trail`), updated at the start of each bar from the previous close.

Costs: every fill pays ``commission x traded value + fixed_commission``; buys fill
``spread/2 + slippage_bps/10_000`` above the quoted price and sells as far below it.

Sizing: ``size=None`` invests all free buying power in whole units (fractional with
``fractional=True``) after paying the commission; ``0 < |size| < 1`` is that fraction of equity;
``|size| >= 1`` is a number of units. Buying power is ``equity / margin`` minus the exposure
already held (``margin=1``: no leverage, cash never goes negative; ``margin=0.5``: 2x). An order
that cannot be afforded is rejected and recorded, never silently resized.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from tradenn import checks
from tradenn.errors import BacktestError

__all__ = [
    "FLAT",
    "ORDER_FIELDS",
    "TRADE_FIELDS",
    "Account",
    "Book",
    "CostModel",
    "Fill",
    "Order",
    "Position",
    "Record",
    "Settings",
    "Trade",
    "Trail",
    "trade_targets",
]

FLAT = 1e-9
"""Below this many units a position is flat (fractional trading round-off)."""

# the bounds of each cost, as tradenn.checks.number takes them
_COST_RULES: dict[str, dict[str, Any]] = {
    "commission": {"low": 0, "high": 1, "high_open": True},
    "fixed_commission": {"low": 0},
    "spread": {"low": 0, "high": 1, "high_open": True},
    "slippage_bps": {"low": 0, "high": 10_000, "high_open": True},
}


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CostModel:
    """Commission, spread and slippage of one asset."""

    commission: float = 0.0
    fixed_commission: float = 0.0
    spread: float = 0.0
    slippage_bps: float = 0.0

    @functools.cached_property
    def price_impact(self) -> float:
        """Fraction of the quoted price a buy pays above it (and a sell receives below it)."""
        return self.spread / 2 + self.slippage_bps / 10_000

    def fee(self, value: float) -> float:
        """Commission for a fill of traded ``value`` (money)."""
        return self.commission * value + self.fixed_commission


@dataclass(frozen=True)
class Settings:
    """Everything that configures an account, validated once on construction.

    Parameters
    ----------
    cash : float
        Starting cash (> 0).
    commission : float or mapping
        Fraction of traded value paid on every fill, in [0, 1); a mapping asset -> value gives
        each asset its own (every asset named).
    fixed_commission : float or mapping
        Money paid on every fill on top of ``commission`` (>= 0).
    spread : float or mapping
        Bid-ask spread as a fraction of price, in [0, 1); buys pay half above the quote, sells
        half below.
    slippage_bps : float or mapping
        Further adverse price move on every fill, in basis points, in [0, 10000).
    margin : float
        Margin requirement in (0, 1]: 1 = no leverage, 0.5 = 2x.
    trade_on_close : bool
        Fill market orders (and target changes) at the close of the deciding bar, not the next
        open.
    exclusive_orders : bool
        Each new order cancels pending orders and closes the open position first.
    fractional : bool
        Fractional units (FX, crypto); whole units otherwise.
    max_leverage : float, optional
        Limit on ``sum |weight|`` of a portfolio's targets; default ``1 / margin``.

    Raises
    ------
    BacktestError
        ``"name must be rule, got value"`` for the first invalid setting.
    """

    cash: float = 10_000.0
    commission: float | Mapping[str, float] = 0.0
    fixed_commission: float | Mapping[str, float] = 0.0
    spread: float | Mapping[str, float] = 0.0
    slippage_bps: float | Mapping[str, float] = 0.0
    margin: float = 1.0
    trade_on_close: bool = False
    exclusive_orders: bool = False
    fractional: bool = False
    max_leverage: float | None = None

    def __post_init__(self) -> None:
        cash = checks.number(
            self.cash, "cash", low=0, high=1e15, low_open=True, high_open=True, error=BacktestError
        )
        checks.number(self.margin, "margin", low=0, high=1, low_open=True, error=BacktestError)
        for name, bounds in _COST_RULES.items():
            value = getattr(self, name)
            if isinstance(value, Mapping):
                for asset, v in value.items():
                    checks.number(v, f"{name} for {asset!r}", error=BacktestError, **bounds)
            else:
                checks.number(value, name, error=BacktestError, **bounds)
        checks.positive_number(
            self.max_leverage, "max_leverage", allow_none=True, error=BacktestError
        )
        object.__setattr__(self, "cash", cash)

    @property
    def leverage_limit(self) -> float:
        """``max_leverage``, or ``1 / margin`` when not given."""
        return 1.0 / self.margin if self.max_leverage is None else float(self.max_leverage)

    def costs(self, asset: str | None = None) -> CostModel:
        """The cost model of ``asset`` (the only one when costs are not per asset)."""
        values = []
        for name in _COST_RULES:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                if asset not in value:
                    raise BacktestError(f"{name}: no value for asset {asset!r}")
                value = value[asset]
            values.append(float(value))
        return CostModel(*values)

    def check_assets(self, assets: Sequence[str]) -> None:
        """Per-asset costs must name exactly ``assets``."""
        for name in _COST_RULES:
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                continue
            unknown = sorted(set(value) - set(assets))
            if unknown:
                raise BacktestError(
                    f"{name}: unknown asset {unknown[0]!r}; assets: {', '.join(assets)}"
                )
            missing = [a for a in assets if a not in value]
            if missing:
                raise BacktestError(f"{name}: no value for asset {missing[0]!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values (what a paper ledger is bound to)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Trail:
    """How far a trailing stop-loss follows the close: a fixed price ``distance``, a fraction
    ``pct`` of the close, or ``atr`` times the average true range over ``period`` bars.

    After each bar's close ``C_t`` the stop of a long trade becomes
    ``max(sl, C_t - d_t)`` and of a short ``min(sl, C_t + d_t)``, with ``d_t`` the distance,
    ``pct x C_t`` or ``atr x ATR_t``, where ``ATR_t = mean(TR_{t-period+1..t})`` and
    ``TR_j = max(H_j - L_j, |H_j - C_{j-1}|, |L_j - C_{j-1}|)`` (a simple mean, as in
    backtesting.py's ``TrailingStrategy``). The stop only ever tightens; before ``period + 1``
    bars exist an ATR trail waits.
    """

    distance: float | None = None
    pct: float | None = None
    atr: float | None = None
    period: int = 14

    def __post_init__(self) -> None:
        given = [(n, v) for n, v in (("distance", self.distance), ("pct", self.pct),
                                     ("atr", self.atr)) if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError("a trailing stop takes exactly one of distance=, pct= or atr=")
        name, value = given[0]
        if name == "pct":  # a fraction of the close
            checks.number(value, "trail pct", low=0, high=1, low_open=True, high_open=True)
        else:
            checks.positive_number(value, f"trail {name}")
        checks.positive_int(self.period, "trail period")

    def gap(self, book: Book, bar: int) -> float:
        """The stop's distance below (long) or above (short) bar ``bar``'s close; NaN when
        the bars to measure it are not there yet."""
        if self.distance is not None:
            return self.distance
        if self.pct is not None:
            return self.pct * book.close_at(bar)
        bars = book.history(bar - self.period, bar + 1)
        if bars is None:
            return math.nan
        highs, lows, closes = bars
        total = 0.0
        for j in range(1, self.period + 1):
            high, low, before = highs[j], lows[j], closes[j - 1]
            total += max(high - low, abs(high - before), abs(low - before))
        return self.atr * total / self.period

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values (what a snapshot stores)."""
        return {"distance": self.distance, "pct": self.pct, "atr": self.atr,
                "period": self.period}  # fmt: skip


class _CheckedPrice:
    """An order's ``sl`` or ``tp``: read from its ``_sl``/``_tp`` field, assigned through
    :func:`_price_or_none` (a positive price, or None for none).

    Parameters
    ----------
    doc : str
        What the price is (the attribute's docstring).
    """

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.field = name, f"_{name}"

    def __get__(self, order: Order | None, owner: type | None = None) -> Any:
        return self if order is None else getattr(order, self.field)

    def __set__(self, order: Order, price: float | None) -> None:
        setattr(order, self.field, _price_or_none(self.name, price))


@dataclass(eq=False, slots=True)
class Order:
    """An instruction to trade, as placed by ``Strategy.buy``/``sell``, a bracket or a target.

    ``size`` is positive (``None``: all in); ``side`` +1 buys, -1 sells. ``status`` is
    ``"pending"``, ``"filled"``, ``"rejected"`` or ``"canceled"``. ``id`` numbers every order
    of an account from 1, in placement order. A pending order can be canceled
    (:meth:`cancel`) and its ``sl``/``tp`` changed by assignment (checked: a positive price,
    or None for none); a bracket's own price is changed through its trade (``trade.sl = x``).
    """

    side: int
    size: float | None
    limit: float | None = None
    stop: float | None = None
    _sl: float | None = None
    _tp: float | None = None
    tag: object = None
    placed_bar: int = 0
    parent: Trade | None = field(default=None, repr=False)  # a bracket or a trade.close()
    reduce_only: bool = False  # position.close(): never opens a new position
    in_units: bool = False  # size counts units even below 1 (target trades)
    exclusive: bool = False
    status: str = "pending"
    stop_triggered: bool = False
    fill_bar: int | None = None
    fill_price: float | None = None
    reason: str = ""
    asset: str = ""
    id: int = 0
    trail: Trail | None = None
    book: Book | None = field(default=None, repr=False)

    sl = _CheckedPrice("The stop-loss the trade this order opens will get (None: none).")
    tp = _CheckedPrice("The take-profit the trade this order opens will get (None: none).")

    def cancel(self) -> None:
        """Cancel this order if it is still pending (a filled, rejected or canceled order is
        left as it is). Canceling a bracket leaves its trade without that stop or target."""
        if self.book is None:
            raise ValueError("this order was never placed with an account")
        self.book.account.cancel(self)

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


@dataclass(eq=False, slots=True)
class Trade:
    """One position lot: opened by a fill, closed (wholly or in parts) by later fills.

    ``size`` is signed units (positive long). ``commission`` is what this lot has paid so far,
    entry share included; ``pl`` and ``pl_pct`` are marked at the last close. A closed lot
    keeps in ``sl_at_exit`` and ``tp_at_exit`` the stop-loss and take-profit it had when it
    closed (NaN: none).
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
    book: Book | None = field(default=None, repr=False)
    trailing: Trail | None = None
    entry_quote: float = math.nan  # the market price at entry (before costs), for that bar
    sl_at_exit: float = math.nan  # the stop-loss and take-profit it closed with (NaN: none)
    tp_at_exit: float = math.nan

    @property
    def is_long(self) -> bool:
        return self.size > 0

    @property
    def is_short(self) -> bool:
        return self.size < 0

    @property
    def pl(self) -> float:
        """Profit or loss in money, net of commissions, at the exit or the current close."""
        price = self.exit_price if self.exit_price is not None else self.book.last_close
        return self.size * (price - self.entry_price) - self.commission

    @property
    def pl_pct(self) -> float:
        """``pl`` as a fraction of the money the lot put at risk (entry value)."""
        return self.pl / (abs(self.size) * self.entry_price)

    @property
    def sl(self) -> float | None:
        """The stop-loss price (None: none). Assign to move it or set one (a stop order that
        closes the whole trade), or None to remove it."""
        return None if self.sl_order is None else self.sl_order.stop

    @sl.setter
    def sl(self, price: float | None) -> None:
        self.book.account.set_bracket(self, "sl", price)

    @property
    def tp(self) -> float | None:
        """The take-profit price (None: none); assignable like :attr:`sl`."""
        return None if self.tp_order is None else self.tp_order.limit

    @tp.setter
    def tp(self, price: float | None) -> None:
        self.book.account.set_bracket(self, "tp", price)

    def trail(
        self,
        distance: float | None = None,
        *,
        pct: float | None = None,
        atr: float | None = None,
        period: int = 14,
    ) -> None:
        """Trail this trade's stop-loss behind the close (see :class:`Trail`): from now on,
        after every bar, by ``distance`` in price, ``pct`` of the close or ``atr`` times the
        ``period``-bar average true range. The stop moves at once to the current close's
        level if that is tighter; :meth:`stop_trailing` ends it (the stop stays where it is).
        """
        self.book.account.trail(self, Trail(distance, pct, atr, period))

    def stop_trailing(self) -> None:
        """Stop moving the stop-loss (it stays where it is)."""
        self.trailing = None

    def close(self, portion: float = 1.0) -> Order:
        """Close ``portion`` (0..1] of this trade with a market order."""
        if not 0 < portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {portion}")
        units = self.book.account.portion_units(abs(self.size), portion)
        side = -1 if self.size > 0 else 1
        return self.book.account.submit(self.book, side, units, parent=self, reduce_only=True)


class Fill(NamedTuple):
    """One execution: ``units`` of ``asset`` traded at ``price`` (costs included) for ``order``;
    ``position`` and ``cash`` are the account right after it. ``id`` counts fills from 1.
    Immutable (a named tuple: a frozen dataclass took three times as long to build, and a
    backtest builds one per fill)."""

    id: int
    order: Order
    asset: str
    bar: int
    side: int
    units: float
    price: float
    commission: float
    position: float
    cash: float


class Position:
    """The net position in one asset: the sum of its open trades."""

    __slots__ = ("_book",)

    def __init__(self, book: Book) -> None:
        self._book = book

    @property
    def size(self) -> float:
        """Net units held (negative when short)."""
        return self._book.units

    @property
    def pl(self) -> float:
        """Profit or loss of the open trades, net of their commissions, at the current close."""
        return sum(t.pl for t in self._book.trades)

    @property
    def pl_pct(self) -> float:
        """``pl`` as a fraction of the entry value of the open trades (0 when flat)."""
        value = sum(abs(t.size) * t.entry_price for t in self._book.trades)
        return self.pl / value if value else 0.0

    @property
    def is_long(self) -> bool:
        return self._book.units > FLAT

    @property
    def is_short(self) -> bool:
        return self._book.units < -FLAT

    def __bool__(self) -> bool:
        return bool(abs(self._book.units) > FLAT)  # units may be a numpy float

    def close(self, portion: float = 1.0) -> Order | None:
        """Close ``portion`` (0..1] of the position with a market order; None when flat."""
        if not 0 < portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {portion}")
        units = self._book.units
        if abs(units) <= FLAT:
            return None
        side = -1 if units > 0 else 1
        book = self._book
        size = book.account.portion_units(abs(units), portion)
        return book.account.submit(book, side, size, reduce_only=True)

    def __repr__(self) -> str:
        return f"<Position size={self.size:g} pl={self.pl:.2f}>"


class Book:
    """One asset's side of an account: its orders, lots, units and commissions.

    Read it; change it only through its :class:`Account`. ``last_close`` is the price open
    trades are marked at (set by whoever steps the account through bars).
    """

    def __init__(self, account: Account, name: str, costs: CostModel) -> None:
        self.account = account
        self.name = name
        self.costs = costs
        self.units = 0.0
        self.commissions = 0.0
        self.last_close = math.nan
        self.orders: list[Order] = []  # pending, in placement order
        self.trades: list[Trade] = []  # open, oldest first (FIFO)
        self.closed_trades: list[Trade] = []
        self.trailing = False  # some open trade trails its stop (see Account.trail)
        # (start, stop) -> the highs, lows and closes of bars start..stop-1, or None when they
        # are not all there; set by whoever steps the account through bars (trailing stops)
        self.bars: Any = None

    def history(self, start: int, stop: int) -> tuple[Sequence[float], ...] | None:
        """Highs, lows and closes of bars ``start .. stop - 1`` (None when not available)."""
        if start < 0 or self.bars is None:
            return None
        return self.bars(start, stop)

    def close_at(self, bar: int) -> float:
        """Bar ``bar``'s close (the current one: ``last_close``)."""
        if bar == self.account.bar:
            return self.last_close
        bars = self.history(bar, bar + 1)
        return math.nan if bars is None else float(bars[2][0])

    def __repr__(self) -> str:
        return f"<Book {self.name}: {self.units:g} units, {len(self.orders)} pending orders>"


# ---------------------------------------------------------------------------- the account


class Account:
    """Cash shared by one :class:`Book` per asset; the only code that changes either.

    Parameters
    ----------
    settings : Settings
        Cash, costs, margin, fill timing, exclusive orders, fractional units.
    assets : sequence of str
        The asset names, one book each (one asset: the single-asset case).

    Attributes
    ----------
    cash : float
        Money not invested (negative when borrowing).
    books : dict
        Asset name -> :class:`Book`, in the order given.
    order_log, fills : list
        Every order ever placed and every fill, in order (``order.id``, ``fill.id`` count
        from 1).
    bar : int
        The current bar (new orders record it as the bar they were placed on).
    halted : bool
        True after a margin call closed the account.
    """

    def __init__(self, settings: Settings, assets: Sequence[str] = ("asset",)) -> None:
        if not assets:
            raise BacktestError("an account needs at least one asset")
        settings.check_assets(list(assets))
        self.settings = settings
        self.cash = settings.cash
        self.books = {name: Book(self, name, settings.costs(name)) for name in assets}
        self._only = next(iter(self.books.values())) if len(self.books) == 1 else None
        self.order_log: list[Order] = []
        self.fills: list[Fill] = []
        self.order_count = 0  # ids handed out (an account restored mid-run starts above 0)
        self.fill_count = 0
        self.bar = -1
        self.halted = False
        # One-asset accounts: equity (cash + units x close) is <= 0 once the close leaves
        # (ruin_low, ruin_high); the event loop checks that instead of equity.
        self.ruin_low, self.ruin_high = -math.inf, math.inf

    # ------------------------------------------------------------------- values

    def book(self, asset: str) -> Book:
        """The book of ``asset``."""
        try:
            return self.books[asset]
        except KeyError:
            raise BacktestError(
                f"unknown asset {asset!r}; assets: {', '.join(self.books)}"
            ) from None

    @property
    def commissions(self) -> float:
        """Commissions paid so far, all assets."""
        return sum(b.commissions for b in self.books.values())

    def equity(self, marks: Mapping[str, float] | None = None) -> float:
        """Cash plus every holding marked at ``marks`` (asset -> price; each book's
        ``last_close`` for assets not given)."""
        held = 0.0
        for name, book in self.books.items():
            if book.units:
                price = book.last_close if marks is None else marks.get(name, book.last_close)
                held += book.units * price
        return self.cash + held

    def _others(self, book: Book) -> tuple[float, float]:
        """Value and gross exposure of every book but ``book`` at their last closes."""
        if self._only is not None:
            return 0.0, 0.0
        value = exposure = 0.0
        for other in self.books.values():
            if other is not book and other.units:
                value += other.units * other.last_close
                exposure += abs(other.units) * other.last_close
        return value, exposure

    # ------------------------------------------------------------------- orders

    def submit(
        self,
        book: Book,
        side: int,
        size: float | None,
        *,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        parent: Trade | None = None,
        reduce_only: bool = False,
        trail: Trail | None = None,
    ) -> Order:
        """Queue an order on ``book`` (validated here; sized and priced when it fills);
        ``trail`` makes the trade it opens trail its stop-loss (:meth:`trail`)."""
        if size is not None:
            if not (math.isfinite(size) and size > 0):
                raise ValueError(
                    f"size must be a positive number of units or a fraction, got {size}"
                )
            if (
                1 <= size
                and not self.settings.fractional
                and size != round(size)
                and parent is None
                and not reduce_only
            ):
                raise ValueError(
                    f"size {size} is neither a fraction of equity (0 < size < 1) nor whole units; "
                    "pass fractional=True to Backtest for fractional units"
                )
        if limit is not None or stop is not None or sl is not None or tp is not None:
            for name, value in (("limit", limit), ("stop", stop), ("sl", sl), ("tp", tp)):
                if value is not None and not (math.isfinite(value) and value > 0):
                    raise ValueError(f"{name} must be a positive price, got {value}")
        if trail is not None and not isinstance(trail, Trail):
            raise ValueError(f"trail must be a Trail(distance=, pct= or atr=), got {trail!r}")
        order = Order(int(side), size, limit, stop, sl, tp, tag, self.bar, parent, reduce_only)
        order.trail = trail
        if self.settings.exclusive_orders and parent is None and not reduce_only:
            for pending in book.orders:
                if not pending.is_contingent:
                    _cancel(pending, "canceled by a newer order (exclusive_orders)")
            book.orders = [o for o in book.orders if o.status == "pending"]
            order.exclusive = True
        book.orders.append(order)
        self._log(book, order)
        return order

    def cancel(self, order: Order, reason: str = "canceled") -> None:
        """Cancel a pending order; a filled, rejected or canceled one is left as it is."""
        if order.status != "pending":
            return
        _cancel(order, reason)
        trade = order.parent
        if trade is not None:  # a canceled bracket no longer protects its trade
            if trade.sl_order is order:
                trade.sl_order = None
            if trade.tp_order is order:
                trade.tp_order = None
        book = self.books[order.asset]
        book.orders = [o for o in book.orders if o.status == "pending"]

    def _log(self, book: Book, order: Order) -> None:
        self.order_count += 1
        order.asset, order.id, order.book = book.name, self.order_count, book
        self.order_log.append(order)

    def portion_units(self, units: float, portion: float) -> float:
        """How many of ``units`` closing ``portion`` of them closes: exactly that with
        fractional units, else rounded to whole units and at least one (as backtesting.py
        rounds ``trade.close(portion)``), so a whole-unit run never trades a fraction."""
        wanted = units * portion
        if self.settings.fractional or portion == 1:
            return wanted
        return float(min(units, max(1, round(wanted))))

    def set_bracket(self, trade: Trade, which: str, price: float | None) -> None:
        """Give open ``trade`` a stop-loss (``which="sl"``) or take-profit (``"tp"``) at
        ``price``, move the one it has there, or remove it (``price=None``). A level the
        market is already past fills from the next bar on, as any stop or limit does."""
        price = _price_or_none(which, price)
        book = trade.book
        if trade not in book.trades:
            raise ValueError(f"cannot set {which} of a closed trade")
        key = "sl_order" if which == "sl" else "tp_order"
        leg = getattr(trade, key)
        if leg is not None and leg.status != "pending":
            leg = None
        if price is None:
            if leg is not None:
                self.cancel(leg, f"{which} removed")
            setattr(trade, key, None)
        elif leg is not None:
            if which == "sl":
                leg.stop = price
            else:
                leg.limit = price
        else:
            stop, limit = (price, None) if which == "sl" else (None, price)
            setattr(trade, key, self._bracket(book, trade, stop=stop, limit=limit))

    def trail(self, trade: Trade, spec: Trail) -> None:
        """Make open ``trade`` trail its stop-loss as ``spec`` says, from the current bar."""
        if trade not in trade.book.trades:
            raise ValueError("cannot trail a closed trade")
        trade.trailing = spec
        trade.book.trailing = True
        self._trail(trade, self.bar)

    def _trail(self, trade: Trade, bar: int) -> None:
        """Move ``trade``'s stop to bar ``bar``'s close less (long) or plus (short) its trail
        gap, if that is tighter than where it is."""
        book = trade.book
        gap = trade.trailing.gap(book, bar)
        if not gap > 0:  # NaN: not measurable yet
            return
        close = book.close_at(bar)
        level = close - gap if trade.size > 0 else close + gap
        if not level > 0:
            return
        current = trade.sl
        if current is None or (level > current if trade.size > 0 else level < current):
            self.set_bracket(trade, "sl", level)

    def _update_trails(self, book: Book, bar: int) -> None:
        """Move every trailing stop of ``book`` to bar ``bar``'s close."""
        trailing = False
        for trade in book.trades:
            if trade.trailing is not None:
                self._trail(trade, bar)
                trailing = True
        book.trailing = trailing

    # ------------------------------------------------------------------- bars

    def process_bar(self, book: Book, i: int, open_: float, high: float, low: float) -> None:
        """Fill what bar ``i`` allows on ``book``, in the order a trading day unfolds: market
        orders at the open, then stops and limits over the bar's range (stop-loss before
        take-profit). Trailing stops first move to bar ``i - 1``'s close."""
        if book.trailing:
            self._update_trails(book, i - 1)
        for order in list(book.orders):
            if order.status != "pending" or order.is_contingent or order.placed_bar >= i:
                continue
            if order.kind == "market":
                self._fill(book, order, open_, i)
            else:
                self._try_conditional(book, order, open_, high, low, i)
        self._check_brackets(book, open_, high, low, i)
        book.orders = [order for order in book.orders if order.status == "pending"]

    def process_close(self, book: Book, i: int, close: float) -> None:
        """Fill market orders placed during bar ``i``'s decision at its close."""
        for order in list(book.orders):
            if order.status == "pending" and order.kind == "market" and not order.is_contingent:
                self._fill(book, order, close, i)
        book.orders = [order for order in book.orders if order.status == "pending"]

    def _try_conditional(self, book, order, o: float, h: float, lo: float, i: int) -> None:
        buy = order.side > 0
        if order.stop is not None and not order.stop_triggered:
            if not (h >= order.stop if buy else lo <= order.stop):
                return
            order.stop_triggered = True
            trigger = max(o, order.stop) if buy else min(o, order.stop)
            if order.limit is None:
                self._fill(book, order, trigger, i)
            elif trigger <= order.limit if buy else trigger >= order.limit:
                self._fill(book, order, trigger, i)
            return
        if order.limit is not None and (lo <= order.limit if buy else h >= order.limit):
            self._fill(book, order, min(o, order.limit) if buy else max(o, order.limit), i)

    def _check_brackets(self, book: Book, open_: float, h: float, lo: float, i: int) -> None:
        """Stop-loss or take-profit of each open trade over the bar's range; a trade opened
        in this bar after its open starts from its entry quote, not from the open."""
        for trade in list(book.trades):
            sl, tp = trade.sl_order, trade.tp_order
            long = trade.size > 0
            o = trade.entry_quote if trade.entry_bar == i else open_
            if sl is not None and (lo <= sl.stop if long else h >= sl.stop):
                self._fill(book, sl, min(o, sl.stop) if long else max(o, sl.stop), i)
            elif tp is not None and (h >= tp.limit if long else lo <= tp.limit):
                self._fill(book, tp, max(o, tp.limit) if long else min(o, tp.limit), i)

    # ------------------------------------------------------------------- fills

    def _whole(self, units: float) -> float:
        return units if self.settings.fractional else float(math.floor(units + FLAT))

    def _fill(self, book: Book, order: Order, quote: float, i: int) -> None:
        """Size, cost and settle ``order`` at the quoted price ``quote`` on bar ``i``.

        With ``c`` units of an opposite position closed in the same fill, ``h`` same-side units
        kept, per-unit trading cost ``k = quote x impact + commission x price`` and margin ``m``,
        the account after the fill has equity ``E - (c + o) k - fixed`` and must cover exposure
        ``(h + o) quote m``; so the most units ``o`` an all-in order can open is
        ``(E - c k - fixed - h quote m) / (quote m + k)``. Other assets' holdings count in
        ``E`` at their last close, and their exposure in what must be covered.
        """
        side = order.side
        price = quote * (1 + side * book.costs.price_impact)
        if order.parent is not None:
            trade = order.parent
            if trade not in book.trades:
                return _cancel(order, "its trade is already closed")
            units = min(abs(trade.size), order.size if order.size is not None else math.inf)
            return self._settle(book, order, price, i, closing=[(trade, units)], opening=0.0)
        held = book.units
        if order.reduce_only:
            if held * side >= -FLAT:
                return _cancel(order, "nothing to close")
            closing = self._fifo(book, min(order.size, abs(held)))
            return self._settle(book, order, price, i, closing=closing, opening=0.0)
        if order.exclusive and abs(held) > FLAT:
            self.close_position(book, quote, i, order.tag)
            held = book.units
        opposite = held * side < -FLAT
        closing = abs(held) if opposite else 0.0
        kept = 0.0 if opposite else abs(held)
        others, exposure = self._others(book)
        equity = self.cash + others + held * quote
        m, fixed = self.settings.margin, book.costs.fixed_commission
        k = _cost_per_unit(book.costs, quote, price)
        if order.size is None:
            room = equity - closing * k - fixed - kept * quote * m - exposure * m
            opening = self._whole(max(0.0, room / (quote * m + k)))
            if opening <= 0 and not closing:
                return _reject(order, f"insufficient buying power (equity {equity:.2f})")
        else:
            total = order.size
            if total < 1 and not order.in_units:
                total = self.units_for_fraction(book, side, total, quote, equity)
                if total <= 0:
                    return _reject(order, "the fraction of equity buys zero units")
            opening = max(0.0, total - closing)
            closing = min(closing, total)
            if opening > 0:
                after = equity - (closing + opening) * k - fixed
                need = (kept + opening) * quote * m + exposure * m
                if need > after + 1e-9 * need:
                    return _reject(
                        order,
                        f"insufficient buying power: {opening:g} units need {need:.2f} "
                        f"of margin, equity after costs {after:.2f}",
                    )
        trade = self._settle(
            book, order, price, i, closing=self._fifo(book, closing), opening=opening
        )
        if trade is not None:
            self._attach_brackets(book, order, trade, quote, i)

    @staticmethod
    def _fifo(book: Book, units: float) -> list[tuple[Trade, float]]:
        """The open trades (oldest first) and how many units of each to close."""
        plan = []
        for trade in book.trades:
            if units <= FLAT:
                break
            take = min(abs(trade.size), units)
            plan.append((trade, take))
            units -= take
        return plan

    def _settle(
        self, book, order: Order, price: float, i: int, *, closing, opening
    ) -> Trade | None:
        """Book one fill: cash, units, lots, the fill record; returns the lot it opened."""
        side = order.side
        traded = opening
        for _, units in closing:
            traded += units
        if traded <= FLAT:
            return _cancel(order, "nothing to trade")
        fee = book.costs.fee(traded * price)
        self.cash -= side * traded * price + fee
        book.commissions += fee
        book.units += side * traded
        if abs(book.units) <= FLAT:
            book.units = 0.0
        for trade, units in closing:
            self._close_lot(book, trade, units, price, i, fee * units / traded, order)
        trade = None
        if opening > FLAT:
            trade = Trade(side * opening, price, i, fee * opening / traded, order.tag, book=book)
            book.trades.append(trade)
        order.status, order.fill_bar, order.fill_price = "filled", i, price
        self.fill_count += 1
        self.fills.append(
            Fill(
                self.fill_count,
                order,
                book.name,
                i,
                side,
                traded,
                price,
                fee,
                book.units,
                self.cash,
            )
        )
        if self._only is not None:
            units, cash = book.units, self.cash
            self.ruin_low = -cash / units if units > 0 else -math.inf
            self.ruin_high = cash / -units if units < 0 else math.inf
            if units == 0:
                self.ruin_low = -math.inf if cash > 0 else math.inf
        return trade

    def _close_lot(
        self,
        book: Book,
        trade: Trade,
        units: float,
        price: float,
        i: int,
        fee: float,
        closing: Order | None = None,
    ) -> None:
        """Close ``units`` of ``trade`` at ``price`` (paying ``fee``) for order ``closing``;
        the trade's other pending bracket legs are canceled when it closes whole."""
        # The levels the lot closes with (a leg still pending, or the one filling now), kept:
        # its legs are canceled below.
        sl, tp = trade.sl_order, trade.tp_order
        sl_at_exit = sl.stop if sl is not None and sl.status == "pending" else math.nan
        tp_at_exit = tp.limit if tp is not None and tp.status == "pending" else math.nan
        if units >= abs(trade.size) - FLAT:
            trade.commission += fee
            trade.exit_price, trade.exit_bar = price, i
            trade.sl_at_exit, trade.tp_at_exit = sl_at_exit, tp_at_exit
            book.trades.remove(trade)
            book.closed_trades.append(trade)
            for bracket in (trade.sl_order, trade.tp_order):
                if bracket is not None and bracket is not closing and bracket.status == "pending":
                    _cancel(bracket, "its trade closed")
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
            book=book,
            sl_at_exit=sl_at_exit,
            tp_at_exit=tp_at_exit,
        )
        trade.commission *= 1 - share
        trade.size -= math.copysign(units, trade.size)
        book.closed_trades.append(part)

    def _attach_brackets(self, book: Book, order: Order, trade: Trade, quote: float, i: int):
        """Give the trade ``order`` opened its ``sl``/``tp`` legs and trail. A leg the market
        (``quote``, the price the entry filled at before costs) is already past fills at once
        at ``quote``, as an exchange fills a marketable order: a long's take-profit at or
        below the market, a long's stop at or above it (shorts mirror), stop-loss first."""
        long = trade.size > 0
        trade.entry_quote = quote
        if order.sl is not None:
            trade.sl_order = self._bracket(book, trade, stop=order.sl)
        if order.tp is not None:
            trade.tp_order = self._bracket(book, trade, limit=order.tp)
        if order.trail is not None:
            trade.trailing = order.trail
            book.trailing = True
        sl, tp = trade.sl_order, trade.tp_order
        if sl is not None and (quote <= sl.stop if long else quote >= sl.stop):
            self._fill(book, sl, quote, i)
        elif tp is not None and (quote >= tp.limit if long else quote <= tp.limit):
            self._fill(book, tp, quote, i)

    def _bracket(self, book: Book, trade: Trade, *, stop=None, limit=None) -> Order:
        side = -1 if trade.size > 0 else 1
        order = Order(side, None, limit, stop, placed_bar=self.bar, parent=trade)
        book.orders.append(order)
        self._log(book, order)
        return order

    # ------------------------------------------------------------------- targets

    def units_for_fraction(
        self, book: Book, side: int, fraction: float, quote: float, equity: float
    ) -> float:
        """Units that put ``fraction`` of ``equity`` (valued at ``quote``) into a position on
        ``side``, after the costs of buying them: ``(fraction x (E - fixed)) / (quote m + k)``."""
        costs = book.costs
        price = quote * (1 + side * costs.price_impact)
        k = _cost_per_unit(costs, quote, price)
        return self._whole(
            fraction * (equity - costs.fixed_commission) / (quote * self.settings.margin + k)
        )

    def trade_to(self, book: Book, target: float, quote: float, i: int) -> None:
        """Move ``book`` to ``target`` exposure (fraction of equity, sign = side) at ``quote``
        on bar ``i``: close everything on an exit or a flip, then trade the difference in units
        (sized by :meth:`units_for_fraction` on the account's equity)."""
        held = book.units
        if held and (target == 0 or (target > 0) != (held > 0)):
            self.close_position(book, quote, i)
            held = book.units
        if target != 0:
            side = 1 if target > 0 else -1
            others, _ = self._others(book)
            equity = self.cash + others + held * quote
            delta = self.units_for_fraction(book, side, abs(target), quote, equity) - abs(held)
            if delta > FLAT:
                self.execute(book, side, delta, quote, i)
            elif delta < -FLAT:
                self.execute(book, -side, -delta, quote, i, reduce_only=True)

    def execute(
        self,
        book: Book,
        side: int,
        units: float,
        quote: float,
        i: int,
        *,
        reduce_only: bool = False,
        placed_bar: int | None = None,
    ) -> Order:
        """Trade ``units`` at once at ``quote`` on bar ``i`` (a target's order, placed at
        ``placed_bar``, by default ``i``); no margin check beyond the sizing that chose
        ``units``."""
        order = Order(
            side,
            units,
            placed_bar=i if placed_bar is None else placed_bar,
            reduce_only=reduce_only,
            in_units=True,
        )
        self._log(book, order)
        price = quote * (1 + side * book.costs.price_impact)
        if reduce_only:
            closing = self._fifo(book, min(units, abs(book.units)))
            self._settle(book, order, price, i, closing=closing, opening=0.0)
        else:
            held = book.units
            opposite = held * side < -FLAT
            closing = min(abs(held), units) if opposite else 0.0
            self._settle(
                book,
                order,
                price,
                i,
                closing=self._fifo(book, closing),
                opening=units - closing,
            )
        return order

    def rebalance(
        self,
        i: int,
        targets: Mapping[str, float],
        quotes: Mapping[str, float],
        *,
        marks: Mapping[str, float] | None = None,
        placed: Mapping[str, int] | None = None,
    ) -> None:
        """Bring the assets in ``targets`` to their target weights at ``quotes`` on bar ``i``.

        Positions that change side or go flat close first; then equity is measured at
        ``marks`` (default ``quotes``; other assets at their ``last_close``) and each asset is
        sized by :meth:`units_for_fraction`. Reductions trade before increases, with equity
        measured again in between, so selling pays for buying. ``placed`` gives the bar each
        asset's decision was made on.
        """
        placed = placed or {}
        marks = quotes if marks is None else marks
        for name, w in targets.items():
            book = self.books[name]
            held = book.units
            if held and (w == 0 or (w > 0) != (held > 0)):
                order = self.close_position(book, quotes[name], i)
                if order is not None and name in placed:
                    order.placed_bar = placed[name]
        for reducing in (True, False):
            equity = self.equity(marks)
            for name, w in targets.items():
                if w == 0:
                    continue
                book, quote = self.books[name], quotes[name]
                side = 1 if w > 0 else -1
                units = self.units_for_fraction(book, side, abs(w), quote, equity)
                delta = units - abs(book.units)
                if reducing and delta < -FLAT:
                    self.execute(
                        book, -side, -delta, quote, i, reduce_only=True, placed_bar=placed.get(name)
                    )
                elif not reducing and delta > FLAT:
                    self.execute(book, side, delta, quote, i, placed_bar=placed.get(name))

    def close_position(self, book: Book, quote: float, i: int, tag: object = None) -> Order | None:
        """Close every open trade of ``book`` at ``quote`` (costs applied) in one fill on bar
        ``i``; None when flat."""
        held = book.units
        if abs(held) <= FLAT:
            return None
        side = -1 if held > 0 else 1
        order = Order(side, abs(held), placed_bar=i, reduce_only=True, tag=tag)
        self._log(book, order)
        price = quote * (1 + side * book.costs.price_impact)
        self._settle(book, order, price, i, closing=self._fifo(book, abs(held)), opening=0.0)
        return order

    def liquidate(self, i: int, marks: Mapping[str, float], reason: str) -> None:
        """Cancel every pending order and close every holding at ``marks`` on bar ``i``."""
        for book in self.books.values():
            for order in book.orders:
                _cancel(order, reason)
            book.orders = []
            if abs(book.units) > FLAT:
                self.close_position(book, marks[book.name], i, reason)

    def margin_call(self, i: int, marks: Mapping[str, float]) -> bool:
        """Liquidate and halt at ``marks`` when equity there is <= 0; True if it happened."""
        if self.halted or self.equity(marks) > 0:
            return False
        self.liquidate(i, marks, "margin call: equity exhausted")
        self.halted = True
        return True

    # ------------------------------------------------------------------- snapshots

    def state(self) -> dict[str, Any]:
        """Everything needed to continue this account exactly: cash, counters, and per book
        the units, commissions, open lots (with their brackets) and pending orders.

        Closed trades, filled orders and past fills are history, not state: they are not
        included (the paper ledger stores them as they happen)."""
        books = {}
        for name, book in self.books.items():
            books[name] = {
                "units": book.units,
                "commissions": book.commissions,
                "last_close": book.last_close,
                "orders": [_order_state(o, book) for o in book.orders if not o.is_contingent],
                "trades": [_trade_state(t) for t in book.trades],
            }
        return {
            "cash": self.cash,
            "bar": self.bar,
            "halted": self.halted,
            "order_count": self.order_count,
            "fill_count": self.fill_count,
            "ruin": [self.ruin_low, self.ruin_high],
            "books": books,
        }

    @classmethod
    def restore(cls, settings: Settings, state: Mapping[str, Any]) -> Account:
        """The account a :meth:`state` snapshot describes (same settings)."""
        account = cls(settings, list(state["books"]))
        account.cash = state["cash"]
        account.bar = state["bar"]
        account.halted = state["halted"]
        account.order_count = state["order_count"]
        account.fill_count = state["fill_count"]
        account.ruin_low, account.ruin_high = state["ruin"]
        for name, saved in state["books"].items():
            book = account.books[name]
            book.units = saved["units"]
            book.commissions = saved["commissions"]
            book.last_close = saved["last_close"]
            for row in saved["trades"]:
                trade = Trade(
                    row["size"],
                    row["entry_price"],
                    row["entry_bar"],
                    row["commission"],
                    row["tag"],
                    book=book,
                )
                if row.get("trailing") is not None:
                    trade.trailing = Trail(**row["trailing"])
                    book.trailing = True
                for key in ("sl_order", "tp_order"):
                    if row[key] is not None:
                        bracket = _order_from(row[key], name)
                        bracket.parent = trade
                        setattr(trade, key, bracket)
                book.trades.append(trade)
            pending = [_order_from(row, name, book.trades) for row in saved["orders"]]
            pending += [o for t in book.trades for o in (t.sl_order, t.tp_order) if o is not None]
            for order in pending:
                order.book = book
            book.orders = sorted(pending, key=lambda o: o.id)
        return account


_ORDER_FIELDS = (
    "id",
    "side",
    "size",
    "limit",
    "stop",
    "sl",
    "tp",
    "tag",
    "placed_bar",
    "reduce_only",
    "in_units",
    "exclusive",
    "status",
    "stop_triggered",
    "reason",
)
_TRADE_FIELDS = ("size", "entry_price", "entry_bar", "commission", "tag")


# ------------------------------------------------------------------ finished runs as columns


ORDER_FIELDS = (
    "placed_bar", "side", "size", "kind", "limit", "stop", "sl", "tp", "status", "fill_bar",
    "fill_price", "reason", "tag",
)  # fmt: skip
TRADE_FIELDS = (
    "size", "entry_bar", "exit_bar", "entry_price", "exit_price", "commission", "sl_at_exit",
    "tp_at_exit", "tag",
)  # fmt: skip


_TAGS = (None, "margin call: equity exhausted", "end of data")  # tradenn.targets' tag codes


@dataclass
class Record:
    """What one asset's account did over a finished run, as arrays and columns: what results
    and statistics read.

    ``fills`` has one row per fill in order: bar, units held after, cash after. ``trades`` has
    one row per closed trade: size, entry bar, exit bar, entry price, exit price, commission,
    and the stop-loss and take-profit it had when it closed (NaN: none) (:data:`TRADE_FIELDS`
    but the tag, which is in ``trade_tags``). ``orders`` holds every order
    placed, one column per name in :data:`ORDER_FIELDS`; ``rejected`` counts the orders the
    account refused. :func:`trade_targets` builds it
    directly; :meth:`of` reads it off an account's objects.
    """

    fills: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    trades: np.ndarray = field(default_factory=lambda: np.empty((0, len(TRADE_FIELDS) - 1)))
    trade_tags: list = field(default_factory=list)
    orders: dict[str, Sequence] = field(default_factory=lambda: {k: [] for k in ORDER_FIELDS})
    commissions: float = 0.0
    halted: bool = False
    rejected: int = 0

    @classmethod
    def of(cls, account: Account, book: Book) -> Record:
        """The record of ``book`` in ``account`` (its fills, closed trades and orders)."""
        name, closed = book.name, book.closed_trades
        fills = [(f.bar, f.position, f.cash) for f in account.fills if f.asset == name]
        orders = [o for o in account.order_log if o.asset == name]
        rows = list(map(operator.attrgetter(*ORDER_FIELDS), orders))
        columns = zip(*rows, strict=True) if rows else ([] for _ in ORDER_FIELDS)
        return cls(
            fills=np.array(fills, dtype=np.float64).reshape(-1, 3),
            trades=np.array(
                list(map(operator.attrgetter(*TRADE_FIELDS[:-1]), closed)), dtype=np.float64
            ).reshape(-1, len(TRADE_FIELDS) - 1),
            trade_tags=[t.tag for t in closed],
            orders={k: list(c) for k, c in zip(ORDER_FIELDS, columns, strict=True)},
            commissions=book.commissions,
            halted=account.halted,
            rejected=sum(o.status == "rejected" for o in orders),
        )


def trade_targets(
    settings: Settings,
    costs: CostModel,
    targets: np.ndarray,
    quotes: np.ndarray,
    close: np.ndarray,
    *,
    delay: int = 1,
    finalize: bool = False,
) -> Record:
    """Trade one asset to a target exposure per bar, as :meth:`Account.trade_to` would, with no
    Python object per fill (the loop is :func:`tradenn.targets.trade_loop`, compiled for long
    runs when numba is installed).

    The target decided at bar ``t`` (``targets[t]``, a signed fraction of equity) is traded,
    with the asset's ``costs``, at ``quotes[t + delay]`` on bar ``t + delay``; only bars where
    the target changes trade. Each change closes the position on an exit or a flip, then buys
    or sells the difference to ``units_for_fraction`` (whole units unless
    ``settings.fractional``), booking lots first in, first out, with :meth:`Account._settle`'s
    arithmetic in the same order, so cash, units, fees and trades equal the account's to the
    last bit (the tests compare them). Between changes the account only marks to ``close``: if
    equity ``cash + units x close`` reaches 0 it is liquidated at that close and halted (a
    margin call). ``finalize`` closes what is open at the last close (``"end of data"``).
    """
    from tradenn import targets as kernel

    n = len(close)
    targets = np.asarray(targets, dtype=np.float64)
    changes = np.flatnonzero(targets[1:] != targets[:-1]) + 1  # bars where the target moves
    if n and targets[0] != 0:
        changes = np.concatenate(([0], changes))
    changes = changes[changes + delay < n]  # a change on the last bar never fills
    bars = changes + delay
    m = len(changes)
    sizes = (3 * (2 * m + 1), 6 * (2 * m + 1), 6 * (3 * m + 1), 4 * (m + 1))  # most rows
    values = (
        float(np.fmin.reduce(close)) if n else 0.0,
        float(np.fmax.reduce(close)) if n else 0.0,
        float(settings.cash),
        costs.price_impact,
        costs.commission,
        costs.fixed_commission,
        float(settings.margin),
        bool(settings.fractional),
        bool(finalize),
    )
    loop = kernel.compiled() if m >= kernel.JIT_CHANGES else None
    if loop is not None:
        buffers = [np.empty(size) for size in sizes]
        inputs = (bars, targets[changes], np.asarray(quotes, dtype=np.float64)[bars])
        found = loop(*inputs, close, *values, *buffers)
    else:  # CPython indexes lists several times faster than arrays
        buffers = [[0.0] * size for size in sizes]
        inputs = (bars.tolist(), targets[changes].tolist(), np.asarray(quotes)[bars].tolist())
        found = kernel.trade_loop(*inputs, close, *values, *buffers)
    nf, no, nt, _, _, fees, halted = found
    fills, orders, trades = (
        np.asarray(buffer[: width * rows], dtype=np.float64).reshape(rows, width)
        for buffer, width, rows in zip(buffers[:3], (3, 6, 6), (nf, no, nt), strict=True)
    )
    levels = np.full((nt, 2), np.nan)  # target trades have no stop-loss or take-profit
    return Record(
        fills=fills,
        trades=np.hstack((trades, levels)),
        trade_tags=[None] * nt,
        orders=_target_orders(orders),
        commissions=fees,
        halted=bool(halted),
    )


def _target_orders(rows: np.ndarray) -> dict[str, Sequence]:
    """Columns of the market orders :func:`trade_targets` placed (rows of bar, side, size,
    price, filled, tag code)."""
    k = len(rows)
    bars = rows[:, 0].astype(np.int64)
    filled = rows[:, 4] == 1.0
    columns: dict[str, Sequence] = {
        "placed_bar": bars,
        "side": rows[:, 1].astype(np.int64),
        "size": rows[:, 2],
        "kind": ["market"] * k,
        "limit": [None] * k,
        "stop": [None] * k,
        "sl": [None] * k,
        "tp": [None] * k,
        "status": ["filled"] * k,
        "fill_bar": bars,
        "fill_price": rows[:, 3],
        "reason": [""] * k,
        "tag": [None] * k
        if not rows[:, 5].any()
        else np.array(_TAGS, dtype=object)[rows[:, 5].astype(np.int64)].tolist(),
    }
    if not filled.all():  # canceled orders (nothing to trade) have no fill
        columns["status"] = ["filled" if f else "canceled" for f in filled]
        columns["fill_bar"] = [int(b) if f else None for b, f in zip(bars, filled, strict=True)]
        columns["fill_price"] = [p if f else None for p, f in zip(rows[:, 3], filled, strict=True)]
        columns["reason"] = ["" if f else "nothing to trade" for f in filled]
    return columns


def _order_state(order: Order, book: Book | None = None) -> dict[str, Any]:
    row = {name: getattr(order, name) for name in _ORDER_FIELDS}
    row["trail"] = None if order.trail is None else order.trail.to_dict()
    if book is not None:  # a trade.close() order: which open lot it closes (-1: already closed)
        parent = order.parent
        row["parent"] = (
            None
            if parent is None
            else next((k for k, t in enumerate(book.trades) if t is parent), -1)
        )
    return row


def _trade_state(trade: Trade) -> dict[str, Any]:
    row = {name: getattr(trade, name) for name in _TRADE_FIELDS}
    row["trailing"] = None if trade.trailing is None else trade.trailing.to_dict()
    for key in ("sl_order", "tp_order"):
        bracket = getattr(trade, key)
        row[key] = None if bracket is None else _order_state(bracket)
    return row


def _order_from(row: Mapping[str, Any], asset: str, trades: Sequence[Trade] = ()) -> Order:
    order = Order(row["side"], row["size"])
    for name in _ORDER_FIELDS:
        setattr(order, name, row[name])
    order.asset = asset
    if row.get("trail") is not None:  # snapshots before trailing stops have no such key
        order.trail = Trail(**row["trail"])
    parent = row.get("parent")
    if parent is not None:  # a closed lot stands in as a trade that is no longer open
        order.parent = trades[parent] if parent >= 0 else Trade(0.0, 0.0, -1, 0.0)
    return order


def _price_or_none(name: str, price: Any) -> float | None:
    """``price`` as a float when it is a positive finite number; None stays None."""
    if price is None:
        return None
    if isinstance(price, bool) or not isinstance(price, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a positive price or None, got {price!r}")
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"{name} must be a positive price, got {price}")
    return float(price)


def _cost_per_unit(costs: CostModel, quote: float, price: float) -> float:
    """What trading one unit costs beyond its quote: the price impact plus the commission."""
    return quote * costs.price_impact + costs.commission * price


def _cancel(order: Order, reason: str) -> None:
    order.status, order.reason = "canceled", reason


def _reject(order: Order, reason: str) -> None:
    order.status, order.reason = "rejected", reason
