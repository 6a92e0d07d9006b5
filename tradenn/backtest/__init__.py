"""The backtester: one engine that judges every model and rule-based strategy the same way.

>>> from tradenn.backtest import Backtest, Strategy, crossover
>>> result = Backtest("SPX", MyStrategy, cash=10_000, commission=0.001).run(fast=5)
>>> result.stats, result.trades, result.equity
>>> result.plot("backtest.png"); result.report("report/")

See :mod:`tradenn.account` for the fill and cost model and
:mod:`tradenn.backtest.stats` for the definition of every statistic.
"""

from tradenn.account import Account, CostModel, Order, Position, Settings, Trade, Trail
from tradenn.backtest.engine import Backtest, BacktestEngine, BacktestError, engine_for
from tradenn.backtest.lib import (
    atr_size,
    barssince,
    cross,
    crossover,
    increasing,
    resample_apply,
    risk_size,
)
from tradenn.backtest.portfolio import (
    PortfolioBacktest,
    PortfolioResult,
    PortfolioStrategy,
)
from tradenn.backtest.result import Result
from tradenn.backtest.series import BarData, BarSeries, LookAheadError
from tradenn.backtest.stats import ImplausibleResultWarning
from tradenn.backtest.strategy import Strategy, StrategyBase

__all__ = [
    "Account",
    "Backtest",
    "BacktestEngine",
    "BacktestError",
    "BarData",
    "BarSeries",
    "CostModel",
    "ImplausibleResultWarning",
    "LookAheadError",
    "Order",
    "PortfolioBacktest",
    "PortfolioResult",
    "PortfolioStrategy",
    "Position",
    "Result",
    "Settings",
    "Strategy",
    "StrategyBase",
    "Trade",
    "Trail",
    "atr_size",
    "barssince",
    "cross",
    "crossover",
    "engine_for",
    "increasing",
    "resample_apply",
    "risk_size",
]
