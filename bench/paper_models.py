"""Paper trading of the model and agent strategies against their backtests (whole commands).

For each of the nine model and RL strategies, on the first 2,000 bars of the bundled S&P 500
(written to a temporary CSV and replayed), prints the wall time of:

1. the backtest: a fresh interpreter running what ``tradenn backtest STRATEGY --data FILE.csv
   --no-plot`` runs (``engine_for(strategy)(frame, strategy, ...).run(**params)``, the command's
   default cash and commission), printing the final equity and every fill;
2. ``tradenn paper run STRATEGY --feed replay:FILE.csv --ledger NEW.db --quiet``: the strategy
   trains on its walk-forward schedule as the bars arrive;
3. a restart: ``paper run`` on the first 1,999 bars into a second ledger, then again on all
   2,000 bars (the same file, rewritten) with that ledger; the second run is timed. It loads the
   last model instead of retraining and processes one bar.

and checks that the paper run's fills (``tradenn paper trades``: count, times, sides, prices) and
its final equity equal the backtest's exactly, for the fresh ledger and for the restarted one
(``same`` / ``DIFFERENT``). ``retrains`` is the number of models the fresh ledger recorded.

The parameters keep the whole run short (about 12 minutes on 2 cores): ``train_size=500``,
``retrain=250`` for all; 3 epochs for the recurrent, attention and TCN forecasters, 1 for the
transformer LM; 5,000 DQN timesteps; 50 Q-learning episodes. Run:
``python bench/paper_models.py`` (``--quick``: 600 bars and tiny models, a few minutes;
``--only lstm_forecast,dqn`` for some strategies).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout, not whichever tradenn is installed

import pandas as pd  # noqa: E402

from tradenn import data  # noqa: E402
from tradenn.live.ledger import Ledger  # noqa: E402

NETS = ("lstm_forecast", "gru_forecast", "attention_forecast", "tcn_forecast")

# What each strategy runs with (on top of the schedule), full and --quick.
FULL = {
    "bars": 2000,
    "schedule": {"train_size": 500, "retrain": 250},
    "extra": {
        **{name: {"epochs": 3} for name in NETS},
        "transformer_lm": {"epochs": 1},
        "dqn": {"timesteps": 5000},
        "q_learning": {"episodes": 50},
    },
}
QUICK = {
    "bars": 600,
    "schedule": {"train_size": 200, "retrain": 150},
    "extra": {
        **{name: {"epochs": 1} for name in NETS},
        "transformer_lm": {"epochs": 1, "d_model": 16, "num_layers": 1},
        "dqn": {"timesteps": 1000, "episode_length": 100},
        "q_learning": {"episodes": 10, "episode_length": 100},
    },
}
STRATEGIES = (
    "linreg_forecast",
    "knn_pattern",
    "lstm_forecast",
    "gru_forecast",
    "attention_forecast",
    "tcn_forecast",
    "transformer_lm",
    "q_learning",
    "dqn",
)

# The backtest, in a fresh interpreter as the command runs it: prints the final equity and the
# fills (time, side, price) as JSON.
BACKTEST = """
import json, sys
from strategies import load_strategy
from tradenn import data
from tradenn.backtest import engine_for
from tradenn.cli import parse_params

