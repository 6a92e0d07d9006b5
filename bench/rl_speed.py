"""Reinforcement-learning throughput: MarketEnv steps per second, DQN training steps per second.

Each benchmark is a function ``bench_*(quick: bool) -> list[tuple[str, float, str]]`` returning
``(label, value, unit)`` rows, listed in :data:`BENCHMARKS`; ``main`` runs them in order and
prints one table. Run: ``python bench/rl_speed.py`` (``--quick`` for shorter runs).

``bench_env_steps``: the bundled S&P 500 with the default observation (30 bars x 6 features +
the position), unwrapped, random actions drawn beforehand (so sampling is not timed), episodes
over the whole series with ``reset()`` between them (timed). Best of three runs.

``bench_dqn_training``: ``DQNAgent.train`` on CartPole-v1 and on MarketEnv (SPX, default
observation) with the default (64, 64) network and batch 64: environment steps per second with a
gradient step every ``train_frequency`` steps (after a warm-up that builds the networks).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from tradenn.rl.env import MarketEnv


def _steps_per_second(env: MarketEnv, actions: list, repeat: int = 3) -> float:
    best = 0.0
    for _ in range(repeat):
        env.reset(seed=0)
        step, reset = env.step, env.reset
        start = time.perf_counter()
        for action in actions:  # sequential by nature: each step needs the previous account
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
        best = max(best, len(actions) / (time.perf_counter() - start))
    return best


def bench_env_steps(quick: bool = False) -> list[tuple[str, float, str]]:
    """MarketEnv.step() with random actions for each action kind."""
    count = 50_000 if quick else 300_000
    rng = np.random.default_rng(0)
    rows = []
    for kind in ("long_short", "long_only", "continuous"):
        env = MarketEnv("SPX", actions=kind)
        if kind == "continuous":
            draws = rng.uniform(-1, 1, size=(count, 1)).astype(np.float32)
            actions = list(draws)
        else:
            actions = rng.integers(0, env.action_space.n, size=count).tolist()
        rows.append((f"MarketEnv step, {kind}", _steps_per_second(env, actions), "steps/s"))
    env = MarketEnv("SPX", include_pnl=True, risk_penalty=0.1)
    actions = rng.integers(0, 3, size=count).tolist()
    speed = _steps_per_second(env, actions)
    rows.append(("MarketEnv step, long_short + pnl + risk penalty", speed, "steps/s"))
    return rows


def bench_dqn_training(quick: bool = False) -> list[tuple[str, float, str]]:
    """DQN training throughput (env step + a gradient step every ``train_frequency``)."""
    import gymnasium

    from tradenn.rl.dqn import DQNAgent

    steps = 5_000 if quick else 20_000
    rows = []
    for name, make in (
        ("CartPole-v1", lambda: gymnasium.make("CartPole-v1")),
        ("MarketEnv SPX", lambda: MarketEnv("SPX")),
    ):
        for frequency in (1, 4):
            env = make()
            agent = DQNAgent(
                env.observation_space,
                env.action_space,
                train_frequency=frequency,
                learning_starts=0,
                seed=0,
            )
            agent.train(env, 1_000)  # warms up: fills the buffer a little, first Adam steps
            start = time.perf_counter()
            agent.train(env, steps)
            speed = steps / (time.perf_counter() - start)
            rows.append((f"DQN train, {name}, train_frequency={frequency}", speed, "steps/s"))
    return rows


BENCHMARKS: list[Callable[[bool], list[tuple[str, float, str]]]] = [
    bench_env_steps,
    bench_dqn_training,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    print(f"{'benchmark':<50} {'value':>14}  unit")
    for benchmark in BENCHMARKS:
        for label, value, unit in benchmark(args.quick):
            print(f"{label:<50} {value:>14,.0f}  {unit}")


if __name__ == "__main__":
    main()
