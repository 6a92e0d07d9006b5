"""The ``tradenn`` command.

Every subcommand prints its result on stdout. Errors are one line on stderr: exit code 2 for bad
usage or input (a :class:`~tradenn.errors.TradennError`), 1 for a failure while running; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tradenn import __version__
from tradenn.data.files import date_format
from tradenn.errors import StrategyFailure, TradennError


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

    add_command(sub, "list", _data_list, help="the bundled datasets: name, bars, rows, range")

    p = add_command(sub, "show", _data_show, help="summary and last rows of a data source")
    p.add_argument(
        "source", metavar="SOURCE", help="bundled name (SPX, ...), CSV path or yf:TICKER"
    )
    p.add_argument("--tail", type=int, default=10, metavar="N", help="rows to print (default 10)")
    _add_range(p)

    p = add_command(
        sub,
        "validate",
        _data_validate,
        help="check a CSV against the price-frame contract",
        description="Exit 0 if PATH is a valid price CSV, else exit 2 with the "
        "first problem on one line.",
    )
    p.add_argument("path", metavar="PATH", help="CSV file to check")

    p = add_command(
        sub, "download", _data_download, help="fetch a ticker from Yahoo Finance into the cache"
    )
    p.add_argument("ticker", metavar="TICKER", help="Yahoo symbol, e.g. SPY, ^GSPC, EURUSD=X")
    _add_range(p)
    p.add_argument("--interval", default="1d", help="bar size: 1m .. 1h, 1d (default), 1wk, 1mo")
    p.add_argument("--raw", action="store_true", help="unadjusted prices (default: adjusted)")


# ----------------------------------------------------------------------------------- backtest


def parse_params(pairs: list[str], defaults: dict) -> dict:
    """``name=value`` strings to typed values, typed like each parameter's default."""
    params = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param {pair!r}: expected name=value")
        default = defaults.get(name)
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = text.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                value = int(text)
                if not -(2**63) <= value < 2**63:
                    raise UsageError(f"--param {pair}: {name} is too large (an int below 2**63)")
            elif isinstance(default, float):
                value = float(text)
                if not math.isfinite(value):
                    raise UsageError(f"--param {pair}: {name} takes a finite float, got {text!r}")
            else:
                value = text
        except ValueError:
            kind = type(default).__name__
            article = "an" if kind[0] in "aeiou" else "a"
            raise UsageError(
                f"--param {pair}: {name} takes {article} {kind}, got {text!r}"
            ) from None
        params[name] = value
    return params


def _format_stats(stats: pd.Series) -> str:
    from tradenn.backtest.stats import format_duration

    def show(value) -> str:
        if isinstance(value, float):
            return "nan" if value != value else f"{value:,.4f}".rstrip("0").rstrip(".")
        if isinstance(value, pd.Timestamp):
            return _stamp(value)
        if isinstance(value, pd.Timedelta):
            return format_duration(value)
        return str(value)

    shown = {k: show(v) for k, v in stats.items()}
    width = max(map(len, shown))
    return "\n".join(f"{k:<{width}}  {v:>20}" for k, v in shown.items())


def _json_safe(value):
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return str(value)
    return value


def _backtest_options(args: argparse.Namespace) -> dict:
    """Backtest keyword arguments from the shared command-line options."""
    return {
        "cash": args.cash,
        "commission": args.commission,
        "spread": args.spread,
        "slippage_bps": args.slippage,
        "margin": args.margin,
        "trade_on_close": args.trade_on_close,
        "exclusive_orders": args.exclusive_orders,
        "fractional": args.fractional,
        "finalize_trades": args.finalize_trades,
    }


def check_output(option: str, path: str | None, *, folder: bool = False) -> None:
    """Refuse, before any work, an output the run could not write: ``path`` (a file, or with
    ``folder`` a directory that may be created) must have an existing, writable folder."""
    if not path:
        return
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    if not folder and target.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    parent = target if folder else target.parent
    while folder and not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the report creates the folders that are missing
    parent = parent if str(parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: there is no folder {parent}")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{option} {path}: the folder {parent} is not writable")


def _load_market(args: argparse.Namespace):
    """The --data source: one price frame, or for ``A,B,C`` a dict of frames (a portfolio)."""
    from tradenn import data

    names = [name.strip() for name in args.data.split(",")]
    if len(names) == 1:
        return data.load(names[0], args.start, args.end)
    if any(not name for name in names) or len(set(names)) != len(names):
        raise UsageError(f"--data {args.data!r}: expected distinct sources separated by commas")
    return {name: data.load(name, args.start, args.end) for name in names}


