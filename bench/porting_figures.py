"""Every figure of docs/porting_from_backtesting_py.md: tradenn and backtesting.py side by side.

The same strategy ideas run in both libraries on the same frame, backtesting.py's bundled GOOG
daily bars (``backtesting.test.GOOG``, 2,148 bars, 2004-08-19 .. 2013-03-01), and every number
the porting guide quotes is printed here, labelled, with both libraries' values:

1. the SMA(10, 20) crossover of backtesting.py's README (commission 0.002, cash 10,000), in the
   forms that give identical trades and equity;
2. its statistics, key by key, with the reason for each difference reproduced from the other
   library's output (Sharpe, volatility, Sortino, profit factor, buy & hold, exposure,
   commissions, durations);
3. ``buy()`` while short without ``exclusive_orders``;
4. ``size=0.2``: the units each buys on the same bars;
5. partial closes (``position.close(0.5)``, ``trade.close(0.5)``);
6. trades still open at the end (``finalize_trades``);
7. the spread;
8. ``margin=0.5``;
9. a bracket order whose take-profit is marketable at the entry (GOOG 2011-04-15);
10. ATR trailing stops (``Trail`` against ``TrailingStrategy``);
11. ``optimize`` over the same grid.

Deterministic (no randomness, no timing); about 10 s. Run:
``pip install -e ".[bench]" && python bench/porting_figures.py``.
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import version
from typing import ClassVar

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars

import backtesting
import numpy as np
import pandas as pd
from _reference_strategies import SmaCross, SmaCrossBt, SmaReverseBt, reverse_bt
from backtesting._util import _indicator_warmup_nbars
from backtesting.lib import TrailingStrategy
from backtesting.test import GOOG, SMA

from strategies.sma_cross import SmaCross as SmaReverse
from tradenn.backtest import Backtest, Strategy, Trail, crossover

CASH = 10_000
COMMISSION = 0.002
N = len(GOOG)
TRADE_COLUMNS = ["Size", "EntryBar", "ExitBar", "EntryPrice", "ExitPrice", "PnL"]


# ---------------------------------------------------------------------------- the strategies
# Each idea twice, once per library, with the same trading rule. The README crossover (both
# libraries) and the reversal in backtesting.py live in _reference_strategies, shared with the
# speed benches; the reversal in tradenn is the bundled strategies/sma_cross.py, whose parameters
# are called fast/slow where backtesting.py's README calls them n1/n2.


class CloseBeforeTheEnd(SmaCross):
    """tradenn, closing on the second-to-last bar: the close fills at the last bar's open."""

    def next(self):
        super().next()
        if len(self.data) == N - 1:
            self.position.close()


class ScriptBt(backtesting.Strategy):
    """Runs ``actions[bar](strategy)`` at the close of the listed bars (backtesting.py)."""

    actions: ClassVar[dict] = {}

    def init(self):
        pass

    def next(self):
        action = self.actions.get(len(self.data) - 1)
        if action:
            action(self)


class Script(Strategy):
    """The same in tradenn."""

    actions: ClassVar[dict] = {}

    def next(self):
        action = self.actions.get(len(self.data) - 1)
        if action:
            action(self)


class TrailBt(TrailingStrategy):
    """SMA reversal with a 3 x ATR(14) trailing stop: backtesting.py's TrailingStrategy, used
    as its docstring says (``super().next()`` first: the stops move, then the new orders)."""

    n1 = 10
    n2 = 20

    def init(self):
        super().init()
        self.set_atr_periods(14)
        self.set_trailing_sl(3)
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        super().next()
        reverse_bt(self)


class TrailLateBt(TrailBt):
    """The same, with the orders placed before the stops move (``super().next()`` last)."""

    def next(self):
        reverse_bt(self)
        TrailingStrategy.next(self)


class TrailTradenn(SmaCross):
    """The same in tradenn: the entry carries ``trail=Trail(atr=3, period=14)``."""

    def next(self):
        trail = Trail(atr=3, period=14)
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy(trail=trail)
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell(trail=trail)


