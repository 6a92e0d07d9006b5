"""The ``tradenn`` console script: the command line, with Ctrl-C during start-up handled.

Importing the command line imports numpy and pandas (a second or two); a Ctrl-C that lands
there would print a traceback from deep inside pandas. Here it is one line and exit code 130,
as everywhere else in the command line.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point (``tradenn`` and ``python -m tradenn``)."""
    try:
        from tradenn.cli import main

        code = main()  # handles Ctrl-C in a command itself; here: importing, parsing
    except KeyboardInterrupt:
        print("tradenn: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)
