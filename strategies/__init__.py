"""Ready-to-run strategies, one module each; ``tradenn strategies`` lists them.

Each module defines one :class:`tradenn.backtest.Strategy` subclass. Use them by module name
(``tradenn backtest sma_cross``) or import them (``from strategies.sma_cross import SmaCross``).
"""
