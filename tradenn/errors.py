"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any :class:`TradennError` as a single line and exits with code 2
(bad usage or input); anything else is a failure while running (exit code 1).
"""


class TradennError(Exception):
    """Base class for errors caused by the user's input: bad data, arguments or files."""


class DataError(TradennError, ValueError):
    """Price data that cannot be loaded or does not satisfy the price-frame contract.

    The message names the source (file, bundled name or ticker) and, where there is one, the first
    offending row.
    """


class BacktestError(TradennError):
    """A backtest that cannot run as configured (bad argument, parameter or strategy output)."""


class StrategyFailure(BacktestError):
    """A strategy's own code raised while running; the message names the strategy class, its
    file and line, the hook (``init``, ``next``, ``positions``) and the bar. The command line
    exits 1 for it (a failure while running, not bad input)."""
