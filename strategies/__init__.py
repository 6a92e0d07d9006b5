"""Ready-to-run strategies, one module each, and the registry that finds them by name.

Each module defines one :class:`tradenn.backtest.Strategy` subclass. Use them by module name
(``tradenn backtest sma_cross``), load them (``strategies.load_strategy("sma_cross")``) or
import them (``from strategies.sma_cross import SmaCross``). :func:`available` lists them;
:mod:`strategies.adapters` (a subpackage, not a strategy) holds the base classes that turn a
forecaster or an agent into a strategy.

This package sits above the engine: it imports :mod:`tradenn.backtest`, never the reverse.
"""

from strategies._registry import StrategyNotFound, available, load_strategy

__all__ = ["StrategyNotFound", "available", "load_strategy"]
