"""tradenn: algorithmic-trading research with a from-scratch numpy neural-network library.

Parts (see ``docs/`` and the README): ``tradenn.data`` (bundled and downloaded price data),
``tradenn.features`` (causal indicators), ``tradenn.nn`` (layers with explicit backward passes),
``tradenn.models`` (forecasters and baselines), ``tradenn.rl`` (Gymnasium environment and agents),
``tradenn.backtest`` (the engine every strategy is judged by) and ``tradenn.live`` (paper trading).
"""

from tradenn.errors import DataError, TradennError

__version__ = "0.1.0"

__all__ = ["DataError", "TradennError", "__version__"]