name, source, *pairs = sys.argv[1:]
strategy = load_strategy(name)
params = parse_params(pairs, strategy.parameters())
result = engine_for(strategy)(data.load(source), strategy, cash=10_000.0, commission=0.001).run(
    **params
)
filled = result.orders[result.orders["Status"] == "filled"]
fills = [
    [t.isoformat(), side, price]
    for t, side, price in zip(filled["FillTime"], filled["Side"], filled["FillPrice"])
]
print(json.dumps({"equity": float(result.equity.iloc[-1]), "fills": fills}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def timed(argv: list[str]) -> tuple[float, str]:
    """Wall time and stdout of ``python ARGV`` (a fresh interpreter)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=_env())
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"failed (exit {done.returncode}): {' '.join(argv[2:])}\n{done.stderr}")
    return seconds, done.stdout


def tradenn(*argv: str) -> list[str]:
    return ["-c", "from tradenn.console import run; run()", *argv]


def paper_result(ledger: Path) -> tuple[float, list[list], int]:
    """Final equity, fills (time, side, price; from ``tradenn paper trades``) and the number of
    models recorded in ``ledger``."""
    _, out = timed(tradenn("paper", "trades", "--ledger", str(ledger)))
    text = out.splitlines()
    fills = [[row["time"], row["side"], float(row["price"])] for row in csv.DictReader(text)]
    with Ledger(ledger, readonly=True) as book:
        return float(book.last()["equity"]), fills, len(book.models())


def verdict(backtest: dict, equity: float, fills: list[list]) -> str:
    if len(fills) != len(backtest["fills"]):
        return f"DIFFERENT ({len(fills)} fills, backtest {len(backtest['fills'])})"
    if fills != backtest["fills"]:
        pairs = zip(fills, backtest["fills"], strict=True)
        first = next(k for k, (mine, theirs) in enumerate(pairs) if mine != theirs)
        return f"DIFFERENT (fill #{first + 1})"
    if equity != backtest["equity"]:
        return f"DIFFERENT (equity {equity!r}, backtest {backtest['equity']!r})"
    return "same"


def bench(name: str, settings: dict, frame: pd.DataFrame, tmp: Path) -> dict:
    params = {**settings["schedule"], **settings["extra"].get(name, {})}
    pairs = [f"{k}={v}" for k, v in params.items()]
    options = [arg for pair in pairs for arg in ("--param", pair)]
    full, growing = tmp / f"{name}.csv", tmp / f"{name}-restart.csv"
    fresh, restarted = tmp / f"{name}.db", tmp / f"{name}-restart.db"
    frame.to_csv(full, index_label="Date")

    backtest_s, out = timed(["-c", BACKTEST, name, str(full), *pairs])
    backtest = json.loads(out)
    run = ["paper", "run", name, "--quiet", *options]
    paper_s, _ = timed(tradenn(*run, "--feed", f"replay:{full}", "--ledger", str(fresh)))
    equity, fills, models = paper_result(fresh)
    same = verdict(backtest, equity, fills)

    # restart: the same feed (one file) and ledger, one bar more the second time
    frame.iloc[:-1].to_csv(growing, index_label="Date")
    feed = ["--feed", f"replay:{growing}", "--ledger", str(restarted)]
    timed(tradenn(*run, *feed))
    frame.to_csv(growing, index_label="Date")
    restart_s, _ = timed(tradenn(*run, *feed))
    equity, fills, _ = paper_result(restarted)
    again = verdict(backtest, equity, fills)
    if again != "same":
        same = f"{same}; restarted ledger {again}"
    return {
        "strategy": name,
        "params": ", ".join(pairs),
        "backtest s": backtest_s,
        "paper s": paper_s,
        "ratio": paper_s / backtest_s,
        "restart s": restart_s,
        "retrains": models,
        "same": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 bars and tiny models")
    parser.add_argument(
        "--only", metavar="A,B", help="comma-separated strategies (default: all nine)"
    )
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(STRATEGIES)
    unknown = sorted(set(names) - set(STRATEGIES))
    if unknown:
        parser.error(f"--only: not one of the nine model strategies: {', '.join(unknown)}")
    frame = data.load("SPX").iloc[: settings["bars"]]
    print(
        f"SPX, first {len(frame):,} bars ({frame.index[0]:%Y-%m-%d} .. "
        f"{frame.index[-1]:%Y-%m-%d}), replayed; cash 10,000, commission 0.10%",
        flush=True,
    )
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = bench(name, settings, frame, Path(tmp))
            rows.append(row)
            print(
                f"  {name}: backtest {row['backtest s']:.1f} s, paper {row['paper s']:.1f} s, "
                f"restart {row['restart s']:.1f} s, {row['same']}",
                file=sys.stderr,
                flush=True,
            )
    table = pd.DataFrame(rows)
    formats = {
        "backtest s": "{:.2f}".format,
        "paper s": "{:.2f}".format,
        "ratio": "{:.1f}x".format,
        "restart s": "{:.2f}".format,
    }
    for column, fmt in formats.items():
        table[column] = table[column].map(fmt)
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in table.columns}
    left = ("strategy", "params", "same")
    line = " | ".join(c.ljust(widths[c]) if c in left else c.rjust(widths[c]) for c in table)
    print(line)
    print("-|-".join("-" * widths[c] for c in table.columns))
    for _, row in table.iterrows():
        print(
            " | ".join(
                str(row[c]).ljust(widths[c]) if c in left else str(row[c]).rjust(widths[c])
                for c in table.columns
            )
        )
    print(f"whole bench: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
