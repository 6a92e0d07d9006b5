"""Sweep wall time against vectorbt and backtesting.py: 1,590 SMA combinations on the S&P 500.

One rule, three tools, on the bundled S&P 500 (5,031 daily bars): long with 100% of equity
while SMA(fast) > SMA(slow) at the close, flat otherwise; fills at the next bar's open;
commission 10 bps per fill; fractional units; cash 10,000. The grid is fast = 5..50 (step 1) by
slow = 20..200 (step 5), only fast < slow: 1,590 combinations, the Sharpe ratio of each.

* tradenn: a plain-pandas ``positions()`` strategy through ``Backtest.optimize``, with 1 and 2
  local workers. The time includes starting the workers, the re-run of the best combination and
  the overfitting guards (deflated Sharpe ratio and PBO, printed).
* vectorbt: ``MA.run`` for the fast and the slow window of every pair (explicit lists, so
  exactly the 1,590 pairs), the boolean state shifted one bar as entries (exits: its negation),
  ``Portfolio.from_signals(price=open, size=inf, fees=0.001)``, ``sharpe_ratio()``. The first
  call includes numba compilation (or loading numba's on-disk cache); the second (warm) call is
  vectorbt's figure. Single process.
* backtesting.py: ``FractionalBacktest`` (its 0.6 way of trading fractional units) with a
  ``next()`` strategy, ``optimize(maximize="Sharpe Ratio")`` on its default process pool (one
  process per core). All 1,590 take minutes, so by default a seeded random subset
  (``max_tries=80, random_state=0``; it samples each combination with probability 80/1,590, so
  about 80) runs and the time is also scaled to 1,590. Its Sharpe ratio is its own definition
  (geometric annualized return over annualized volatility), not comparable with the others.

Agreement: tradenn's and vectorbt's Sharpe ratios (both 252 bars a year, ddof=1) for tradenn's
best pair, and how many of the 1,590 have the same sign in both; printed, never asserted.
Run: ``python bench/sweep_speed.py`` (add ``--full`` for all 1,590 in backtesting.py).
"""

from __future__ import annotations

import argparse
import os
import time
from importlib.metadata import version

# backtesting.py draws a progress bar per run and per sweep (tqdm); keep the output a table
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pandas as pd
from _reference_strategies import SmaCrossBt
from backtesting.lib import FractionalBacktest

from tradenn.backtest import Backtest, Strategy
from tradenn.data import load

FAST = range(5, 51)
SLOW = range(20, 201, 5)
PAIRS = [(fast, slow) for fast in FAST for slow in SLOW if fast < slow]
COMMISSION = 0.001
CASH = 10_000
SUBSET = 80  # backtesting.py combinations run by default (max_tries)


class SmaLong(Strategy):
    """Long while SMA(fast) > SMA(slow) at the close, flat otherwise."""

    fast = 10
    slow = 20

    def positions(self, data: pd.DataFrame) -> pd.Series:
        close = data["Close"]
        return (close.rolling(self.fast).mean() > close.rolling(self.slow).mean()).astype(float)


class SmaLongBt(SmaCrossBt):
    """The same rule in backtesting.py (module level: its process pool pickles the class).

    It takes only ``init`` from the README crossover (``sma1`` = SMA(n1), ``sma2`` = SMA(n2),
    so the sweep's ``n1``/``n2`` are tradenn's ``fast``/``slow``) and trades long-only."""

    def next(self):
        if self.sma1[-1] > self.sma2[-1]:
            if not self.position:
                self.buy()  # size defaults to all available cash (~100% of equity)
        elif self.position:
            self.position.close()


def sweep_tradenn(data: pd.DataFrame, jobs: int):
    backtest = Backtest(data, SmaLong, commission=COMMISSION, fractional=True, cash=CASH)
    start = time.perf_counter()
    sweep = backtest.optimize(
        fast=FAST, slow=SLOW, constraint=lambda p: p["fast"] < p["slow"], jobs=jobs
    )
    wall = time.perf_counter() - start
    assert len(sweep.table) == len(PAIRS) and sweep.trials == len(PAIRS)
    return wall, sweep


def sweep_vectorbt(data: pd.DataFrame) -> pd.Series:
    """Sharpe ratio of every pair, indexed by (fast_window, slow_window)."""
    import vectorbt as vbt

    close, open_ = data["Close"], data["Open"]
    fast = vbt.MA.run(close, window=[p[0] for p in PAIRS], short_name="fast")
    slow = vbt.MA.run(close, window=[p[1] for p in PAIRS], short_name="slow")
    # the state decided at the close of bar t is traded at the open of bar t + 1
    long = fast.ma_above(slow).vbt.fshift(1, fill_value=False).astype(bool)
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries=long,
        exits=~long,
        price=open_,
        size=np.inf,
        fees=COMMISSION,
        init_cash=CASH,
        freq="1D",
    )
    return portfolio.sharpe_ratio()


