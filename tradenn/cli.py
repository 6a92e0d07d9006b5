"""The ``tradenn`` command.

Every subcommand prints its result on stdout. Errors are one line on stderr: exit code 2 for bad
usage or input (a :class:`~tradenn.errors.TradennError`), 1 for a failure while running; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import pandas as pd

from tradenn import __version__
from tradenn.errors import TradennError


class UsageError(TradennError):
    """A command line that cannot be carried out as written."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus a pointer to ``--help``), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------------------- data


def _data_list(args: argparse.Namespace) -> int:
    from tradenn import data
    from tradenn.data.calendar import bar_label

    rows = []
    for name, dataset in data.BUNDLED.items():
        frame = data.load(name)
        rows.append(
            {
                "name": name,
                "bars": bar_label(frame.index),
                "rows": len(frame),
                "first": _stamp(frame.index[0]),
                "last": _stamp(frame.index[-1]),
                "description": dataset.description,
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _stamp(ts: pd.Timestamp) -> str:
    return str(ts.date()) if ts == ts.normalize() else str(ts)


def _data_show(args: argparse.Namespace) -> int:
    from tradenn import data
    from tradenn.data.calendar import bar_label

    if args.tail < 0:
        raise UsageError(f"--tail must be >= 0, got {args.tail}")
    frame = data.load(args.source, args.start, args.end)
    print(
        f"{frame.attrs.get('source', args.source)}: {len(frame)} {bar_label(frame.index)} bars, "
        f"{_stamp(frame.index[0])} .. {_stamp(frame.index[-1])}; "
        f"Close {frame['Close'].iloc[0]:,.4g} -> {frame['Close'].iloc[-1]:,.4g}"
    )
    if args.tail:
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            formats = {c: "{:,.4f}".format for c in frame.columns}
            formats["Volume"] = "{:,.0f}".format
            print(frame.tail(args.tail).to_string(formatters=formats))
    return 0


def _data_validate(args: argparse.Namespace) -> int:
    from tradenn.data.files import read_csv

    frame = read_csv(args.path)
    print(
        f"{args.path}: OK, {len(frame)} bars, {_stamp(frame.index[0])} .. {_stamp(frame.index[-1])}"
    )
    return 0


def _data_download(args: argparse.Namespace) -> int:
    from tradenn.data import yahoo

    ticker = args.ticker.removeprefix("yf:")
    frame, path = yahoo.download(
        ticker, args.start, args.end, interval=args.interval, adjusted=not args.raw
    )
    print(
        f"yf:{ticker}: {len(frame)} bars cached, {_stamp(frame.index[0])} .. "
        f"{_stamp(frame.index[-1])} -> {path}"
    )
    return 0


def _add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="DATE", help="first bar to keep (YYYY-MM-DD)")
    parser.add_argument("--end", metavar="DATE", help="last bar to keep, inclusive (YYYY-MM-DD)")


def _add_data_commands(commands) -> None:
    data = commands.add_parser(
        "data",
        help="list, show, validate and download price data",
        description="Price data: bundled datasets, CSV files, Yahoo Finance.",
    )
    sub = data.add_subparsers(
        dest="data_command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    p = sub.add_parser("list", help="the bundled datasets: name, bars, rows, range")
    p.set_defaults(handler=_data_list)

    p = sub.add_parser("show", help="summary and last rows of a data source")
    p.add_argument(
        "source", metavar="SOURCE", help="bundled name (SPX, ...), CSV path or yf:TICKER"
    )
    p.add_argument("--tail", type=int, default=10, metavar="N", help="rows to print (default 10)")
    _add_range(p)
    p.set_defaults(handler=_data_show)

    p = sub.add_parser(
        "validate",
        help="check a CSV against the price-frame contract",
        description="Exit 0 if PATH is a valid price CSV, else exit 2 with the "
        "first problem on one line.",
    )
    p.add_argument("path", metavar="PATH", help="CSV file to check")
    p.set_defaults(handler=_data_validate)

    p = sub.add_parser("download", help="fetch a ticker from Yahoo Finance into the cache")
    p.add_argument("ticker", metavar="TICKER", help="Yahoo symbol, e.g. SPY, ^GSPC, EURUSD=X")
    _add_range(p)
    p.add_argument("--interval", default="1d", help="bar size: 1m .. 1h, 1d (default), 1wk, 1mo")
    p.add_argument("--raw", action="store_true", help="unadjusted prices (default: adjusted)")
    p.set_defaults(handler=_data_download)


# ----------------------------------------------------------------------------------- parser

COMMAND_GROUPS: list[Callable] = [_add_data_commands]


def build_parser() -> argparse.ArgumentParser:
    """The full ``tradenn`` argument parser."""
    parser = _Parser(
        prog="tradenn",
        description="Algorithmic-trading research: backtests, optimization, models and data.",
    )
    parser.add_argument("--version", action="version", version=f"tradenn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for add in COMMAND_GROUPS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tradenn`` command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TradennError as error:
        if args.debug:
            raise
        print(f"tradenn: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tradenn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tradenn data show SPX | head`
        sys.stderr.close()
        return 0
    except Exception as error:
        if args.debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"tradenn: failed: {type(error).__name__}: {message} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
