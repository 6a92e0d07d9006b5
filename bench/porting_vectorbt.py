"""Every figure of docs/porting_from_vectorbt.md: vectorbt's from_signals and tradenn's
positions() side by side.

The same rules on backtesting.py's bundled GOOG daily bars (``backtesting.test.GOOG``, 2,148
bars), commission (vectorbt: ``fees``) 0.002, cash 10,000:

1. the SMA(10, 20) reversal: long from a cross above, short from a cross below, traded at the
   next open in whole units (vectorbt: ``entries``/``short_entries`` shifted one bar,
   ``price=open``, ``size=inf``, ``size_granularity=1``); final equity, trades, fees and the
   statistics whose definitions differ (Sharpe, annual return, drawdown duration);
2. long while SMA(10) > SMA(20), flat otherwise (vectorbt: ``entries=state, exits=~state``):
   filled at the same bar's close (vectorbt's default ``price=close``, tradenn
   ``trade_on_close=True``) and at the next open, fractional units (vectorbt's default) and
   whole units (tradenn's), and half the equity (``size=0.5, size_type="percent"``, a target of
   0.5).

vectorbt's first call compiles with numba (or loads its cache): about 10 s. Run:
``pip install -e ".[bench]" && python bench/porting_vectorbt.py``.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd
from backtesting.test import GOOG

from tradenn.backtest import Backtest, Strategy
from tradenn.backtest.stats import drawdown

CASH = 10_000
FEES = 0.002


class SmaReversal(Strategy):
    """+1 from the bar the fast SMA crosses above the slow one, -1 from a cross below."""

    fast = 10
    slow = 20

    def positions(self, data: pd.DataFrame) -> pd.Series:
        up, down = crossings(data["Close"], self.fast, self.slow)
        target = pd.Series(np.nan, index=data.index)
        target[up], target[down] = 1.0, -1.0
        return target.ffill().fillna(0.0)


class SmaLong(Strategy):
    """``exposure`` (a fraction of equity) while SMA(fast) > SMA(slow), flat otherwise."""

    fast = 10
    slow = 20
    exposure = 1.0

    def positions(self, data: pd.DataFrame) -> pd.Series:
        close = data["Close"]
        above = close.rolling(self.fast).mean() > close.rolling(self.slow).mean()
        return above.astype(float) * self.exposure


def crossings(close: pd.Series, fast: int, slow: int) -> tuple[pd.Series, pd.Series]:
    """Bars whose close the fast SMA crossed above (``up``) or below (``down``) the slow one."""
    f, s = close.rolling(fast).mean(), close.rolling(slow).mean()
    up = (f > s) & (f.shift(1) < s.shift(1))
    down = (f < s) & (f.shift(1) > s.shift(1))
    return up, down


def from_signals(vbt, **arguments):
    """``Portfolio.from_signals`` on GOOG's close with every argument spelled out, each
    defaulting to vectorbt's own default, so numba compiles one signature for all the runs
    here (each new combination of argument types costs a compilation of about 10 s)."""
    close = GOOG["Close"]
    never = pd.Series(False, index=close.index)
    defaults = {
        "entries": never,
        "exits": never,
        "short_entries": never,
        "short_exits": never,
        "price": close,  # vectorbt's default fill price: the close of the signal's bar
        "size": np.inf,
        "size_type": "amount",
        "size_granularity": np.nan,  # fractional units
        "fees": FEES,
        "init_cash": CASH,
        "freq": "1D",
    }
    return vbt.Portfolio.from_signals(close, **{**defaults, **arguments})


def pair(label: str, ours, theirs) -> None:
    print(f"{label:<56} {_text(ours):>20} {_text(theirs):>20}")


def columns() -> None:
    print(f"{'':<56} {'tradenn':>20} {'vectorbt':>20}")


def note(label: str, value) -> None:
    print(f"  {label}: {_text(value)}")


def _text(value) -> str:
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        return f"{value:,.4f}"
    return str(value)


def longest_drawdown(equity: pd.Series) -> tuple[int, int]:
    """Bar of the peak left and bar that regains it, for the longest drawdown episode."""
    under = (drawdown(equity) > 0).to_numpy().astype(np.int8)
    edges = np.diff(under, prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    k = int(np.argmax(stops - starts))
    return int(starts[k]) - 1, min(int(stops[k]), len(equity) - 1)


def reversal_section(vbt) -> None:
    print("\n== 1. SMA(10, 20) reversal at the next open, whole units ==")
    up, down = crossings(GOOG["Close"], 10, 20)
    portfolio = from_signals(
        vbt,
        entries=up.shift(1, fill_value=False),  # decided at the close, traded at the next open
        short_entries=down.shift(1, fill_value=False),
        price=GOOG["Open"],
        size_granularity=1.0,
    )
    theirs = portfolio.stats()
    ours = Backtest(GOOG, SmaReversal, cash=CASH, commission=FEES).run()
    stats = ours.stats
    columns()
    pair("final equity [$]", stats["Equity Final [$]"], portfolio.final_value())
    pair("closed trades", len(ours.trades), int(portfolio.trades.closed.count()))
    pair(
        "trades counted by the stats (vectorbt: open one too)",
        stats["# Trades"],
        int(theirs["Total Trades"]),
    )
    pair(
        "commissions / fees paid [$]",
        stats["Commissions [$]"],
        theirs["Total Fees Paid"],
    )
    gap = np.abs(ours.equity.to_numpy() - portfolio.value().to_numpy()).max()
    note("equity curves, largest |difference| over all bars", f"{gap:.1e}")

    returns = portfolio.returns()
    year_252 = returns.vbt.returns(freq="1D", year_freq="252 days")
    pair(
        "Sharpe Ratio (vectorbt's default year_freq='365 days')",
        stats["Sharpe Ratio"],
        portfolio.sharpe_ratio(),
    )
    pair(
        "Sharpe Ratio (vectorbt year_freq='252 days')",
        stats["Sharpe Ratio"],
        year_252.sharpe_ratio(),
    )
    ours_returns = ours.equity.pct_change()
    note(
        "returns: tradenn / vectorbt (its first bar's return is 0 against init_cash)",
        f"{ours_returns.count():,} / {len(returns):,}",
    )
    with_zero = ours_returns.fillna(0.0)
    note(
        "tradenn's Sharpe with that leading 0 return",
        with_zero.mean() / with_zero.std(ddof=1) * np.sqrt(252),
    )
    pair(
        "annual return [%] (vectorbt year_freq='252 days')",
        stats["Return (Ann.) [%]"],
        100 * year_252.annualized(),
    )
    n = len(ours.equity)
    growth = ours.equity.iloc[-1] / ours.equity.iloc[0]
    note(
        "tradenn's over n - 1 bars / over n bars [%]",
        f"{100 * (growth ** (252 / (n - 1)) - 1):.4f} / {100 * (growth ** (252 / n) - 1):.4f}",
    )
    pair(
        "Max. Drawdown [%] (vectorbt: positive)",
        stats["Max. Drawdown [%]"],
        theirs["Max Drawdown [%]"],
    )
    pair(
        "Max. Drawdown Duration",
        str(stats["Max. Drawdown Duration"]),
        str(theirs["Max Drawdown Duration"]),
    )
    peak, recovery = longest_drawdown(ours.equity)
    dates = ours.equity.index
    note(
        "that episode in tradenn's equity",
        f"peak bar {peak} ({dates[peak].date()}), first bar below it {peak + 1}, regained at "
        f"bar {recovery} ({dates[recovery].date()}): {recovery - peak - 1} bars from the first "
        f"bar below to the recovery, {(dates[recovery] - dates[peak]).days} calendar days "
        "from the peak",
    )


def long_flat_section(vbt) -> None:
    print("\n== 2. Long while SMA(10) > SMA(20), flat otherwise ==")
    close, open_ = GOOG["Close"], GOOG["Open"]
    state = close.rolling(10).mean() > close.rolling(20).mean()
    shifted = state.shift(1, fill_value=False)
    cases = [
        (
            "same bar's close, fractional units",
            {"entries": state, "exits": ~state},
            {"trade_on_close": True, "fractional": True},
            {},
        ),
        (
            "next open, fractional units",
            {"entries": shifted, "exits": ~shifted, "price": open_},
            {"fractional": True},
            {},
        ),
        (
            "next open, whole units (tradenn's default)",
            {"entries": shifted, "exits": ~shifted, "price": open_, "size_granularity": 1.0},
            {},
            {},
        ),
        (
            "next open, half the equity, fractional",
            {
                "entries": shifted,
                "exits": ~shifted,
                "price": open_,
                "size": 0.5,
                "size_type": "percent",
            },
            {"fractional": True},
            {"exposure": 0.5},
        ),
    ]
    columns()
    for label, signals, settings, params in cases:
        portfolio = from_signals(vbt, **signals)
        ours = Backtest(GOOG, SmaLong, cash=CASH, commission=FEES, **settings).run(**params)
        print(label)
        pair("  final equity [$]", ours.stats["Equity Final [$]"], portfolio.final_value())
        pair("  closed trades", len(ours.trades), int(portfolio.trades.closed.count()))
        gap = np.abs(ours.equity.to_numpy() - portfolio.value().to_numpy()).max()
        note("  equity curves, largest |difference| over all bars", f"{gap:.1e}")
    portfolio = from_signals(vbt, entries=shifted, exits=~shifted, price=open_)
    ours = Backtest(GOOG, SmaLong, cash=CASH, commission=FEES).run()
    print("each library's default units (vectorbt fractional, tradenn whole), next open")
    pair("  final equity [$]", ours.stats["Equity Final [$]"], portfolio.final_value())


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # vectorbt on recent pandas
    import vectorbt as vbt

    print(
        f"vectorbt {version('vectorbt')}, tradenn {version('tradenn')}, pandas {pd.__version__}; "
        f"GOOG {len(GOOG):,} daily bars; cash {CASH:,}, commission/fees {FEES}"
    )
    reversal_section(vbt)
    long_flat_section(vbt)


if __name__ == "__main__":
    main()
