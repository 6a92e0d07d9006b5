"""Paper-trading cost against the backtest, measured as a user runs them (whole commands).

Prints, in one run, the wall time of:

1. ``tradenn backtest sma_cross --no-plot`` on the bundled S&P 500 (5,031 daily bars);
2. ``tradenn paper run sma_cross --feed replay:SPX`` on the same bars, into a new ledger;
3. the restart of that finished ledger (``paper run`` again: nothing new to process);
4. ``paper run`` of 20,000 synthetic daily bars (a CSV written here),

each the best of ``--repeat`` runs, with the ratios the execution core aims at: paper <= 3x
the backtest, restart <= 1.5x, 20,000 bars <= 5x the 5,031-bar run. Run:
``python bench/paper_speed.py`` (``--repeat 1`` for a quick look).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tradenn.data import gbm


def timed(argv: list[str], repeat: int, fresh: Path | None = None) -> float:
    """Best wall time of ``tradenn ARGV`` (deleting the ledger ``fresh`` before each run)."""
    best = float("inf")
    for _ in range(repeat):
        if fresh is not None:
            for path in fresh.parent.glob(fresh.name + "*"):
                path.unlink()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "from tradenn.console import run; run()", *argv],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ledger = tmp / "spx.db"
        long_csv, long_ledger = tmp / "long.csv", tmp / "long.db"
        gbm(20_000, sigma=0.2, seed=1).to_csv(long_csv, index_label="Date")
        paper = ["paper", "run", "sma_cross", "--quiet", "--ledger"]
        backtest = timed(["backtest", "sma_cross", "--no-plot"], args.repeat)
        run = timed([*paper, str(ledger), "--feed", "replay:SPX"], args.repeat, fresh=ledger)
        restart = timed([*paper, str(ledger), "--feed", "replay:SPX"], args.repeat)
        long = timed(
            [*paper, str(long_ledger), "--feed", f"replay:{long_csv}"], args.repeat, long_ledger
        )
    rows = [
        ("backtest sma_cross, SPX 5,031 bars", backtest, None, None),
        ("paper run, same bars", run, run / backtest, "<= 3x the backtest"),
        ("restart of the finished ledger", restart, restart / backtest, "<= 1.5x the backtest"),
        ("paper run, 20,000 synthetic bars", long, long / run, "<= 5x the 5,031-bar run"),
    ]
    print(f"{'':38} {'wall [s]':>9} {'ratio':>7}  target")
    for label, seconds, ratio, target in rows:
        shown = "" if ratio is None else f"{ratio:.2f}x"
        print(f"{label:38} {seconds:9.2f} {shown:>7}  {target or ''}")


if __name__ == "__main__":
    main()
