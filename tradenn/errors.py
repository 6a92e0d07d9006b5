"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any :class:`TradennError` as a single line and exits with code 2
(bad usage or input); anything else is a failure while running (exit code 1).
"""

from __future__ import annotations

import os
from pathlib import Path


class TradennError(Exception):
    """Base class for errors caused by the user's input: bad data, arguments or files."""


class DataError(TradennError, ValueError):
    """Price data that cannot be loaded or does not satisfy the price-frame contract.

    The message names the source (file, bundled name or ticker) and, where there is one, the first
    offending row.
    """


class ModelFileError(TradennError, ValueError):
    """A saved model, agent or artifact file that cannot be loaded: foreign, damaged, of another
    format version, or declaring more than it holds. The message names the file and the part
    that is wrong. (The neural-network library raises it too: this module and
    :mod:`tradenn.checks` are the parts of ``tradenn`` that ``tradenn.nn`` imports, and this one
    imports nothing but the standard library.)"""


class BacktestError(TradennError):
    """A backtest that cannot run as configured (bad argument, parameter or strategy output)."""


class StrategyFailure(BacktestError):
    """A strategy's own code raised while running; the message names the strategy class, its
    file and line, the hook (``init``, ``next``, ``positions``) and the bar. The command line
    exits 1 for it (a failure while running, not bad input)."""


def raised_at(error: BaseException, path: str | os.PathLike) -> int | None:
    """The line of ``path`` (a source file) where ``error`` was raised: the deepest frame of
    its traceback in that file, so a helper that raises is named rather than its caller;
    None when no frame is in that file."""
    target, line = Path(path).resolve(), None
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
