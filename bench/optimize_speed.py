"""Parameter sweep wall time: 100 combinations of sma_cross on the bundled S&P 500, 1 and 2 workers.

The grid is fast = 5, 10, ..., 50 by slow = 60, 80, ..., 240 (every pair has fast < slow, so all
100 run), maximizing the Sharpe ratio, through local worker processes. The time includes starting
the workers, the re-run of the best combination and the overfitting guards (deflated Sharpe ratio
and PBO). Run: ``python bench/optimize_speed.py``.
"""

from __future__ import annotations

import argparse
import time

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest
from tradenn.backtest.optimize import optimize
from tradenn.data import load

GRID = {"fast": range(5, 55, 5), "slow": range(60, 260, 20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting (best is shown)")
    args = parser.parse_args()
    backtest = Backtest(load("SPX"), SmaCross, commission=0.001)
    print(f"{len(backtest.data):,} bars, {10 * 10} combinations")
    header = ("workers", "wall [s]", "ms/run", "best", "Sharpe", "DSR", "PBO")
    widths = (7, 9, 7, 22, 7, 6, 6)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for jobs in (1, 2):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            sweep = optimize(backtest, jobs=jobs, **GRID)
            times.append(time.perf_counter() - start)
        assert len(sweep.table) == 100 and sweep.trials == 100
        wall = min(times)
        best = f"fast={sweep.best_params['fast']}, slow={sweep.best_params['slow']}"
        print(
            f"{jobs:>7} {wall:>9.2f} {1000 * wall / 100:>7.1f} {best:>22} "
            f"{sweep.best_stats['Sharpe Ratio']:>7.3f} {sweep.deflated_sharpe:>6.3f} "
            f"{sweep.pbo:>6.3f}"
        )


if __name__ == "__main__":
    main()
