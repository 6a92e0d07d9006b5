"""Backtest throughput: SMA 10/20 crossover through next() and through positions().

Prints bars per second on 10^5 and 10^6 synthetic one-minute bars (GBM, so prices stay in a
realistic range), the number of trades, and the peak memory of the run (tracemalloc). No
commission, so the account survives every one of the ~55,000 reversals per 10^6 bars. Run:
``python bench/backtest_speed.py`` (add ``--quick`` for 10^5 bars only).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd

from strategies.sma_cross import SmaCross
from tradenn.backtest import Backtest, Strategy
from tradenn.data import gbm
from tradenn.features import sma


class SmaCrossVectorized(SmaCross):
    def positions(self, data: pd.DataFrame) -> np.ndarray:
        close = data["Close"].to_numpy()
        above = np.sign(sma(close, self.fast) - sma(close, self.slow))
        before = np.concatenate(([np.nan], above[:-1]))
        crossed = (above != before) & ~np.isnan(before) & (above != 0) & (before != 0)
        return pd.Series(np.where(crossed, above, np.nan)).ffill().fillna(0.0).to_numpy()


def measure(frame: pd.DataFrame, strategy: type[Strategy], repeat: int) -> tuple[float, int]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = Backtest(frame, strategy).run()
        times.append(time.perf_counter() - start)
    return len(frame) / min(times), len(result.trades)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 bars only")
    args = parser.parse_args()
    sizes = [10**5] if args.quick else [10**5, 10**6]
    print(f"{'bars':>9} {'path':>11} {'bars/s':>13} {'trades':>8}")
    for n in sizes:
        frame = gbm(n, sigma=0.2, bars_per_year=252 * 390, freq="min", seed=0)
        for label, strategy in (("next()", SmaCross), ("positions()", SmaCrossVectorized)):
            speed, trades = measure(frame, strategy, repeat=3 if n <= 10**5 else 1)
            print(f"{n:>9,} {label:>11} {speed:>13,.0f} {trades:>8,}")
    n = sizes[-1]
    frame = gbm(n, sigma=0.2, bars_per_year=252 * 390, freq="min", seed=0)
    for label, strategy in (("next()", SmaCross), ("positions()", SmaCrossVectorized)):
        tracemalloc.start()
        Backtest(frame, strategy).run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak memory {label:>11} on {n:,} bars: {peak / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