def _backtest(args: argparse.Namespace) -> int:
    from strategies import load_strategy
    from tradenn.backtest import engine_for
    from tradenn.data.calendar import bar_label

    check_output("--plot", args.plot)
    check_output("--report", args.report, folder=True)
    check_output("--html", args.html)
    if args.html:
        from tradenn.backtest.interactive import require_bokeh

        require_bokeh()
    strategy = load_strategy(args.strategy)
    params = parse_params(args.param, strategy.parameters())
    market = _load_market(args)
    result = engine_for(strategy)(market, strategy, **_backtest_options(args)).run(**params)
    frame = result.equity
    if args.json:
        stats = {k: _json_safe(v) for k, v in result.stats.items()}
        payload = {
            "strategy": result.strategy_name,
            "params": result.params,
            "data": args.data,
            "stats": stats,
        }
        if result.diagnostics:
            payload["diagnostics"] = {k: _json_safe(v) for k, v in result.diagnostics.items()}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(
            f"{result.label} on {args.data}, "
            f"{_stamp(frame.index[0])} .. {_stamp(frame.index[-1])} ({len(frame)} "
            f"{bar_label(frame.index)} bars); cash {args.cash:,.0f}, commission "
            f"{args.commission:.2%}, slippage {args.slippage:g} bps"
        )
        print(_format_stats(result.stats))
        if result.diagnostics:
            print("\nForecast (walk-forward, out of sample)")
            print(_format_stats(pd.Series(result.diagnostics)))
    if args.plot:
        result.plot(args.plot)
        print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    if args.html:
        result.plot(args.html, interactive=True)
        print(f"chart: {args.html}", file=sys.stderr if args.json else sys.stdout)
    if args.report:
        page = result.report(args.report)
        print(f"report: {page}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from strategies import available, load_strategy
    from tradenn import data
    from tradenn.backtest.compare import compare
    from tradenn.data.calendar import bar_label

    check_output("--plot", args.plot)
    names = list(args.strategies) or list(available())
    if len(set(names)) != len(names):
        raise UsageError("compare: a strategy is named twice")
    classes = {name: load_strategy(name) for name in names}
    if "buy_and_hold" not in classes:  # the baseline every leaderboard needs
        classes["buy_and_hold"] = load_strategy("buy_and_hold")
    overrides: dict[str, list[str]] = {name: [] for name in classes}
    for pair in args.param:
        target, dot, rest = pair.partition(".")
        if not dot or target not in classes:
            raise UsageError(
                f"--param {pair!r}: expected STRATEGY.name=value with STRATEGY one of "
                f"{', '.join(classes)}"
            )
        overrides[target].append(rest)
    runs = [
        (name, cls, parse_params(overrides[name], cls.parameters()))
        for name, cls in classes.items()
    ]
    frame = data.load(args.data, args.start, args.end)
    board = compare(
        frame,
        runs,
        progress=not args.quiet,
        executor=args.executor or ("serial" if args.jobs == 1 else "local"),
        jobs=args.jobs,
        **_backtest_options(args),
    )
    if args.json:
        print(json.dumps(board.records(), indent=2))
    else:
        print(
            f"{len(board.results)} strategies on {frame.attrs.get('source', args.data)}, "
            f"{_stamp(frame.index[0])} .. {_stamp(frame.index[-1])} ({len(frame)} "
            f"{bar_label(frame.index)} bars); commission {args.commission:.2%}, slippage "
            f"{args.slippage:g} bps, {'fractional' if args.fractional else 'whole'} units; "
            "forecasts are walk-forward, out of sample"
        )
        print(board.to_string())
    for name, reason in board.errors.items():
        print(f"tradenn: error: {name}: {reason}", file=sys.stderr)
    if args.plot and board.results:
        board.plot(args.plot)
        print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 1 if board.errors else 0


def _parse_grid(specs: list[str], defaults: dict) -> dict[str, Sequence]:
    """``name=start:stop:step`` (stop included) or ``name=a,b,c`` to value lists, typed like
    each parameter's default."""
    from tradenn.backtest.optimize import Steps

    grid: dict[str, Sequence] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or not name or not text:
            raise UsageError(f"--grid {spec!r}: expected name=start:stop:step or name=a,b,c")
        if name not in defaults:
            known = ", ".join(defaults) or "none"
            raise UsageError(f"--grid {spec}: no parameter {name!r} (parameters: {known})")
        if name in grid:
            raise UsageError(f"--grid {spec}: {name} is given twice")
        default = defaults[name]
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise UsageError(f"--grid {spec}: a range is start:stop:step")
            kind = int if isinstance(default, int) and not isinstance(default, bool) else float
            try:
                start, stop, step = (kind(part) for part in parts)
            except ValueError:
                raise UsageError(f"--grid {spec}: {name} takes {kind.__name__} values") from None
            if step <= 0 or stop < start:
                raise UsageError(f"--grid {spec}: need step > 0 and stop >= start")
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            # lazy: fast=1:100000000:1 --max-tries 3 must not build 10^8 values
            values = (
                range(start, start + count * step, step)
                if kind is int
                else Steps(start, step, count)
            )
        else:
            try:
                values = [
                    parse_params([f"{name}={item}"], defaults)[name] for item in text.split(",")
                ]
            except UsageError as error:
                reason = str(error).partition(": ")[2]  # without the --param prefix
                raise UsageError(
                    f"--grid {spec}: {reason}; expected name=start:stop:step or name=a,b,c"
                ) from None
        grid[name] = values
    if not grid:
        raise UsageError("optimize: give at least one --grid name=start:stop:step")
    return grid


def _optimize(args: argparse.Namespace) -> int:
    from strategies import load_strategy
    from tradenn import data
    from tradenn.backtest import engine_for
    from tradenn.backtest.optimize import optimize, walk_forward_optimize

    check_output("--heatmap", args.heatmap)
    strategy = load_strategy(args.strategy)
    defaults = strategy.parameters()
    grid = _parse_grid(args.grid, defaults)
    fixed = parse_params(args.param, defaults)
    overlap = sorted(set(fixed) & set(grid))
    if overlap:
        raise UsageError(f"{overlap[0]} is both fixed with --param and searched with --grid")
    frame = data.load(args.data, args.start, args.end)
    options = _backtest_options(args)
    backtest = engine_for(strategy)(frame, strategy, **options)
    grid.update({name: [value] for name, value in fixed.items()})  # fixed = one-value ranges
    search = {
        "maximize": args.maximize,
        "method": args.method,
        "max_tries": args.max_tries,
        "executor": args.executor or ("serial" if args.jobs == 1 else "local"),
        "jobs": args.jobs,
    }
    with _sigterm_interrupts():
        if args.walk_forward:
            train, test = _parse_walk_forward(args.walk_forward)
            wfo = walk_forward_optimize(
                backtest, train=train, test=test, progress=not args.quiet, **search, **grid
            )
            payload = wfo.to_dict() if args.json else None
            print(json.dumps(payload, indent=2, default=str) if args.json else wfo.summary())
            return 0
        result = optimize(backtest, progress=not args.quiet, **search, **grid)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
    if result.interrupted:
        print(
            f"tradenn: interrupted: {len(result.table)} of {result.total} combinations ran; "
            "the table above holds them",
            file=sys.stderr,
        )
        return 130
    if args.heatmap:
        names = [name for name, values in grid.items() if len(values) > 1]
        if len(names) < 2:
            raise UsageError("--heatmap needs two --grid parameters")
        result.heatmap(names[0], names[1], path=args.heatmap)
        print(f"heatmap: {args.heatmap}", file=sys.stderr if args.json else sys.stdout)
    return 0


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) while the block runs: the workers are
    stopped and the finished rows kept, instead of the parent dying and leaving them running."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse_walk_forward(text: str) -> tuple[int, int]:
    values = {}
    for part in text.split(","):
        key, sep, number = part.partition("=")
        if not sep or key not in ("train", "test") or not number.isdigit() or int(number) < 1:
            raise UsageError(f"--walk-forward {text!r}: expected train=N,test=M (bars)")
        values[key] = int(number)
    if set(values) != {"train", "test"}:
        raise UsageError(f"--walk-forward {text!r}: expected train=N,test=M (bars)")
    return values["train"], values["test"]


