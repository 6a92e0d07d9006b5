"""The backtester: one engine that judges every model and rule-based strategy the same way.

>>> from tradenn.backtest import Backtest, Strategy, crossover
>>> result = Backtest("SPX", MyStrategy, cash=10_000, commission=0.001).run(fast=5)
>>> result.stats, result.trades, result.equity
>>> result.plot("backtest.png"); result.report("report/")

See :mod:`tradenn.backtest.broker` for the fill and cost model and
:mod:`tradenn.backtest.stats` for the definition of every statistic.
"""

from tradenn.backtest.broker import CostModel, Order, Position, Trade
from tradenn.backtest.engine import Backtest, BacktestError
from tradenn.backtest.lib import barssince, cross, crossover
from tradenn.backtest.portfolio import (
    PortfolioBacktest,
    PortfolioResult,
    PortfolioStrategy,
)
from tradenn.backtest.result import Result
from tradenn.backtest.series import BarData, BarSeries, LookAheadError
from tradenn.backtest.strategy import Strategy

__all__ = [
    "Backtest",
    "BacktestError",
    "BarData",
    "BarSeries",
    "CostModel",
    "LookAheadError",
    "Order",
    "PortfolioBacktest",
    "PortfolioResult",
    "PortfolioStrategy",
    "Position",
    "Result",
    "Strategy",
    "Trade",
    "barssince",
    "cross",
    "crossover",
]
