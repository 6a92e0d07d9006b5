"""tradenn's statistics next to backtesting.py's, on backtesting.py's own example.

The example of backtesting.py's README: the SMA 10/20 crossover on its bundled ``GOOG`` (daily,
2004-08-19 .. 2013-03-01, 2,148 bars), ``buy()`` on a cross above and ``sell()`` on a cross
below with ``exclusive_orders=True`` (each order first closes the open position), cash 10,000,
commission 0.2% per fill, fills at the next open, whole units. The same strategy runs in both
tools on the same frame and the statistics print side by side, with where their definitions
differ (see :mod:`tradenn.backtest.stats`):

* same definition: every statistic but the ones below. They agree to the printed digits when
  the trades are the same, as here (not always: backtesting.py sizes an all-in order on cash,
  tradenn on equity after costs, so a unit here and there may differ and compound).
  backtesting.py rounds durations up to whole days; its Return (Ann.) (the geometric mean
  return per calendar day, annualized) equals tradenn's (per bar) on daily data with no day
  missing between bars, and so does Calmar.
* Alpha [%]: the same formula, ``Return - Beta x Buy & Hold`` (risk-free rate 0), on each
  tool's Buy & Hold: backtesting.py's starts at the first bar the strategy can trade (after the
  20-bar warm-up), tradenn's at the first bar.
* different definitions: Volatility (Ann.), Sharpe and Sortino (backtesting.py derives them
  from the geometric mean daily return, tradenn from the mean and deviation of per-bar
  returns), Exposure Time (backtesting.py counts the bars from entry to exit, tradenn the bars
  holding a position at the close), Profit Factor (backtesting.py sums trade returns, tradenn
  money) and Commissions (backtesting.py counts the closed trades' only, tradenn every fill,
  the still open trade's entry included).

Run: ``python bench/stats_vs_backtesting.py`` (needs the ``bench`` extra: backtesting.py).
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

import backtesting
import numpy as np
import pandas as pd
from backtesting.lib import crossover as bt_crossover
from backtesting.test import GOOG, SMA

from tradenn.backtest import Backtest, Strategy, crossover
from tradenn.backtest.stats import format_duration
from tradenn.features import sma

SETTINGS = {"cash": 10_000, "commission": 0.002, "exclusive_orders": True}

SAME = (
    "Equity Final [$]",
    "Equity Peak [$]",
    "Return [%]",
    "Return (Ann.) [%]",
    "CAGR [%]",
    "Calmar Ratio",
    "Beta",
    "Max. Drawdown [%]",
    "Avg. Drawdown [%]",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Best Trade [%]",
    "Worst Trade [%]",
    "Avg. Trade [%]",
    "Max. Trade Duration",
    "Avg. Trade Duration",
    "Expectancy [%]",
    "SQN",
    "Kelly Criterion",
)
OTHER_BUY_AND_HOLD = ("Buy & Hold Return [%]", "Alpha [%]")
DIFFERENT = (
    "Volatility (Ann.) [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Exposure Time [%]",
    "Profit Factor",
    "Commissions [$]",
)


class SmaCrossBt(backtesting.Strategy):
    """backtesting.py's README example."""

    def init(self):
        self.ma1 = self.I(SMA, self.data.Close, 10)
        self.ma2 = self.I(SMA, self.data.Close, 20)

    def next(self):
        if bt_crossover(self.ma1, self.ma2):
            self.buy()
        elif bt_crossover(self.ma2, self.ma1):
            self.sell()


class SmaCross(Strategy):
    """The same rule in tradenn."""

    def init(self):
        self.ma1 = self.I(sma, self.data.Close, 10)
        self.ma2 = self.I(sma, self.data.Close, 20)

    def next(self):
        if crossover(self.ma1, self.ma2):
            self.buy()
        elif crossover(self.ma2, self.ma1):
            self.sell()


def _text(value) -> str:
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, float | np.floating):
        return f"{value:,.4f}"
    return str(value)


def main() -> None:
    frame = GOOG.copy()
    frame["Volume"] = frame["Volume"].astype(np.float64)
    with warnings.catch_warnings():  # "some trades remain open": the same in both tools
        warnings.simplefilter("ignore")
        theirs = backtesting.Backtest(GOOG, SmaCrossBt, **SETTINGS).run()
    ours = Backtest(frame, SmaCross, **SETTINGS).run()

    print(
        f"SMA 10/20 crossover on backtesting.py's GOOG ({len(frame):,} daily bars), cash "
        f"{SETTINGS['cash']:,}, commission {SETTINGS['commission']:.1%}, exclusive orders; "
        f"backtesting.py {backtesting.__version__}"
    )
    groups = (
        ("same definition", SAME),
        ("same formula, own Buy & Hold", OTHER_BUY_AND_HOLD),
        ("different definitions", DIFFERENT),
    )
    width = max(len(name) for title, keys in groups for name in (title, *keys))
    for title, keys in groups:
        print(f"\n{title:<{width}}  {'tradenn':>20}  {'backtesting.py':>20}")
        for key in keys:
            print(f"{key:<{width}}  {_text(ours.stats[key]):>20}  {_text(theirs[key]):>20}")
    mae, mfe = ours.trades["MAE"], ours.trades["MFE"]
    print(
        f"\ntradenn's trades only: mean MAE {100 * mae.mean():.2f}%, mean MFE "
        f"{100 * mfe.mean():.2f}% of the entry price (backtesting.py has neither)"
    )


if __name__ == "__main__":
    main()