def _check_lookahead(args: argparse.Namespace) -> int:
    from strategies import load_strategy
    from tradenn.backtest.lookahead import check_lookahead

    strategy = load_strategy(args.strategy)
    params = parse_params(args.param, strategy.parameters())
    options = {k: v for k, v in _backtest_options(args).items() if k != "finalize_trades"}
    report = check_lookahead(
        strategy, _load_market(args), params=params, cuts=args.cuts, backtest_options=options
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(report.summary())
    return 0 if report.clean else 1


def _strategies(args: argparse.Namespace) -> int:
    from strategies import available

    for name, strategy in available().items():
        doc = (strategy.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        doc = " ".join(doc.split())
        params = ", ".join(f"{k}={v!r}" for k, v in strategy.parameters().items())
        print(f"{name} ({strategy.__name__}): {doc}")
        print(f"    parameters: {params or 'none'}")
    return 0


def add_cost_options(p: argparse.ArgumentParser) -> None:
    """--cash, --commission and --slippage (backtest, compare, optimize and paper run)."""
    p.add_argument("--cash", type=float, default=10_000.0, help="starting cash (default 10000)")
    p.add_argument(
        "--commission",
        type=float,
        default=0.001,
        help="fraction of traded value per fill (default 0.001 = 10 bps)",
    )
    p.add_argument(
        "--slippage",
        type=float,
        default=0.0,
        metavar="BPS",
        help="adverse price move per fill in basis points (default 0)",
    )


def _add_market_options(p: argparse.ArgumentParser) -> None:
    """Data, period and account options shared by backtest and compare."""
    p.add_argument(
        "--data",
        default="SPX",
        metavar="SOURCE",
        help="bundled name, CSV path or yf:TICKER (default: SPX); A,B,C for a portfolio",
    )
    _add_range(p)
    add_cost_options(p)
    p.add_argument("--spread", type=float, default=0.0, help="bid-ask spread as a fraction")
    p.add_argument("--margin", type=float, default=1.0, help="margin requirement (1 = no leverage)")
    p.add_argument("--trade-on-close", action="store_true", help="fill at the signal bar's close")
    p.add_argument(
        "--exclusive-orders", action="store_true", help="each order closes the position first"
    )
    p.add_argument("--fractional", action="store_true", help="allow fractional units")
    p.add_argument(
        "--finalize-trades",
        action="store_true",
        help="close open trades at the end so they count in trade statistics",
    )


def _add_executor_options(p: argparse.ArgumentParser, default_jobs: int | None) -> None:
    shown = "all cores" if default_jobs is None else str(default_jobs)
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=default_jobs,
        metavar="N",
        help=f"local worker processes (default {shown})",
    )
    p.add_argument(
        "--executor",
        metavar="dask://HOST:PORT",
        help="run on a Dask distributed cluster instead of local processes",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_command(
    commands,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add the verb ``name`` to ``commands`` (a subparsers action): its parser, whose parsed
    arguments :func:`main` passes to ``handler`` (which returns the exit code)."""
    p = commands.add_parser(name, help=help, description=description)
    p.set_defaults(handler=handler)
    return p


def add_strategy_argument(p: argparse.ArgumentParser) -> None:
    """The STRATEGY positional (optimize, check-lookahead, paper run and train)."""
    p.add_argument("strategy", metavar="STRATEGY", help="strategy name or file.py:ClassName")


def add_param_option(p: argparse.ArgumentParser, metavar: str, text: str) -> None:
    p.add_argument("--param", action="append", default=[], metavar=metavar, help=text)


def _add_plot_options(p: argparse.ArgumentParser, default: str, what: str) -> None:
    p.add_argument(
        "--plot",
        default=default,
        metavar="FILE.png",
        help=f"where to write {what} (default {default})",
    )
    p.add_argument(
        "--no-plot", dest="plot", action="store_const", const=None, help="do not write a plot"
    )


def _add_backtest_commands(commands) -> None:
    p = add_command(
        commands,
        "backtest",
        _backtest,
        help="backtest a strategy and print its statistics",
        description="Backtest STRATEGY (a name from `tradenn strategies` or path/to/file.py"
        ":ClassName) on a data source; print the statistics and write a plot.",
    )
    p.add_argument(
        "strategy",
        nargs="?",
        default="sma_cross",
        metavar="STRATEGY",
        help="strategy name or file.py:ClassName (default: sma_cross)",
    )
    _add_market_options(p)
    add_param_option(p, "NAME=VALUE", "set a strategy parameter (repeatable)")
    _add_plot_options(p, "backtest.png", "the plot")
    p.add_argument(
        "--html",
        metavar="FILE.html",
        help="write an interactive chart (zoom, pan, trade tooltips; one offline page) to FILE",
    )
    p.add_argument("--report", metavar="DIR", help="write an HTML report to DIR")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")

    p = add_command(
        commands,
        "compare",
        _compare,
        help="run several strategies on the same data and costs; print a leaderboard",
        description="Backtest every STRATEGY (default: all in `tradenn strategies`) on the same "
        "data, period and costs, and rank them by Sharpe ratio. Model strategies are trained "
        "walk-forward and also report out-of-sample forecast quality: R^2 against the zero "
        "forecast, directional accuracy, the Diebold-Mariano p-value, training time. Buy & hold "
        "is always included as the baseline.",
    )
    p.add_argument(
        "strategies",
        nargs="*",
        metavar="STRATEGY",
        help="strategy names or file.py:ClassName (default: all)",
    )
    _add_market_options(p)
    add_param_option(
        p, "STRATEGY.NAME=VALUE", "set one strategy's parameter, e.g. sma_cross.fast=5 (repeatable)"
    )
    _add_plot_options(p, "compare.png", "the equity curves")
    p.add_argument("--json", action="store_true", help="print one JSON object per strategy")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_executor_options(p, default_jobs=1)
    p.add_argument(
        "--whole-units",
        dest="fractional",
        action="store_false",
        help="trade whole units only (default here: fractional, so a strategy whose equity "
        "falls below one unit's price keeps trading and the curves stay comparable)",
    )
    p.set_defaults(fractional=True)

    p = add_command(
        commands,
        "optimize",
        _optimize,
        help="search a strategy's parameters; report the best and overfitting guards",
        description="Backtest STRATEGY for every combination of the --grid values (or a random "
        "subset) and report the best by --maximize, the number of trials, the Deflated Sharpe "
        "Ratio of the best and, for grids, the Probability of Backtest Overfitting. With "
        "--walk-forward, optimize on rolling in-sample windows and test on the next bars.",
    )
    add_strategy_argument(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=START:STOP:STEP",
        help="values to search (stop included), or NAME=a,b,c (repeatable)",
    )
    add_param_option(p, "NAME=VALUE", "fix a parameter that is not searched (repeatable)")
    p.add_argument(
        "--maximize", default="Sharpe Ratio", metavar="METRIC", help="statistic to maximize"
    )
    p.add_argument("--method", choices=("grid", "random"), default="grid")
    p.add_argument("--max-tries", type=_positive_int, metavar="N", help="cap on combinations")
    p.add_argument(
        "--walk-forward", metavar="train=N,test=M", help="walk-forward optimization windows"
    )
    p.add_argument("--heatmap", metavar="FILE.png", help="plot the metric over two parameters")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_market_options(p)
    _add_executor_options(p, default_jobs=None)

    p = add_command(
        commands,
        "check-lookahead",
        _check_lookahead,
        help="prove a strategy never peeks at the future",
        description="Run STRATEGY on truncated copies of the data and on copies with the future "
        "perturbed; exit 0 if no decision changed, 1 naming the first bar whose decision did.",
    )
    add_strategy_argument(p)
    add_param_option(p, "NAME=VALUE", "set a strategy parameter (repeatable)")
    p.add_argument("--cuts", type=_positive_int, default=10, metavar="N", help="cut points")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_market_options(p)

    add_command(
        commands, "strategies", _strategies, help="list the ready strategies and their parameters"
    )


# ----------------------------------------------------------------------------------- parser


def _add_paper_commands(commands) -> None:
    from tradenn.live.commands import add_paper_commands, add_train_command

    add_paper_commands(commands)
    add_train_command(commands)


COMMAND_GROUPS: list[Callable] = [_add_backtest_commands, _add_data_commands, _add_paper_commands]


def build_parser() -> argparse.ArgumentParser:
    """The full ``tradenn`` argument parser."""
    parser = _Parser(
        prog="tradenn",
        description="Algorithmic-trading research: backtests, optimization, models and data.",
    )
    parser.add_argument("--version", action="version", version=f"tradenn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument(
        "--date-format",
        metavar="FMT",
        help="read the dates of every price CSV with this strftime format (e.g. %%d/%%m/%%Y) "
        "instead of detecting one",
    )
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
    shown = warnings.showwarning
    if not args.debug:
        warnings.showwarning = _one_line_warning
    try:
        with date_format(args.date_format):
            return int(args.handler(args) or 0)
    except StrategyFailure as error:  # the strategy's own code failed while running
        if args.debug:
            raise
        print(f"tradenn: failed: {error} (--debug shows the traceback)", file=sys.stderr)
        return 1
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
    finally:
        warnings.showwarning = shown


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, ``tradenn: warning: ...`` (no source file and line)."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    print(f"tradenn: warning: {text}", file=sys.stderr if file is None else file)