def sweep_backtesting(data: pd.DataFrame, full: bool):
    frame = data[["Open", "High", "Low", "Close", "Volume"]]
    backtest = FractionalBacktest(
        frame,
        SmaLongBt,
        commission=COMMISSION,
        cash=CASH,
        trade_on_close=False,
        finalize_trades=True,
    )
    subset = {} if full else {"max_tries": SUBSET, "random_state": 0}
    start = time.perf_counter()
    stats, heatmap = backtest.optimize(
        n1=FAST,
        n2=SLOW,
        constraint=lambda p: p.n1 < p.n2,
        maximize="Sharpe Ratio",
        return_heatmap=True,
        **subset,
    )
    wall = time.perf_counter() - start
    return wall, len(heatmap), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help=f"all {len(PAIRS):,} in backtesting.py (minutes)"
    )
    args = parser.parse_args()
    assert len(PAIRS) == 1590
    data = load("SPX")
    n = len(PAIRS)
    print(
        f"{len(data):,} bars, {n:,} combinations, os.cpu_count() = {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}; "
        f"vectorbt {version('vectorbt')}, backtesting {version('backtesting')}"
    )
    rows = []  # (tool, wall, combinations run, best, Sharpe)

    # ------------------------------------------------------------------ tradenn
    sweeps = {}
    for jobs in (1, 2):
        wall, sweep = sweep_tradenn(data, jobs)
        sweeps[jobs] = sweep
        best = (sweep.best_params["fast"], sweep.best_params["slow"])
        label = f"tradenn, {jobs} worker{'s' * (jobs > 1)}"
        rows.append((label, wall, n, best, sweep.best_stats["Sharpe Ratio"]))
        print(
            f"tradenn jobs={jobs}: {wall:.2f} s, best {best}, DSR {sweep.deflated_sharpe:.3f}, "
            f"PBO {sweep.pbo:.3f}"
        )
    sweep = sweeps[2]
    tradenn_sharpe = sweep.table.set_index(["fast", "slow"])["Sharpe Ratio"]

    # ------------------------------------------------------------------ vectorbt
    import vectorbt as vbt  # imported before timing: the import is not part of the sweep

    vbt.settings.returns["year_freq"] = "252 days"  # annualize as tradenn does (sqrt 252)
    start = time.perf_counter()
    sweep_vectorbt(data)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    vbt_sharpe = sweep_vectorbt(data)
    warm = time.perf_counter() - start
    assert len(vbt_sharpe) == n
    vbt_best = vbt_sharpe.idxmax()
    rows.append(("vectorbt (warm)", warm, n, vbt_best, vbt_sharpe.max()))
    print(
        f"vectorbt: first call {cold:.2f} s (numba compile or cache load: {cold - warm:.2f} s), "
        f"warm {warm:.2f} s"
    )

    # ------------------------------------------------------------------ backtesting.py
    wall, tried, stats = sweep_backtesting(data, args.full)
    bt_best = (int(stats._strategy.n1), int(stats._strategy.n2))
    if tried == n:
        rows.append(("backtesting.py", wall, n, bt_best, stats["Sharpe Ratio"]))
    else:
        label = f"backtesting.py, measured on {tried}"
        rows.append((label, wall, tried, bt_best, stats["Sharpe Ratio"]))
        label = f"backtesting.py, scaled from {tried} of {n:,}"
        rows.append((label, wall * n / tried, n, None, np.nan))
    print(
        f"backtesting.py: {tried:,} of {n:,} combinations in {wall:.2f} s "
        f"({os.cpu_count()} processes); best of those {bt_best}, Sharpe {stats['Sharpe Ratio']:.3f}"
        " (its own definition)"
    )

    # ------------------------------------------------------------------ agreement
    best = (sweep.best_params["fast"], sweep.best_params["slow"])
    ours, theirs = tradenn_sharpe[best], vbt_sharpe[best]
    joined = pd.concat([tradenn_sharpe, vbt_sharpe.rename_axis(["fast", "slow"])], axis=1)
    a, b = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy()
    same_sign = int(np.sum(np.sign(a) == np.sign(b)))
    print(
        f"agreement at tradenn's best {best}: Sharpe tradenn {ours:.4f}, vectorbt {theirs:.4f} "
        f"(ratio {ours / theirs:.4f}, difference {ours - theirs:+.4f}; both sqrt(252), ddof=1); "
        f"same sign in {same_sign:,} of {n:,}; largest |difference| {np.nanmax(np.abs(a - b)):.4f}"
    )

    # ------------------------------------------------------------------ table
    print()
    header = ("tool", "wall [s]", "per comb. [ms]", "vs vectorbt", "best (fast, slow)", "Sharpe")
    widths = (40, 9, 14, 11, 17, 7)
    print(
        f"{header[0]:<{widths[0]}} "
        + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], widths[1:], strict=True))
    )
    for tool, wall, runs, pair, sharpe in rows:
        shown = "-" if pair is None else f"({pair[0]}, {pair[1]})"
        sharpe_text = "-" if np.isnan(sharpe) else f"{sharpe:.3f}"
        relative = f"{wall / warm:.2f}x" if runs == n else "-"  # a subset is not the sweep
        print(
            f"{tool:<40} {wall:>9.2f} {1000 * wall / runs:>14.2f} {relative:>11} "
            f"{shown:>17} {sharpe_text:>7}"
        )
    fastest = min(row[1] for row in rows if row[0].startswith("tradenn"))
    verdict = "met" if fastest <= warm else "missed"
    print(f"target: tradenn <= vectorbt (warm): {verdict} ({fastest:.2f} s vs {warm:.2f} s)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other processes skew the times)")


if __name__ == "__main__":
    main()
