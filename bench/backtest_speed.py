"""One backtest's speed against backtesting.py: an SMA 10/20 reversal on 200,000 bars.

The strategy is the bundled ``SmaCross`` (always in the market: long after the fast SMA crosses
above the slow one, short after it crosses below; the whole position reverses at the next
bar's open; whole units; no commission, so the account survives every reversal), on 200,000
synthetic one-minute GBM bars (``tradenn.data.gbm``, seed 0). Four runs, in one process:

* tradenn ``next()``: ``SmaCross`` itself, through ``Backtest(...).run()``.
* tradenn ``positions()``: the same rule as a target series (``SmaCrossVectorized`` below), run
  through the account kernel; the time includes proving ``positions()`` causal (two extra calls
  on the first third and two thirds of the data, ``check_positions=True``, the default).
* backtesting.py ``next()``: the same rule in its API (``position.close()`` then ``buy()``:
  ``SmaReverseBt`` of ``_reference_strategies.py``), ``Backtest(...).run()``.
* vectorbt: the crossings as long and short entries, shifted one bar and filled at the open
  (``Portfolio.from_signals(..., short_entries=..., price=open, size=inf, size_granularity=1)``)
  and its ``stats()``. Its first run compiles with numba (or loads numba's on-disk cache).

The tools run in turn, ``--repeat`` rounds (default 7); each time is a tool's best round and
covers the whole run: indicators,
the simulation, statistics and the trades table (``Result.orders`` is built when first read;
backtesting.py has no order table). The first run's time is printed too: with the optional
extra ``tradenn[fast]`` it includes importing numba and loading the compiled account loop (or
compiling it, the first time on a machine); ``TRADENN_JIT=0`` shows the CPython loop. Trades
and final equity are printed for each tool (the three should agree closely; backtesting.py
sizes an all-in order on cash, tradenn on equity after costs, so a unit here and there may
differ). Run:
``python bench/backtest_speed.py`` (``--bars N`` for another length, ``--repeat K``).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from importlib.metadata import version

os.environ.setdefault("TQDM_DISABLE", "1")

import backtesting
import numpy as np
import pandas as pd
from _reference_strategies import SmaReverseBt

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest
from tradenn.data import gbm
from tradenn.features import sma

CASH = 100_000
VECTORBT = "vectorbt from_signals()"
TARGET_VECTORIZED, TARGET_EVENTS = 100.0, 5.0  # the goals: times faster than backtesting.py


class SmaCrossVectorized(SmaCross):
    """``SmaCross`` as a target series: +1 from a cross above, -1 from a cross below."""

    def positions(self, data: pd.DataFrame) -> np.ndarray:
        close = data["Close"].to_numpy()
        above = np.sign(sma(close, self.fast) - sma(close, self.slow))
        before = np.concatenate(([np.nan], above[:-1]))
        crossed = (above != before) & ~np.isnan(before) & (above != 0) & (before != 0)
        return pd.Series(np.where(crossed, above, np.nan)).ffill().fillna(0.0).to_numpy()


def _numba() -> bool:
    from tradenn import targets

    return targets.compiled() is not None


def vectorbt_run(frame: pd.DataFrame):
    """The reversal in vectorbt: the portfolio and its statistics."""
    import vectorbt as vbt

    close, open_ = frame["Close"], frame["Open"]
    fast = pd.Series(sma(close.to_numpy(), 10), index=frame.index)
    slow = pd.Series(sma(close.to_numpy(), 20), index=frame.index)
    up = (fast > slow) & (fast.shift(1) < slow.shift(1))  # crossed above at this close
    down = (fast < slow) & (fast.shift(1) > slow.shift(1))
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries=up.shift(1, fill_value=False),  # traded at the next bar's open
        short_entries=down.shift(1, fill_value=False),
        price=open_,
        size=np.inf,
        size_granularity=1,  # whole units, as tradenn and backtesting.py here
        init_cash=CASH,
        freq="1min",
    )
    return portfolio, portfolio.stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000, help="bars (default 200,000)")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; each tool's best counts")
    args = parser.parse_args()
    # backtesting.py warns on every run that the last trade is still open (as intended here)
    warnings.filterwarnings("ignore", message="Some trades remain open")
    frame = gbm(args.bars, sigma=0.2, bars_per_year=252 * 390, freq="min", seed=0)
    print(
        f"{len(frame):,} one-minute GBM bars; os.cpu_count() = {os.cpu_count()}, load average "
        f"{os.getloadavg()[0]:.2f}; backtesting {version('backtesting')}, vectorbt "
        f"{version('vectorbt')}"
    )
    tools = {
        "tradenn next()": lambda: Backtest(frame, SmaCross, cash=CASH).run(),
        "tradenn positions()": lambda: Backtest(frame, SmaCrossVectorized, cash=CASH).run(),
        "backtesting.py next()": lambda: backtesting.Backtest(
            frame, SmaReverseBt, cash=CASH, finalize_trades=False
        ).run(),
    }
    # Round robin, one run of each tool per round: a slow spell of this shared machine then
    # slows every tool, not only the one that happened to be running. vectorbt runs after the
    # others: numba's threads keep spinning for a while after it and slow whatever runs next.
    times: dict[str, list[float]] = {label: [] for label in [*tools, VECTORBT]}
    outcome = {}
    for rounds, group in (
        (args.repeat, tools),
        (args.repeat, {VECTORBT: lambda: vectorbt_run(frame)}),
    ):
        for _ in range(rounds):
            for label, run in group.items():
                start = time.perf_counter()
                outcome[label] = run()
                times[label].append(time.perf_counter() - start)
    rows = []  # (label, best seconds, first run's seconds, trades, final equity)
    for label, found in outcome.items():
        if label.startswith("backtesting.py"):
            trades, final = len(found._trades), found["Equity Final [$]"]
        elif label.startswith("vectorbt"):  # it counts the trade still open; the others do not
            trades, final = found[0].trades.closed.count(), found[0].final_value()
        else:
            trades, final = len(found.trades), found.stats["Equity Final [$]"]
        rows.append((label, min(times[label]), times[label][0], trades, final))

    base = rows[2][1]  # backtesting.py
    print()
    print(f"{'tool':<24} {'seconds':>9} {'bars/s':>12} {'vs backtesting.py':>18} "
          f"{'first run [s]':>14} {'trades':>8} {'final equity':>14}")  # fmt: skip
    for label, seconds, first, trades, final in rows:
        print(
            f"{label:<24} {seconds:>9.3f} {len(frame) / seconds:>12,.0f} "
            f"{base / seconds:>17.1f}x {first:>14.3f} {trades:>8,} {final:>14,.2f}"
        )
    events, vectorized = base / rows[0][1], base / rows[1][1]
    jit = "numba" if _numba() else "CPython (numba not installed or TRADENN_JIT=0)"
    print(f"account loop for positions(): {jit}")
    for name, found, goal in (
        ("positions()", vectorized, TARGET_VECTORIZED),
        ("next()", events, TARGET_EVENTS),
    ):
        verdict = "met" if found >= goal else "missed"
        print(f"target: tradenn {name} >= {goal:g}x backtesting.py: {verdict} ({found:.1f}x)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other processes skew the times)")


if __name__ == "__main__":
    main()
