"""``tradenn paper ...``: run a strategy on a live or replayed feed, and inspect its ledger.

::

    tradenn paper run STRATEGY --feed replay:SPX --ledger paper.db [--cash X --commission X
                      --slippage BPS --param k=v --quiet --log-file F --speed N --interval 1d
                      --warmup N --model model.npz]
    tradenn paper status --ledger paper.db     # positions, equity, last bar, open orders
    tradenn paper trades --ledger paper.db     # every fill as CSV
    tradenn paper verify --ledger paper.db     # replay the ledger; exit 1 on a difference
    tradenn train STRATEGY --data SOURCE --out model.npz [--param k=v --quiet]

``run`` resumes from the ledger if it exists (same strategy and parameters only), stops cleanly
after the current bar on SIGINT or SIGTERM, and exits 0 when a replay's data ends. A ledger
another ``run`` is writing is refused at once (exit 2); ``status`` and ``trades`` open the
ledger read-only, so they work while a run writes it and on a read-only copy. A full disk is a
failure while running: one line ``tradenn: error: ledger FILE: disk full``, exit 1, and the bar
being written is rolled back, so the run resumes from there once space is freed.

Model and agent strategies train as the bars arrive (their models go to ``LEDGER.models/``);
``--warmup N`` first loads N bars of history from the feed's source to train on, and
``--model`` starts from a model ``tradenn train`` fitted offline.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tradenn.cli import (
    UsageError,
    add_command,
    add_cost_options,
    add_param_option,
    add_strategy_argument,
    parse_params,
)

_LOGGER = "tradenn.live"


def _disk_failure_exits_1(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Report a :class:`~tradenn.live.ledger.LedgerDiskError` (disk full, I/O error) as the one
    line ``tradenn: error: ledger FILE: disk full`` with exit code 1: a failure while running,
    not bad input (other ledger errors stay exit code 2)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from tradenn.live.ledger import LedgerDiskError

        try:
            return handler(args)
        except LedgerDiskError as error:
            if getattr(args, "debug", False):
                raise
            print(f"tradenn: error: {error}", file=sys.stderr)
            return 1

    return run


def _open_feed(spec: str, speed: float, interval: str):
    from tradenn.live.feeds import open_feed

    return open_feed(spec, speed=speed, interval=interval)


def _setup_logging(quiet: bool, log_file: str | None) -> list[logging.Handler]:
    """One line per event on stderr (warnings only with ``quiet``) and, with ``log_file``,
    everything in that file."""
    logger = logging.getLogger(_LOGGER)
    # The logger's own level is the lowest any handler wants: with --quiet and no log file,
    # INFO records are not even built (a few of them per bar).
    logger.setLevel(logging.WARNING if quiet and not log_file else logging.INFO)
    logger.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING if quiet else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handlers: list[logging.Handler] = [console]
    if log_file:
        try:
            to_file = logging.FileHandler(log_file)
        except OSError as error:
            raise UsageError(f"--log-file {log_file}: {error.strerror}") from None
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(to_file)
    for handler in handlers:
        logger.addHandler(handler)
    return handlers


def _interval(text: str) -> pd.Timedelta:
    units = {"m": "min", "h": "h", "d": "D", "wk": "W", "mo": "30D"}
    for suffix, unit in sorted(units.items(), key=lambda kv: -len(kv[0])):
        number = text[: -len(suffix)]
        if text.endswith(suffix) and number.isdigit() and int(number) > 0:
            if unit == "30D":
                return pd.Timedelta(days=30 * int(number))
            return pd.Timedelta(int(number), unit=unit)
    raise UsageError(f"--interval {text!r}: expected e.g. 1m, 5m, 1h, 1d, 1wk, 1mo")


@_disk_failure_exits_1
def _paper_run(args: argparse.Namespace) -> int:
    from strategies import load_strategy
    from tradenn.backtest import Strategy
    from tradenn.live.broker import SimulatedBroker
    from tradenn.live.ledger import Ledger
    from tradenn.live.loop import PaperTrader

    if args.speed < 0:
        raise UsageError(f"--speed must be >= 0, got {args.speed}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0 bars, got {args.warmup}")
    if args.model is not None and not Path(args.model).is_file():
        raise UsageError(f"--model {args.model}: no such file")
    interval = _interval(args.interval)
    strategy = load_strategy(args.strategy)
    if not issubclass(strategy, Strategy):
        raise UsageError(
            f"{args.strategy}: paper trading runs single-asset strategies; "
            f"{strategy.__name__} is a portfolio strategy"
        )
    from tradenn.backtest.runner import parameter_values

    params = parse_params(args.param, strategy.parameters())
    parameter_values(strategy, params)  # a value the strategy refuses: before a ledger exists
    if args.model is not None:  # refused before a ledger is created
        from tradenn.live.artifacts import check_artifact, read_artifact

        if not hasattr(strategy, "use_model"):
            raise UsageError(f"{args.strategy}: {strategy.__name__} trains no model; drop --model")
        header, _ = read_artifact(args.model)
        check_artifact(header, strategy.__name__, parameter_values(strategy, params), args.model)
    settings = {"cash": args.cash, "commission": args.commission, "slippage_bps": args.slippage}
    try:
        SimulatedBroker(**settings)
    except ValueError as error:
        raise UsageError(str(error)) from None
    feed = _open_feed(args.feed, args.speed, args.interval)
    symbol = feed.name.partition(":")[2] or feed.name
    replay = feed.name.startswith("replay:")
    stale_after = None if replay else max(3 * interval, pd.Timedelta(days=4))
    # the time between bars, which training should fit in (a replay as fast as it can: none)
    bar_time = (
        interval if not replay else pd.Timedelta(seconds=1 / args.speed) if args.speed else None
    )
    handlers = _setup_logging(args.quiet, args.log_file)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with Ledger(args.ledger) as ledger:
            trader = PaperTrader(
                strategy,
                lambda: SimulatedBroker(**settings, symbol=symbol),
                ledger,
                feed,
                params=params,
                stale_after=stale_after,
                warmup=args.warmup,
                model=args.model,
                interval=bar_time,
                progress=not args.quiet,
            )
            summary = trader.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger = logging.getLogger(_LOGGER)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(logging.NOTSET)  # as before the run: records propagate to the root
        logger.propagate = True
    how = "stopped" if summary.stopped else "feed ended"
    print(
        f"{how}: {summary.processed} new bars after {summary.replayed} recorded; last bar "
        f"{summary.last_time}; position {summary.units:g}; equity {summary.equity:,.2f}"
    )
    return 0


def _existing(path: str):
    """The ledger at ``path``, read-only: no lock, nothing written or created beside it."""
    from tradenn.live.ledger import Ledger

    if not Path(path).exists():
        raise UsageError(f"--ledger {path}: no such file")
    return Ledger(path, readonly=True)


@_disk_failure_exits_1
def _paper_status(args: argparse.Namespace) -> int:
    from tradenn.live.loop import trained_on

    with _existing(args.ledger) as ledger:
        ledger.check()
        info = ledger.run_info()
        last = ledger.last()
        if info is None or last is None:
            print(f"{args.ledger}: no bars recorded yet")
            return 0
        params = ", ".join(f"{k}={v}" for k, v in info.params.items()) or "none"
        print(f"run {info.run_id}: {info.strategy} ({params}) on {info.feed}")
        counts = ledger.counts()
        bars, fills = counts["bars"], counts["fills"]
        print(f"last bar #{last['seq']} {last['time']}; {bars} bars, {fills} fills")
        print(f"cash {last['cash']:,.2f}; equity {last['equity']:,.2f}")
        print("positions:")
        positions = ledger.positions()
        print(positions[["symbol", "units"]].to_string(index=False) if len(positions) else "  none")
        pending = ledger.orders("pending")
        print("open orders:")
        if len(pending):
            columns = ["id", "placed_time", "side", "type", "size", "limit_price", "stop_price"]
            print(pending[columns].to_string(index=False))
        else:
            print("  none")
        if last["target"] is not None:
            print(f"target exposure {last['target']:g}")
        models = ledger.models()
        if len(models):
            latest = models.iloc[-1]
            info = json.loads(latest["info"])
            print(
                f"model {latest['file']} (one of {len(models)}), in use since bar "
                f"#{latest['seq']} {latest['time']}: trained on {trained_on(info)}"
            )
    return 0


@_disk_failure_exits_1
def _paper_trades(args: argparse.Namespace) -> int:
    with _existing(args.ledger) as ledger:
        ledger.check()
        ledger.fills().to_csv(sys.stdout, index=False)
    return 0


@_disk_failure_exits_1
def _paper_verify(args: argparse.Namespace) -> int:
    from strategies import available, load_strategy
    from tradenn.live.broker import SimulatedBroker
    from tradenn.live.loop import verify

    with _existing(args.ledger) as ledger:
        info = ledger.run_info()
        if info is None:
            print(f"{args.ledger}: no bars recorded yet")
            return 0
        if args.strategy:
            strategy = load_strategy(args.strategy)
        else:
            found = [s for s in available().values() if s.__name__ == info.strategy]
            if not found:
                raise UsageError(
                    f"--ledger {args.ledger}: strategy {info.strategy} is not a ready strategy; "
                    "name its file with --strategy path/to/file.py:ClassName"
                )
            strategy = found[0]
        if strategy.__name__ != info.strategy:
            raise UsageError(
                f"--strategy {args.strategy}: the ledger was written by {info.strategy}, "
                f"not {strategy.__name__}"
            )
        settings = dict(info.settings)
        symbol = info.feed.partition(":")[2] or info.feed
        broker = SimulatedBroker(settings.pop("cash"), **settings, symbol=symbol)
        bars = ledger.counts()["bars"]
        difference = verify(strategy, broker, ledger)
    if difference is not None:
        print(f"{args.ledger}: DIFFERS from a replay of its {bars} bars: {difference}")
        return 1
    print(f"{args.ledger}: every order, fill and equity row of its {bars} bars equals a replay")
    return 0


def _add_ledger_option(p: argparse.ArgumentParser) -> None:
    """The required --ledger of every ``paper`` command."""
    p.add_argument("--ledger", required=True, metavar="FILE.db", help="the SQLite ledger")


def add_paper_commands(commands) -> None:
    """Add ``tradenn paper run|status|trades`` to the ``tradenn`` subcommands."""
    paper = commands.add_parser(
        "paper",
        help="paper-trade a strategy on a live or replayed feed",
        description="Run a backtest strategy, unchanged, on a feed with a simulated broker; "
        "every bar is recorded in an SQLite ledger, and a run resumes where it stopped.",
    )
    sub = paper.add_subparsers(
        dest="paper_command", metavar="COMMAND", required=True, parser_class=commands._parser_class
    )

    p = add_command(
        sub,
        "run",
        _paper_run,
        help="run STRATEGY on a feed, recording into a ledger (resumes an existing one)",
        description="Run STRATEGY on --feed, one bar at a time, with the backtester's fills and "
        "costs. Stops after the current bar on Ctrl-C or SIGTERM; a replay ends with its data.",
    )
    add_strategy_argument(p)
    p.add_argument(
        "--feed",
        required=True,
        metavar="SPEC",
        help="replay:SOURCE (bundled name or CSV) or yf:TICKER",
    )
    _add_ledger_option(p)
    add_cost_options(p)
    add_param_option(p, "NAME=VALUE", "set a strategy parameter (repeatable)")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.add_argument("--log-file", metavar="FILE", help="also log everything to FILE")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="N",
        help="replay pace passed to the feed (default 0: as fast as possible)",
    )
    p.add_argument("--interval", default="1d", help="bar size of a live feed (default 1d)")
    p.add_argument(
        "--warmup",
        type=int,
        default=0,
        metavar="N",
        help="load N bars of history from the feed's source before trading (a new ledger): "
        "the strategy trains on them and trades from the next bar",
    )
    p.add_argument(
        "--model",
        metavar="FILE.npz",
        help="start a model strategy from a model `tradenn train` saved",
    )

    p = add_command(
        sub, "status", _paper_status, help="positions, equity, last bar and open orders of a ledger"
    )
    _add_ledger_option(p)

    p = add_command(
        sub,
        "verify",
        _paper_verify,
        help="replay a ledger's bars through its strategy and compare every row",
        description="Replay every bar of the ledger through a fresh run of its strategy and "
        "compare every order, fill and equity row. Exit 0 when they are equal, 1 naming the "
        "first difference.",
    )
    _add_ledger_option(p)
    p.add_argument(
        "--strategy",
        metavar="STRATEGY",
        help="the strategy (name or file.py:ClassName) when it is not a ready strategy",
    )

    p = add_command(sub, "trades", _paper_trades, help="every fill of a ledger as CSV on stdout")
    _add_ledger_option(p)


def _train(args: argparse.Namespace) -> int:
    from strategies import load_strategy
    from tradenn import data
    from tradenn.account import Settings
    from tradenn.backtest.runner import Runner, parameter_values
    from tradenn.live.artifacts import save_artifact

    strategy = load_strategy(args.strategy)
    if not hasattr(strategy, "train"):
        raise UsageError(f"{args.strategy}: {strategy.__name__} trains no model")
    params = parameter_values(strategy, parse_params(args.param, strategy.parameters()))
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; name the model file")
    frame = data.load(args.data)
    runner = Runner(strategy, params, Settings(), frame, progress=not args.quiet)
    began = time.perf_counter()
    model, header, arrays = runner._call(runner.strategy.train, frame)
    took = time.perf_counter() - began
    header["source"] = args.data
    sha = save_artifact(out, model, header, arrays)
    print(
        f"trained {strategy.__name__} on {args.data}: {len(frame)} bars "
        f"{frame.index[0]} .. {frame.index[-1]} in {took:.1f} s -> {out} (sha256 {sha[:12]})"
    )
    return 0


def add_train_command(commands) -> None:
    """Add ``tradenn train`` to the ``tradenn`` subcommands."""
    p = add_command(
        commands,
        "train",
        _train,
        help="fit a model strategy's model on data and save it (for paper run --model)",
        description="Fit STRATEGY's model on --data as its walk-forward schedule would after "
        "the last bar (a forecaster on every sample whose outcome is known, an agent on the "
        "whole data) and save it with the strategy, parameters, data range and data hash; "
        "`tradenn paper run STRATEGY --model FILE` starts from it.",
    )
    add_strategy_argument(p)
    p.add_argument("--data", required=True, metavar="SOURCE", help="bundled name, CSV or yf:T")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to save the model")
    add_param_option(p, "NAME=VALUE", "set a strategy parameter (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    """``tradenn paper ARGS`` through the ``tradenn`` command (its errors and exit codes)."""
    from tradenn import cli

    return cli.main(["paper", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
