"""Training-step speed of tradenn.nn against PyTorch CPU on the same MLP.

Measures one training step (forward + backward + Adam update, float32) of an MLP
64-256-256-1 with ReLU on batches of 256, and prints the median over many steps after a
warmup. When torch is importable it times the same network and step in torch with the
same thread count and prints the ratio (tradenn time / torch time).

    python bench/nn_speed.py [--steps 2000] [--threads 2]

Thread counts: numpy's BLAS reads OPENBLAS_NUM_THREADS / OMP_NUM_THREADS at import, so
``--threads`` sets those before numpy is imported (2 matches this project's machines).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

SIZES = (64, 256, 256, 1)
BATCH = 256


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework (best kept)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads")
    return parser.parse_args()


def median_ms(step: Callable[[], object], steps: int, warmup: int) -> float:
    """Median wall time of ``step`` in milliseconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def tradenn_step(seed: int = 0) -> Callable[[], object]:
    import numpy as np

    from tradenn import nn

    nn.set_seed(seed)
    layers = [nn.Dense(units, activation="relu") for units in SIZES[1:-1]]
    model = nn.Sequential([*layers, nn.Dense(SIZES[-1])])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.standard_normal((BATCH, SIZES[-1])).astype(np.float32)
    loss, optimizer = nn.MeanSquaredError(), nn.Adam(1e-3)
    return lambda: model.train_on_batch(x, y, loss=loss, optimizer=optimizer)


def torch_step(threads: int, seed: int = 0) -> Callable[[], object] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(SIZES[:-1]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(SIZES[-2], SIZES[-1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    x, y = torch.randn(BATCH, SIZES[0]), torch.randn(BATCH, SIZES[-1])

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def main() -> None:
    args = parse_args()
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(args.threads))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    network = "-".join(map(str, SIZES))
    print(f"MLP {network}, batch {BATCH}, float32, forward + backward + Adam step")
    print(f"median of {args.steps} steps after {args.warmup} warmup, best of {args.repeats} runs")
    ours_step, torch_run = tradenn_step(), torch_step(args.threads)
    # alternate the two frameworks so both see the same background load; keep the best run
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(median_ms(ours_step, args.steps, args.warmup))
        if torch_run is not None:
            theirs.append(median_ms(torch_run, args.steps, args.warmup))
    print(f"tradenn.nn : {min(ours):.3f} ms/step")
    if torch_run is None:
        print("torch      : not installed (pip install torch==2.13.0 to compare)")
        return
    print(f"torch      : {min(theirs):.3f} ms/step ({args.threads} threads)")
    print(f"ratio      : {min(ours) / min(theirs):.2f}x torch (target <= 1.30)")


if __name__ == "__main__":
    main()
