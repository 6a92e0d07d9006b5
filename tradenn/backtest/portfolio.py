"""Multi-asset portfolios: strategies that set target weights, traded through the shared broker.

A :class:`PortfolioStrategy` holds several assets at once. At the close of each bar it says what
fraction of equity each asset should be (its **target weight**; negative = short); the engine
trades towards those targets at the next bar's open (the close of the same bar with
``trade_on_close=True``) with the same fill and cost model as the single-asset engine
(:mod:`tradenn.backtest.broker`). Two ways to decide:

* **vectorized**: ``weights(self, data) -> DataFrame`` with one row per bar and one column per
  asset, computed once on the whole panel. Like ``positions()`` for one asset it is re-run on the
  first third and the first two thirds of the data (of its first 20,000 bars when longer); if
  any weight it gave there changes, it used
  later bars and :class:`~tradenn.backtest.LookAheadError` is raised.
* **event-driven**: ``next()`` calls ``self.rebalance({"SPX": 0.5, "MSFT": -0.2})``; the mapping is
  the whole target portfolio (assets not named go to 0). ``self.data[asset]`` is that asset's
  causal :class:`~tradenn.backtest.BarData` (its own bars up to now).
* **orders**: ``next()`` places orders per asset, ``self.buy("SPX", size=0.3, sl=..., tp=...,
  trail=Trail(atr=3))``, ``self.sell("MSFT", limit=...)``, and manages them as a single-asset
  strategy does (``order.cancel()``, ``trade.sl = ...``, ``trade.trail(...)``;
  :meth:`PortfolioStrategy.trades_of`). The same account fills them, at each asset's own bars:
  market orders at its next open (its close with ``trade_on_close=True``), stops and limits over
  its bar's range, bracket legs and trailing stops as in :mod:`tradenn.account`. Orders and
  :meth:`~PortfolioStrategy.rebalance` may be mixed: a rebalance trades an asset to its weight
  whatever orders opened; a schedule (``rebalance_every``) only re-trades assets once
  ``rebalance`` has been called.

When trades happen (strategy parameters ``rebalance_every`` and ``drift_threshold``):

* ``rebalance_every=None`` (the default): an asset trades when its target weight changes, exactly
  like the single-asset vectorized engine trades when ``positions()`` changes. Weights drift
  with prices in between.
* ``rebalance_every=k`` (bars) or ``"W"``/``"M"``/``"Q"``/``"Y"`` (the first bar of each calendar
  week, month, quarter, year; bar 0 counts as the first of its period): only on those bars, and
  only the assets whose weight at that close is off target by more than ``drift_threshold``
  (an asset whose target is 0 and that is still held always trades). Target changes between
  scheduled bars wait for the next one.

Sizing mirrors the single-asset engine: at the fill, positions that change side or go to 0 are
closed first; then the equity ``E`` (cash plus every holding at the fill's quote, the last close
for an asset without a bar) is measured and asset ``a`` is brought to
``|w_a| (E - fixed_a) / (quote_a + k_a)`` units (``k_a``: its per-unit spread, slippage and
commission), whole units unless ``fractional=True``. Reductions are traded before increases and
``E`` is measured again in between, so selling pays for buying. The costs of a rebalance come out
of cash, so realized weights sit slightly below target and, with targets summing to
``max_leverage``, cash can dip below zero by those costs.

Leverage: ``sum |w| <= max_leverage`` on every bar. A row above it is scaled down proportionally
(``leverage="scale"``, the default) or raises :class:`~tradenn.backtest.BacktestError`
(``leverage="reject"``). ``allow_short=False`` makes a negative weight an error.

Missing dates (see :mod:`tradenn.data.panel`): the panel runs on the union of the assets'
calendars. An asset with no bar on a date is not tradable that date; its pending order waits for
its next bar and then trades towards its latest target. Its last close carries forward for
valuation. Before its first bar an asset cannot be held: its target weight is forced to 0.

Delisting: an asset whose data ends before the panel's last bar is sold at its last bar's
close, after that bar's own decision and trades (the close, not the next open, because no next
bar of it exists: the last price at which it could trade), and its target weight is 0 from its
last bar on. An asset that trades up to the panel's end is never sold by the engine (use
``finalize_trades``). So a long-only portfolio with targets summing to ``max_leverage`` never
holds more than that: a delisted asset can no longer sit in the books at a stale price while the
rest is rebalanced to the whole equity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.account import Account, Order, Record, Settings, Trade, Trail
from tradenn.backtest.engine import BacktestEngine
from tradenn.backtest.result import (
    ResultBase,
    account_path,
    describe_setup,
    orders_frame,
    trade_columns,
    trades_frame,
)
from tradenn.backtest.runner import (
    PanelPrices,
    PortfolioRunner,
)
from tradenn.backtest.series import Clock, PanelData
from tradenn.backtest.strategy import StrategyBase
from tradenn.data.calendar import bars_per_year as infer_bars_per_year
from tradenn.data.panel import align, is_panel, panel_assets
from tradenn.errors import BacktestError

__all__ = [
    "PanelData",
    "PortfolioBacktest",
    "PortfolioResult",
    "PortfolioStrategy",
    "active",
]


# ------------------------------------------------------------------------------ the strategy


class PortfolioStrategy(StrategyBase):
    """Base class of multi-asset strategies: decide target weights per asset (or place orders
    per asset from ``next()``: :meth:`buy`, :meth:`sell`).

    Subclass it, give parameters as class attributes, and either define
    ``weights(self, data) -> DataFrame`` (vectorized; ``data`` is the panel, see
    :mod:`tradenn.data.panel`; rows = bars, columns = assets, values = target fraction of equity
    decided at that bar's close; NaN = 0) or call :meth:`rebalance` from :meth:`next`::

        class EqualWeight(PortfolioStrategy):
            rebalance_every = "M"

            def weights(self, data):
                listed = data["Close"].notna().cummax()
                return listed.div(listed.sum(axis=1), axis=0)

    Parameters every portfolio strategy has: ``rebalance_every`` (None, a number of bars, or
    ``"W"``/``"M"``/``"Q"``/``"Y"``) and ``drift_threshold`` (weight units); see
    :mod:`tradenn.backtest.portfolio` for when trades happen.
    """

    rebalance_every: int | str | None = None
    drift_threshold: float = 0.0

    def __init__(self, account: Account, data: PanelData, clock: Clock, params: dict[str, Any]):
        super().__init__(account, data, clock, params)
        self._request: dict[str, float] | None = None

    def take_request(self) -> dict[str, float] | None:
        """The targets :meth:`rebalance` set since the last call (None if it was not called);
        the runner reads this after each ``next()``."""
        request, self._request = self._request, None
        return request

    @property
    def assets(self) -> list[str]:
        """The asset names, in panel order."""
        return list(self._account.books)

    def rebalance(self, targets: Mapping[str, float]) -> None:
        """Set the target portfolio at this bar's close: asset -> weight (fraction of equity).

        Assets not named go to 0. Weights of assets that have no bar yet (or no more) are
        forced to 0.
        """
        if not isinstance(targets, Mapping):
            raise BacktestError(
                f"{type(self).__name__}.rebalance: expected a mapping asset -> weight, got "
                f"{type(targets).__name__}"
            )
        books = self._account.books
        for name in targets:
            if name not in books:
                raise BacktestError(
                    f"{type(self).__name__}.rebalance: unknown asset {name!r}; assets: "
                    f"{', '.join(books)}"
                )
        self._request = dict(targets)

    def buy(
        self,
        asset: str,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        trail: Trail | None = None,
    ) -> Order:
        """Place a buy order on ``asset``, as :meth:`Strategy.buy
        <tradenn.backtest.Strategy.buy>` does on its one asset: the same sizing (``size``
        None = all free buying power, a fraction of equity below 1, else units), the same
        limit, stop, stop-loss, take-profit and trailing stop, filled by the same account at
        that asset's next bar. A later :meth:`rebalance` trades the asset to its weight
        whatever orders opened."""
        return self._submit(asset, 1, size, limit, stop, sl, tp, tag, trail)

    def sell(
        self,
        asset: str,
        *,
        size: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        tag: object = None,
        trail: Trail | None = None,
    ) -> Order:
        """Place a sell order on ``asset``: closes its longs first (FIFO), then opens a short
        with the rest (see :meth:`buy`)."""
        return self._submit(asset, -1, size, limit, stop, sl, tp, tag, trail)

    def _submit(self, asset, side, size, limit, stop, sl, tp, tag, trail) -> Order:
        book = self._account.books.get(asset) if isinstance(asset, str) else None
        if book is None:
            raise BacktestError(
                f"{type(self).__name__}.{'buy' if side > 0 else 'sell'}: unknown asset "
                f"{asset!r}; assets: {', '.join(self._account.books)}"
            )
        return self._account.submit(
            book, side, size, limit=limit, stop=stop, sl=sl, tp=tp, tag=tag, trail=trail
        )

    def trades_of(self, asset: str) -> tuple[Trade, ...]:
        """The open trades of ``asset``, oldest first."""
        book = self._account.books.get(asset)
        if book is None:
            raise BacktestError(f"{type(self).__name__}.trades_of: unknown asset {asset!r}")
        return tuple(book.trades)

    @property
    def holdings(self) -> dict[str, float]:
        """Units held per asset (negative when short)."""
        return {name: book.units for name, book in self._account.books.items()}

    @property
    def current_weights(self) -> dict[str, float]:
        """Weight of each asset in equity at the current close."""
        equity = self._account.equity()
        return {
            name: (book.units * book.last_close / equity if equity > 0 else math.nan)
            for name, book in self._account.books.items()
        }


def active(data: pd.DataFrame, max_gap: int = 5) -> pd.DataFrame:
    """Which assets of a panel count as trading at each bar (bars x assets, bool).

    An asset is active from its first bar until ``max_gap`` bars of the calendar pass without one
    (so a holiday of one exchange does not drop it, but the end of its data does). Causal: bar t
    uses bars up to t only.
    """
    if not isinstance(max_gap, int | np.integer) or max_gap < 0:
        raise ValueError(f"active: max_gap must be a non-negative integer, got {max_gap!r}")
    close = data["Close"]
    return close.ffill(limit=int(max_gap)).notna() if max_gap else close.notna()


# ------------------------------------------------------------------------------ causal views


# ------------------------------------------------------------------------------ the engine


def _to_panel(data: Any, how: str) -> pd.DataFrame:
    """A panel from a dict of frames (or sources), a list of sources, a panel or one frame."""
    from tradenn.data import load

    if isinstance(data, str):
        data = load(data)
    if is_panel(data):
        return data
    if isinstance(data, pd.DataFrame):
        return align({str(data.attrs.get("source", "asset")): data}, how)
    if isinstance(data, Sequence) and all(isinstance(s, str) for s in data):
        data = {s: s for s in data}
    if isinstance(data, Mapping):
        if not data:
            raise BacktestError("data: an empty mapping; give at least one asset")
        frames = {k: load(v) if isinstance(v, str) else v for k, v in data.items()}
        for name, frame in frames.items():
            if not isinstance(frame, pd.DataFrame):
                raise BacktestError(
                    f"data[{name!r}]: expected a price frame or a source name, got "
                    f"{type(frame).__name__}"
                )
        return align(frames, how)
    raise BacktestError(
        f"data: expected a price frame, a panel, a mapping name -> frame or a list of sources, "
        f"got {type(data).__name__}"
    )


class PortfolioBacktest(BacktestEngine):
    """Run a :class:`PortfolioStrategy` over several assets (see the module docstring).

    The portfolio sibling of :class:`~tradenn.backtest.Backtest`: the same account
    (:class:`~tradenn.account.Account`, one book per asset), the same settings and
    costs. One frame runs as a one-asset portfolio named ``frame.attrs.get("source",
    "asset")``.

    Parameters
    ----------
    data : mapping, list of str, DataFrame or str
        ``{name: price frame or source}``, a list of sources (``["SPX", "MSFT"]``), a panel from
        :func:`tradenn.data.panel.align`, or one price frame / source.
    strategy : type[PortfolioStrategy]
        The strategy class.
    cash : float
        Starting cash.
    commission, fixed_commission, spread, slippage_bps : float or mapping
        As for :class:`Backtest`, for every asset or per asset (``{"SPX": 0.0005, ...}``, every
        asset named).
    fractional : bool
        Fractional units; whole units otherwise.
    allow_short : bool
        Negative weights allowed; with False they raise.
    max_leverage : float, optional
        Limit on ``sum |w|`` per bar; default ``1 / margin`` (1: no borrowing).
    leverage : {"scale", "reject"}
        What to do with a row above the limit: scale it down proportionally, or raise.
    how : {"outer", "inner"}
        Calendar alignment of several frames (see :func:`tradenn.data.panel.align`).
    margin : float
        Only sets the default ``max_leverage``.
    trade_on_close : bool
        Fill at the close of the deciding bar instead of the next open.
    exclusive_orders : bool
        Not meaningful for portfolios; must be False.
    finalize_trades : bool
        Close every holding at the last close so it counts in trade statistics.
    bars_per_year, risk_free_rate
        As for :class:`Backtest`.
    vectorized : bool, optional
        Use ``weights()`` (True) or ``next()`` (False); by default ``weights()`` when defined.
    """

    vectorized_method = "weights"

    def __init__(
        self,
        data: Any,
        strategy: type[PortfolioStrategy],
        *,
        cash: float = 10_000.0,
        commission: float | Mapping[str, float] = 0.0,
        fixed_commission: float | Mapping[str, float] = 0.0,
        spread: float | Mapping[str, float] = 0.0,
        slippage_bps: float | Mapping[str, float] = 0.0,
        fractional: bool = False,
        allow_short: bool = True,
        max_leverage: float | None = None,
        leverage: str = "scale",
        how: str = "outer",
        margin: float = 1.0,
        trade_on_close: bool = False,
        exclusive_orders: bool = False,
        finalize_trades: bool = False,
        bars_per_year: float | None = None,
        risk_free_rate: float = 0.0,
        vectorized: bool | None = None,
    ) -> None:
        if not (isinstance(strategy, type) and issubclass(strategy, PortfolioStrategy)):
            raise BacktestError(
                f"strategy must be a PortfolioStrategy subclass for several assets, got "
                f"{getattr(strategy, '__name__', strategy)!r}"
            )
        panel = _to_panel(data, how)
        names = panel_assets(panel)
        if leverage not in ("scale", "reject"):
            raise BacktestError(f"leverage must be 'scale' or 'reject', got {leverage!r}")
        if exclusive_orders:
            raise BacktestError("exclusive_orders does not apply to portfolio strategies")
        for key, value in (
            ("commission", commission),
            ("fixed_commission", fixed_commission),
            ("spread", spread),
            ("slippage_bps", slippage_bps),
        ):
            if isinstance(value, Mapping):
                unknown = sorted(set(value) - set(names))
                if unknown:
                    raise BacktestError(
                        f"{key}: unknown asset {unknown[0]!r}; assets: {', '.join(names)}"
                    )
        self.settings = Settings(
            cash=cash,
            commission=commission,
            fixed_commission=fixed_commission,
            spread=spread,
            slippage_bps=slippage_bps,
            margin=margin,
            trade_on_close=trade_on_close,
            fractional=fractional,
            max_leverage=max_leverage,
        )
        self.settings.check_assets(names)
        self.data = panel
        self.assets = names
        self.strategy = strategy
        self.allow_short = allow_short
        self.leverage = leverage
        self.finalize_trades = finalize_trades
        self.bars_per_year = bars_per_year
        self.risk_free_rate = risk_free_rate
        self.vectorized = self._vectorized(strategy, vectorized)

    def check_weights(
        self, weights: np.ndarray, listed: np.ndarray, label: str, first_bar: int = 0
    ) -> np.ndarray:
        """Validate target weights (bars x assets), force unlisted assets to 0, apply the
        leverage limit. Returns the weights to trade."""
        weights = np.asarray(weights, dtype=np.float64)
        weights = np.where(np.isnan(weights), 0.0, weights)  # no view yet: flat; inf stays bad
        bad = ~np.isfinite(weights)
        if not self.allow_short:
            bad |= weights < 0
        if bad.any():
            t, a = (int(x[0]) for x in np.nonzero(bad))
            rule = "finite and >= 0 (allow_short=False)" if not self.allow_short else "finite"
            raise BacktestError(
                f"{label}: weights must be {rule}; got {weights[t, a]:g} for "
                f"{self.assets[a]!r} at bar {t + first_bar}"
            )
        weights = np.where(listed, weights, 0.0)
        gross = np.abs(weights).sum(axis=1)
        over = gross > self.settings.leverage_limit * (1 + 1e-12)
        if over.any():
            t = int(np.flatnonzero(over)[0])
            if self.leverage == "reject":
                raise BacktestError(
                    f"{label}: sum of |weights| {gross[t]:g} at bar {t + first_bar} exceeds "
                    f"max_leverage {self.settings.leverage_limit:g}"
                )
            scale = np.where(over, self.settings.leverage_limit / np.where(over, gross, 1.0), 1.0)
            weights = weights * scale[:, None]
        return weights

    def _run(self, values: dict[str, Any]) -> PortfolioResult:
        runner = PortfolioRunner(
            self.strategy,
            values,
            self.settings,
            self.data,
            vectorized=self.vectorized,
            check_weights=self.check_weights,
        )
        runner.run()
        account, prices, n = runner.account, runner.prices, len(self.data)
        if self.finalize_trades and not account.halted:
            marks = dict(zip(self.assets, prices.marks[-1].tolist(), strict=True))
            account.liquidate(n - 1, marks, "end of data")
        targets = pd.DataFrame(runner.target_log, index=self.data.index, columns=self.assets)
        return self._portfolio_result(runner.strategy, account, prices, values, targets)

    # --------------------------------------------------------------------------- results

    def _portfolio_result(
        self,
        strategy: PortfolioStrategy,
        account: Account,
        prices: PanelPrices,
        params: dict,
        targets: pd.DataFrame,
    ) -> PortfolioResult:
        from tradenn.backtest.stats import compute_stats
        from tradenn.data.timezones import wall_clock

        panel = self.data
        index = panel.index
        n, names = len(panel), self.assets
        books = list(account.books.values())
        fills = {name: [f for f in account.fills if f.asset == name] for name in names}
        records = [Record.of(account, book) for book in books]
        clock = wall_clock(index).to_numpy()
        units = np.column_stack([account_path(record.fills, 0.0, n)[0] for record in records])
        every = np.array([(f.bar, 0.0, f.cash) for f in account.fills]).reshape(-1, 3)
        _, cash = account_path(every, self.cash, n)
        values = units * prices.marks
        equity_values = cash + values.sum(axis=1)
        equity = pd.Series(equity_values, index=index, name="Equity")
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = pd.DataFrame(
                np.where(equity_values[:, None] > 0, values / equity_values[:, None], np.nan),
                index=index,
                columns=names,
            )
        positions = pd.DataFrame(units, index=index, columns=names)
        flows = np.zeros((n, len(names)))  # cash each asset brought in (net of costs), per bar
        traded_bars = np.zeros((n, len(names)))
        for a, name in enumerate(names):
            for f in fills[name]:
                flows[f.bar, a] -= f.side * f.units * f.price + f.commission
                traded_bars[f.bar, a] += f.units * f.price
        pnl = pd.DataFrame(np.cumsum(flows, axis=0) + values, index=index, columns=names)
        high, low = panel["High"], panel["Low"]
        trades = _concat(
            [
                trades_frame(
                    trade_columns(r.trades, r.trade_tags, clock),
                    index,
                    high[name].to_numpy(dtype=np.float64),
                    low[name].to_numpy(dtype=np.float64),
                )
                for name, r in zip(names, records, strict=True)
            ],
            names,
            "ExitBar",
        )
        orders = _concat([orders_frame(r.orders, index) for r in records], names, None)
        if len(orders):
            orders = orders.sort_values(["FillTime", "PlacedTime"], kind="stable").reset_index(
                drop=True
            )
        # Benchmark: an equal-weight buy and hold of the assets trading on the first date.
        start = prices.has_bar[0]
        benchmark = pd.Series(
            (prices.marks[:, start] / prices.marks[0, start]).mean(axis=1), index=index
        )
        commissions = float(account.commissions)
        stats = compute_stats(
            equity,
            trades,
            benchmark,
            np.abs(units).sum(axis=1),
            commissions=commissions,
            bars_per_year=self.bars_per_year,
            risk_free_rate=self.risk_free_rate,
        )
        # Turnover: traded value over the equity at the previous close, summed, per year.
        base = np.concatenate([[self.cash], equity_values[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            turnover = np.where(base[:, None] > 0, traded_bars / base[:, None], 0.0).sum(axis=0)
        years = (n - 1) / _bars_per_year(self.bars_per_year, index) if n > 1 else math.nan
        stats["Turnover (Ann.) [x]"] = float(turnover.sum() / years) if years else math.nan
        stats["# Assets"] = len(names)
        first = np.argmax(prices.has_bar, axis=0)
        first_close = prices.close[first, np.arange(len(names))]
        last_bar = prices.last_bar
        asset_stats = pd.DataFrame(
            {
                "First Bar": index[first],
                "Last Bar": index[last_bar],
                "Asset Return [%]": 100.0 * (prices.marks[-1] / first_close - 1.0),
                "PnL [$]": pnl.iloc[-1].to_numpy(),
                "Contribution [%]": 100.0 * pnl.iloc[-1].to_numpy() / self.cash,
                "Commissions [$]": [b.commissions for b in books],
                "Traded Value [$]": traded_bars.sum(axis=0),
                "Turnover (Ann.) [x]": turnover / years if years else np.nan,
                "# Fills": [len(fills[name]) for name in names],
                "# Trades": [len(b.closed_trades) for b in books],
                "Avg. Weight": weights.mean().to_numpy(),
                "Max. |Weight|": weights.abs().max().to_numpy(),
            },
            index=pd.Index(names, name="Asset"),
        )
        return PortfolioResult(
            stats=stats,
            equity=equity,
            weights=weights,
            target_weights=targets,
            positions=positions,
            pnl=pnl,
            trades=trades,
            orders=orders,
            asset_stats=asset_stats,
            data=panel,
            params=params,
            strategy_name=type(strategy).__name__,
            diagnostics=dict(strategy.diagnostics()),
            setup=describe_setup(
                self.settings,
                panel,
                source=", ".join(names) + " (aligned)",
                risk_free_rate=self.risk_free_rate,
            ),
        )


def _bars_per_year(given: float | None, index: pd.DatetimeIndex) -> float:
    return float(given) if given is not None else float(infer_bars_per_year(index))


def _concat(frames: list[pd.DataFrame], names: list[str], sort: str | None) -> pd.DataFrame:
    """Per-asset frames stacked with an ``Asset`` column first."""
    parts = []
    for name, frame in zip(names, frames, strict=True):
        frame = frame.copy()
        frame.insert(0, "Asset", name)
        parts.append(frame)
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return parts[0].iloc[:0]
    out = pd.concat(nonempty, ignore_index=True)
    if sort is not None:
        out = out.sort_values(sort, kind="stable").reset_index(drop=True)
    return out


# ------------------------------------------------------------------------------ the result


@dataclass(kw_only=True, repr=False)
class PortfolioResult(ResultBase):
    """The outcome of a portfolio backtest.

    Attributes
    ----------
    stats : Series
        :func:`~tradenn.backtest.stats.compute_stats` on the portfolio equity (Buy & Hold = an
        equal-weight, cost-free buy and hold of the assets trading on the first date; Exposure =
        bars with any holding), plus ``Turnover (Ann.) [x]`` (traded value over the previous
        close's equity, summed, per year) and ``# Assets``.
    equity : Series
        Portfolio equity at each bar's close.
    weights : DataFrame
        Realized weight of each asset in equity at each close (bars x assets).
    target_weights : DataFrame
        The target weights in force after each close's decision (after the listing rule and the
        leverage limit); what the engine trades towards when the schedule allows.
    positions : DataFrame
        Units held per asset at each close.
    pnl : DataFrame
        Cumulative profit or loss per asset (net of its costs) at each close; the row sums are
        ``equity - cash``.
    trades : DataFrame
        Closed trades of every asset, with an ``Asset`` column (same columns as
        :class:`~tradenn.backtest.Result` otherwise).
    orders : DataFrame
        Every order with its ``Asset``; ``PlacedTime`` is the close that decided it.
    asset_stats : DataFrame
        Per asset: first and last bar, the asset's own return, P&L and contribution to return,
        commissions, traded value, annual turnover, fills, closed trades, average and largest
        weight.

    Data, parameters, diagnostics and setup: see :class:`~tradenn.backtest.result.ResultBase`.
    """

    weights: pd.DataFrame
    target_weights: pd.DataFrame
    positions: pd.DataFrame
    pnl: pd.DataFrame
    orders: pd.DataFrame
    asset_stats: pd.DataFrame

    @property
    def position(self) -> pd.Series:
        """Gross units held per bar (sum of |units|), for code written for one asset."""
        return self.positions.abs().sum(axis=1).rename("Position")

    def plot(
        self, path: str | Path | None = None, *, title: str | None = None, interactive: bool = False
    ):
        """Equity against the equal-weight buy and hold, and the weights over time.

        Saves a PNG to ``path`` when given; returns the matplotlib Figure. With
        ``interactive=True``: a self-contained HTML page instead (see
        :func:`~tradenn.backtest.interactive.interactive_chart`), saved to ``path`` when given;
        returns its HTML.
        """
        if interactive:
            from tradenn.backtest.interactive import interactive_chart

            return interactive_chart(self, path, title=title)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from tradenn.data.timezones import wall_clock

        fig = Figure(figsize=(12, 8), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        ax_equity, ax_weights = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
        )
        x = wall_clock(self.equity.index)  # as plot_result: the zone's wall clock, not UTC
        ax_equity.plot(x, self.equity.to_numpy(), color="#1f5fa8", linewidth=1.1, label="Equity")
        marks = self.data["Close"].ffill()
        start = marks.iloc[0].notna()
        hold = (marks.loc[:, start] / marks.iloc[0][start]).mean(axis=1) * self.equity.iloc[0]
        ax_equity.plot(x, hold.to_numpy(), color="#888888", linewidth=0.9, label="Equal weight")
        values = np.concatenate([self.equity.to_numpy(), hold.to_numpy()])
        if np.nanmin(values) > 0 and np.nanmax(values) / np.nanmin(values) > 10:
            ax_equity.set_yscale("log")
        ax_equity.set_ylabel("Equity [$]")
        ax_equity.legend(loc="upper left")
        for name in self.weights.columns:
            ax_weights.plot(x, self.weights[name].to_numpy(), linewidth=0.9, label=name)
        ax_weights.axhline(0.0, color="#333333", linewidth=0.6)
        ax_weights.set_ylabel("Weight")
        ax_weights.legend(loc="upper left", ncol=min(len(self.weights.columns), 6))
        s = self.stats
        fig.suptitle(
            f"{title or self.strategy_name}: return {s['Return [%]']:.1f}%, "
            f"Sharpe {s['Sharpe Ratio']:.2f}, max. drawdown {s['Max. Drawdown [%]']:.1f}%"
        )
        if path is not None:
            fig.savefig(path)
        return fig