# ---------------------------------------------------------------------------- helpers


def run_bt(strategy, data=GOOG, **settings) -> pd.Series:
    settings = {"cash": CASH, "commission": COMMISSION, **settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Some trades remain open", canceled orders
        return backtesting.Backtest(data, strategy, **settings).run()


def run_tradenn(strategy, data=GOOG, **settings):
    settings = {"cash": CASH, "commission": COMMISSION, **settings}
    return Backtest(data, strategy, **settings).run()


def trades_bt(stats: pd.Series) -> pd.DataFrame:
    return _in_order(stats._trades)


def trades_tradenn(result) -> pd.DataFrame:
    return _in_order(result.trades)


def _in_order(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades by exit bar, then entry bar (backtesting.py lists the lots one fill closes
    in its own order)."""
    frame = trades[TRADE_COLUMNS].astype(float)
    return frame.sort_values(["ExitBar", "EntryBar"], kind="stable").reset_index(drop=True)


def same_trades(ours: pd.DataFrame, theirs: pd.DataFrame) -> str:
    if len(ours) != len(theirs):
        return f"no ({len(ours)} vs {len(theirs)} trades)"
    difference = np.abs(ours.to_numpy() - theirs.to_numpy()).max() if len(ours) else 0.0
    verdict = "yes" if difference < 1e-6 else "no"
    return f"{verdict} (largest difference in size, bars, prices, PnL: {difference:.1e})"


def heading(title: str) -> None:
    print(f"\n== {title} ==")


def pair(label: str, ours, theirs) -> None:
    """One labelled figure: tradenn's value, then backtesting.py's."""
    print(f"{label:<58} {_text(ours):>22} {_text(theirs):>22}")


def columns() -> None:
    print(f"{'':<58} {'tradenn':>22} {'backtesting.py':>22}")


def note(label: str, value) -> None:
    print(f"  {label}: {_text(value)}")


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def show_trades(label: str, frame: pd.DataFrame) -> None:
    print(f"  {label}:")
    shown = frame.copy()
    for column in ("EntryBar", "ExitBar"):
        shown[column] = shown[column].astype(int)
    text = shown.to_string(float_format=lambda v: f"{v:,.4f}".rstrip("0").rstrip("."))
    for line in text.splitlines():
        print(f"    {line}")


def bt_sharpe_from_equity(equity: pd.Series, days_per_year: int = 252) -> dict[str, float]:
    """backtesting.py's annualized return, volatility, Sharpe and Sortino from daily equity
    (``backtesting._stats.compute_stats``, risk-free rate 0)."""
    r = equity.pct_change().dropna()
    g = np.expm1(np.log1p(r).mean())  # geometric mean daily return
    annual = (1 + g) ** days_per_year - 1
    volatility = np.sqrt(
        (r.var(ddof=1) + (1 + g) ** 2) ** days_per_year - (1 + g) ** (2 * days_per_year)
    )
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(days_per_year)
    return {
        "annual": annual,
        "volatility": volatility,
        "sharpe": annual / volatility,
        "sortino": annual / downside,
    }


def tradenn_sharpe_from_equity(equity: pd.Series, bars_per_year: int = 252) -> float:
    r = equity.pct_change().dropna()
    return r.mean() / r.std(ddof=1) * np.sqrt(bars_per_year)


# ---------------------------------------------------------------------------- sections


def same_trades_section() -> tuple[object, pd.Series]:
    heading("1. The same strategy, the same trades")
    print(
        f"GOOG: {N:,} daily bars, {GOOG.index[0].date()} .. {GOOG.index[-1].date()}; "
        f"cash {CASH:,}, commission {COMMISSION}"
    )
    forms = [
        (
            "README form: buy()/sell(), exclusive_orders=True",
            SmaCross,
            SmaCrossBt,
            {"exclusive_orders": True},
        ),
        ("position.close() then buy()/sell(), defaults", SmaReverse, SmaReverseBt, {}),
        (
            "README form, trade_on_close=True",
            SmaCross,
            SmaCrossBt,
            {"exclusive_orders": True, "trade_on_close": True},
        ),
    ]
    main = None
    for label, ours_class, theirs_class, settings in forms:
        ours, theirs = run_tradenn(ours_class, **settings), run_bt(theirs_class, **settings)
        main = main or (ours, theirs)
        print(f"\n{label}")
        columns()
        pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
        pair("# Trades (closed)", len(ours.trades), len(theirs._trades))
        note("identical trades", same_trades(trades_tradenn(ours), trades_bt(theirs)))
        gap = ours.equity.to_numpy() - theirs._equity_curve["Equity"].to_numpy()
        note("equity curves, largest |difference| over all bars", f"{np.abs(gap).max():.1e}")
        if settings.get("trade_on_close"):
            # backtesting.py fills at bar t's close but books the fill while processing bar
            # t + 1, so its equity at bar t lacks that fill's commission
            units = np.abs(np.diff(ours.position.to_numpy(), prepend=0.0))
            fee = COMMISSION * units * GOOG["Close"].to_numpy()
            differs = np.abs(gap) > 1e-6
            note(
                "bars whose equity differs / bars with a fill",
                f"{int(differs.sum())} / {int((units > 0).sum())}",
            )
            note("largest |difference + that bar's commission|", f"{np.abs(gap + fee).max():.1e}")
    return main


def statistics_section(ours, theirs: pd.Series) -> None:
    heading("2. Statistics of the README run (exclusive_orders=True), key by key")
    columns()
    stats = ours.stats
    keys = list(stats.index) + [k for k in theirs.index if k not in stats and not k[0] == "_"]
    for key in keys:
        pair(key, stats.get(key), theirs.get(key))

    equity = ours.equity
    returns = equity.pct_change().dropna()
    daily = theirs._equity_curve["Equity"].resample("D").last().dropna().pct_change().dropna()
    print("\nSharpe ratio and volatility, taken apart (both annualize with 252 on these bars):")
    note(
        "returns used: tradenn per bar / backtesting.py per calendar day",
        f"{len(returns):,} / {len(daily):,}",
    )
    theirs_way = bt_sharpe_from_equity(equity)
    columns()
    pair(
        "numerator: tradenn mean(r) x 252 / bt (1+g)^252 - 1 [%]",
        100 * returns.mean() * 252,
        100 * theirs_way["annual"],
    )
    pair(
        "denominator: tradenn std(r) sqrt(252) / bt compounded [%]",
        100 * returns.std(ddof=1) * np.sqrt(252),
        100 * theirs_way["volatility"],
    )
    pair("Sharpe Ratio", stats["Sharpe Ratio"], theirs["Sharpe Ratio"])
    note("backtesting.py's Sharpe recomputed from tradenn's result.equity", theirs_way["sharpe"])
    note(
        "backtesting.py's Volatility recomputed from result.equity [%]",
        100 * theirs_way["volatility"],
    )
    note("backtesting.py's Sortino recomputed from result.equity", theirs_way["sortino"])
    note(
        "tradenn's Sharpe recomputed from backtesting.py's _equity_curve",
        tradenn_sharpe_from_equity(theirs._equity_curve["Equity"]),
    )
    note(
        "geometric annual return over tradenn's volatility (one change only)",
        theirs_way["annual"] / (returns.std(ddof=1) * np.sqrt(252)),
    )

    print("\nThe other differences, reproduced from tradenn's result:")
    trades = ours.trades
    r = trades["ReturnPct"]
    note(
        "Profit Factor on ReturnPct (backtesting.py's way) from result.trades",
        r[r > 0].sum() / -r[r < 0].sum(),
    )
    note(
        "Profit Factor on PnL (tradenn's way) from backtesting.py's _trades",
        _profit_factor(theirs._trades["PnL"]),
    )
    close = GOOG["Close"].to_numpy()
    warm = _indicator_warmup_nbars(theirs._strategy)  # backtesting.py's own count
    note("bars before every indicator has a value (backtesting.py's count)", warm)
    note(
        f"Buy & Hold from bar {warm}'s close {close[warm]:.2f} [%]",
        100 * (close[-1] / close[warm] - 1),
    )
    note(f"Buy & Hold from bar 0's close {close[0]:.2f} [%]", 100 * (close[-1] / close[0] - 1))
    held = np.zeros(N, dtype=bool)
    for entry, exit_ in zip(trades["EntryBar"], trades["ExitBar"], strict=True):
        held[entry : exit_ + 1] = True
    note("Exposure from closed trades' EntryBar..ExitBar, inclusive [%]", 100 * held.mean())
    held_at_close = ours.position.to_numpy() != 0
    after_last_exit = held_at_close[int(trades["ExitBar"].max()) + 1 :]
    note(
        "bars with a position at the close (tradenn) / of which after the last closed trade",
        f"{int(held_at_close.sum()):,} / {int(after_last_exit.sum()):,}",
    )
    note(
        "Commissions of closed trades only, sum of result.trades.Commission",
        trades["Commission"].sum(),
    )
    still_open = stats["Commissions [$]"] - trades["Commission"].sum()
    note("the open trade's entry commission (the difference)", still_open)
    note("Avg. Trade Duration rounded up to a day", stats["Avg. Trade Duration"].ceil("D"))
    note("Avg. Drawdown Duration rounded up to a day", stats["Avg. Drawdown Duration"].ceil("D"))


def _profit_factor(pnl: pd.Series) -> float:
    return pnl[pnl > 0].sum() / -pnl[pnl < 0].sum()


def reversal_section() -> None:
    heading("3. buy() while short, without exclusive_orders or position.close()")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = backtesting.Backtest(GOOG, SmaCrossBt, cash=CASH, commission=COMMISSION).run()
    ours = run_tradenn(SmaCross)
    canceled = sum("canceled" in str(w.message) for w in caught)
    columns()
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
    pair("# Trades (closed)", len(ours.trades), len(theirs._trades))
    pair(
        "orders rejected (tradenn) / canceled by the broker (bt)",
        int(ours.stats["# Orders Rejected"]),
        canceled,
    )
    first = theirs._trades.iloc[0]
    entry = f"{first['Size']:g} units from bar {first['EntryBar']} at {first['EntryPrice']:.2f}"
    exit_ = f"to bar {first['ExitBar']} at {first['ExitPrice']:.2f}, PnL {first['PnL']:,.2f}"
    note("backtesting.py's only trade", f"{entry} {exit_}")
    ruined = theirs._equity_curve["Equity"]
    ruin_bar = int(np.argmax(ruined.to_numpy() <= 0))
    note(
        "backtesting.py's equity reaches 0 (it then closes everything and stops) on bar",
        f"{ruin_bar} ({ruined.index[ruin_bar].date()})",
    )


def sizing_section() -> None:
    heading("4. size=0.2 on bars 20, 30 and 40 (filled at the next open)")

    def buy(strategy):
        strategy.buy(size=0.2)

    def close(strategy):
        strategy.position.close()

    actions = {20: buy, 30: buy, 40: buy, 50: close}
    ours = run_tradenn(type("Sized", (Script,), {"actions": actions}))
    theirs = run_bt(type("SizedBt", (ScriptBt,), {"actions": actions}))
    columns()
    ours_trades, theirs_trades = trades_tradenn(ours), trades_bt(theirs)
    for k, bar in enumerate((21, 31, 41)):
        price = GOOG["Open"].iloc[bar]
        pair(
            f"units bought at bar {bar}'s open {price:.2f}",
            int(ours_trades["Size"].iloc[k]),
            int(theirs_trades["Size"].iloc[k]),
        )
    # The sizing base of each library at bar 31: tradenn the equity at the fill's quote,
    # backtesting.py the margin available (cash not tied up in open trades, here the cash).
    first_units, first_price = ours_trades["Size"].iloc[0], GOOG["Open"].iloc[21]
    cash = CASH - first_units * first_price * (1 + COMMISSION)
    price = GOOG["Open"].iloc[31]
    equity = cash + first_units * price
    pair("sizing base at bar 31 [$] (equity / margin available)", equity, cash)
    per_unit = price * (1 + COMMISSION)
    pair(
        "0.2 x base / (open x (1 + commission)) at bar 31",
        0.2 * equity / per_unit,
        0.2 * cash / per_unit,
    )


def partial_close_section() -> None:
    heading("5. Partial closes")

    def buy(units):
        return lambda strategy: strategy.buy(size=units)

    def close_half(strategy):
        strategy.position.close(0.5)

    def sell_three(strategy):
        strategy.sell(size=3)

    def close_all(strategy):
        strategy.position.close()

    actions = {20: buy(4), 30: buy(10), 40: close_half, 50: sell_three, 58: close_all}
    print(
        "buy 4 (bar 20), buy 10 (bar 30), position.close(0.5) (bar 40), sell(size=3) "
        "(bar 50), position.close() (bar 58); each fills at the next open"
    )
    ours = run_tradenn(type("Partial", (Script,), {"actions": actions}))
    theirs = run_bt(type("PartialBt", (ScriptBt,), {"actions": actions}))
    show_trades("tradenn", trades_tradenn(ours))
    show_trades("backtesting.py", trades_bt(theirs))

    def close_half_of_first(strategy):
        strategy.trades[0].close(0.5)

    actions = {20: buy(5), 30: close_half_of_first, 40: close_all}
    print(
        "\nan odd lot: buy 5 (bar 20), trades[0].close(0.5) (bar 30), position.close() "
        "(bar 40); whole units in both"
    )
    ours = run_tradenn(type("Odd", (Script,), {"actions": actions}))
    theirs = run_bt(type("OddBt", (ScriptBt,), {"actions": actions}))
    columns()
    pair(
        "units closed by trades[0].close(0.5)",
        float(ours.trades["Size"].iloc[0]),
        float(theirs._trades["Size"].iloc[0]),
    )


def finalize_section() -> None:
    heading("6. Trades still open at the end: finalize_trades=True")
    last = GOOG.iloc[-1]
    print(
        f"last bar {GOOG.index[-1].date()}: open {last['Open']:.2f}, close {last['Close']:.2f}; "
        f"the bar before closed at {GOOG['Close'].iloc[-2]:.2f}"
    )
    for label, settings in (
        ("fills at the next open (default)", {}),
        ("trade_on_close=True", {"trade_on_close": True}),
    ):
        settings = {"exclusive_orders": True, "finalize_trades": True, **settings}
        ours, theirs = run_tradenn(SmaCross, **settings), run_bt(SmaCrossBt, **settings)
        mine, their = ours.trades.iloc[-1], theirs._trades.iloc[-1]
        print(f"\n{label}")
        columns()
        pair("last trade's exit bar", int(mine["ExitBar"]), int(their["ExitBar"]))
        pair("last trade's exit price", float(mine["ExitPrice"]), float(their["ExitPrice"]))
        pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
        pair("# Trades", len(ours.trades), len(theirs._trades))
        pair("Exposure Time [%]", ours.stats["Exposure Time [%]"], theirs["Exposure Time [%]"])
        pair("Commissions [$]", ours.stats["Commissions [$]"], theirs["Commissions [$]"])
    closed_early = run_tradenn(CloseBeforeTheEnd, exclusive_orders=True)
    print()
    note(
        "tradenn, position.close() on the second-to-last bar: Equity Final [$]",
        closed_early.stats["Equity Final [$]"],
    )
    note("its last exit price", float(closed_early.trades["ExitPrice"].iloc[-1]))


def spread_section() -> None:
    heading("7. spread=0.002 (README form, exclusive_orders=True)")
    settings = {"exclusive_orders": True, "spread": 0.002}
    ours = run_tradenn(SmaCross, **settings, commission=0.0)
    theirs = run_bt(SmaCrossBt, **settings, commission=0.0)
    first_ours, first_theirs = ours.trades.iloc[0], theirs._trades.iloc[0]
    print(
        "commission 0; the first trade is a short of 59 units from bar 63 (open 169.02) to "
        "bar 75 (open 179.13)"
    )
    columns()
    pair(
        "first trade: entry price (a sell)",
        float(first_ours["EntryPrice"]),
        float(first_theirs["EntryPrice"]),
    )
    pair(
        "first trade: exit price (a buy)",
        float(first_ours["ExitPrice"]),
        float(first_theirs["ExitPrice"]),
    )
    pair("first trade: PnL", float(first_ours["PnL"]), float(first_theirs["PnL"]))
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
    pair("# Trades", len(ours.trades), len(theirs._trades))
    ours = run_tradenn(SmaCross, **settings)
    theirs = run_bt(SmaCrossBt, **settings)
    print(f"with commission {COMMISSION} as well")
    pair(
        "first trade: units", int(ours.trades["Size"].iloc[0]), int(theirs._trades["Size"].iloc[0])
    )
    q = GOOG["Open"].iloc[63]
    ours_cost = q * 0.001 + COMMISSION * q * (1 - 0.001)  # half spread + fee on the fill price
    pair(
        "all-in units before rounding (formulas in the guide)",
        CASH / (q + ours_cost),
        CASH / (q * (1 - 0.002) + COMMISSION * q),
    )
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])


def margin_section() -> None:
    heading("8. margin=0.5 (README form, exclusive_orders=True)")
    settings = {"exclusive_orders": True, "margin": 0.5}
    ours, theirs = run_tradenn(SmaCross, **settings), run_bt(SmaCrossBt, **settings)
    ours_trades, theirs_trades = trades_tradenn(ours), trades_bt(theirs)
    price = GOOG["Open"].iloc[63]
    columns()
    pair(
        f"first trade's units (short at bar 63's open {price:.2f})",
        int(ours_trades["Size"].iloc[0]),
        int(theirs_trades["Size"].iloc[0]),
    )
    ours_units = CASH / (price * 0.5 + COMMISSION * price)
    theirs_units = 2 * CASH / (price * (1 + COMMISSION))
    pair("all-in units before rounding (formulas in the guide)", ours_units, theirs_units)
    units = (abs(ours_trades["Size"].iloc[0]), abs(theirs_trades["Size"].iloc[0]))
    pair("margin of that position: units x open x 0.5 [$]", *(u * price * 0.5 for u in units))
    pair("equity after its commission [$]", *(CASH - u * price * COMMISSION for u in units))
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
    pair("# Trades", len(ours_trades), len(theirs_trades))
    pair("Max. Drawdown [%]", ours.stats["Max. Drawdown [%]"], theirs["Max. Drawdown [%]"])
    if len(ours_trades) == len(theirs_trades):
        differ = int(np.sum(ours_trades["Size"].to_numpy() != theirs_trades["Size"].to_numpy()))
        note("trades whose units differ", f"{differ} of {len(ours_trades)}")


def bracket_section() -> None:
    heading("9. A bracket whose take-profit is marketable at the entry (GOOG 2011-04-15)")
    day = GOOG.index.get_loc(pd.Timestamp("2011-04-14"))
    bar = GOOG.iloc[day]
    sl, tp = round(bar["Close"] * 1.05, 2), round(bar["Close"] * 0.95, 2)

    def short(strategy):
        strategy.sell(size=10, sl=sl, tp=tp)

    print(
        f"2011-04-14 (bar {day}) close {bar['Close']:.2f}: sell(size=10, sl={sl}, tp={tp}); "
        f"2011-04-15 opens at {GOOG['Open'].iloc[day + 1]:.2f}, below the take-profit"
    )
    ours = run_tradenn(type("Bracket", (Script,), {"actions": {day: short}}))
    theirs = run_bt(type("BracketBt", (ScriptBt,), {"actions": {day: short}}))
    show_trades("tradenn", trades_tradenn(ours))
    show_trades("backtesting.py", trades_bt(theirs))
    note("identical trades", same_trades(trades_tradenn(ours), trades_bt(theirs)))


def trailing_section() -> None:
    heading("10. Trailing stops: SMA reversal with a 3 x ATR(14) trailing stop-loss")
    ours, theirs = run_tradenn(TrailTradenn), run_bt(TrailBt)
    late = run_bt(TrailLateBt)
    columns()
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], theirs["Equity Final [$]"])
    pair("# Trades (closed)", len(ours.trades), len(theirs._trades))
    note("identical trades", same_trades(trades_tradenn(ours), trades_bt(theirs)))
    orders = ours.orders
    stopped = int(((orders["Type"] == "stop") & (orders["Status"] == "filled")).sum())
    note("trades closed by the trailing stop (tradenn's orders table)", stopped)
    print("backtesting.py with the orders placed before the stops move (super().next() last):")
    pair("Equity Final [$]", ours.stats["Equity Final [$]"], late["Equity Final [$]"])
    mine, their = trades_tradenn(ours), trades_bt(late)
    exits = np.abs(mine["ExitPrice"].to_numpy() - their["ExitPrice"].to_numpy()) > 1e-6
    bars = ["EntryBar", "ExitBar"]
    same_bars = int((mine[bars] == their[bars]).all(axis=1).sum())
    note("trades with the same entry and exit bars", f"{same_bars} of {len(mine)}")
    note("trades with another exit price", f"{int(exits.sum())} of {len(mine)}")
    k = int(np.flatnonzero(exits)[0])
    bar = int(mine["ExitBar"].iloc[k])
    prices = GOOG.iloc[bar]
    side = "long" if mine["Size"].iloc[k] > 0 else "short"
    stop = late._trades.set_index("EntryBar")["SL"].loc[int(their["EntryBar"].iloc[k])]
    print(
        f"  the first: trade {k}, a {side} closed on bar {bar} (open {prices['Open']:.2f}, "
        f"high {prices['High']:.2f}, low {prices['Low']:.2f}) by position.close() placed the "
        f"bar before; its stop-loss {stop:.2f}"
    )
    pair("  its exit price", float(mine["ExitPrice"].iloc[k]), float(their["ExitPrice"].iloc[k]))


def optimize_section() -> None:
    heading("11. optimize: n1 in 5..25 step 5, n2 in 10..60 step 10, n1 < n2")
    grid = {"n1": range(5, 30, 5), "n2": range(10, 70, 10)}

    def constraint(p):
        return p["n1"] < p["n2"]

    ours = Backtest(
        GOOG, SmaCross, cash=CASH, commission=COMMISSION, exclusive_orders=True
    ).optimize(maximize="Equity Final [$]", constraint=constraint, executor="serial", **grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, heatmap = backtesting.Backtest(
            GOOG, SmaCrossBt, cash=CASH, commission=COMMISSION, exclusive_orders=True
        ).optimize(maximize="Equity Final [$]", constraint=constraint, return_heatmap=True, **grid)
    columns()
    pair("combinations run", len(ours.table), len(heatmap))
    best_theirs = (int(theirs._strategy.n1), int(theirs._strategy.n2))
    pair("best (n1, n2)", str((ours.best_params["n1"], ours.best_params["n2"])), str(best_theirs))
    pair("best Equity Final [$]", ours.best_stats["Equity Final [$]"], theirs["Equity Final [$]"])
    note(
        "tradenn's overfitting guards: Deflated Sharpe Ratio / PBO",
        f"{ours.deflated_sharpe:.4f} / {ours.pbo:.4f}",
    )


def main() -> None:
    pd.set_option("display.width", 160)
    print(
        f"backtesting {version('backtesting')}, tradenn {version('tradenn')}, "
        f"pandas {pd.__version__}, numpy {np.__version__}"
    )
    ours, theirs = same_trades_section()
    statistics_section(ours, theirs)
    reversal_section()
    sizing_section()
    partial_close_section()
    finalize_section()
    spread_section()
    margin_section()
    bracket_section()
    trailing_section()
    optimize_section()


if __name__ == "__main__":
    main()
