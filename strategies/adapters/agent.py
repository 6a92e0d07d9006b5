"""Reinforcement-learning strategies: agents trained on the past act on the future.

An :class:`AgentStrategy` trains an agent in a :class:`~tradenn.rl.MarketEnv` built from the bars
before each test block, then lets it act greedily, bar by bar, through the block. Blocks of
``retrain`` bars start ``train_size`` bars after the environment's first full window: the
schedule is anchored at the start of the data, the training environment of a block ends at the
block's first decision bar (every reward it holds is realized by then), and one continuous
rollout carries the position from block to block. The environment's observations are causal
(expanding normalization), so the backtester's look-ahead reruns on truncated data see the same
observations; trained agents are cached by a digest of their training data and parameters, so
those reruns cost a rollout, not a retraining.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.strategy import Strategy

__all__ = ["AgentStrategy"]


class AgentStrategy(Strategy):
    """Base class of the RL strategies: walk-forward training, greedy acting.

    Subclasses define :meth:`make_agent` and :meth:`train_agent`.

    Parameters (class attributes)
    -----------------------------
    features : "compact" or "default"
        "compact": two state variables, the log distance of the close from its ``trend``-bar
        average and the ``momentum``-bar log return; "default": the environment's default
        features (:data:`tradenn.rl.DEFAULT_FEATURES`). Both are z-scored causally by the
        environment.
    trend, momentum : int
        Windows of the compact features.
    window : int
        Bars of normalized features in each observation.
    actions : "long_short", "long_only" or "continuous"
        The environment's action space (see :class:`~tradenn.rl.MarketEnv`).
    fee_bps : float
        Cost per unit of position change in the training environment's reward (basis
        points); the backtest's own ``commission`` is what the result pays.
    episode_length : int
        Training episodes are random windows of this many bars (0: the whole training span).
    reward_scale : float
        Training rewards are multiplied by this (100: per-bar rewards in percent, a scale
        value-function learners train well on; the policy's ranking of actions is unchanged).
    train_size : int
        Bars (after the first full window) before the first decision.
    retrain : int
        Bars between retrainings.
    seed : int
        Seeds the agent and the training episodes.
    """

    features = "compact"
    trend = 20
    momentum = 5
    window = 1
    actions = "long_short"
    fee_bps = 5.0
    episode_length = 250
    reward_scale = 100.0
    train_size = 1000
    retrain = 500
    seed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._agents: dict[str, Any] = {}
        self._stats: dict[str, float] = {}
        self._stats_bars = -1

    # ------------------------------------------------------------------- to override

    def make_agent(self, env: Any) -> Any:
        """A fresh agent for ``env``'s spaces. Subclasses must override."""
        raise NotImplementedError(f"{type(self).__name__} must define make_agent(env)")

    def train_agent(self, agent: Any, env: Any) -> None:
        """Train ``agent`` in ``env`` (the past only). Subclasses must override."""
        raise NotImplementedError(f"{type(self).__name__} must define train_agent(agent, env)")

    def make_env(self, data: pd.DataFrame, *, training: bool) -> Any:
        """The environment over ``data``: random, reward-scaled episodes for training, one
        unwrapped pass for acting."""
        import gymnasium

        from tradenn.rl.env import MarketEnv

        if self.features not in ("compact", "default"):
            raise ValueError(
                f"{type(self).__name__}: features must be 'compact' or 'default', "
                f"got {self.features!r}"
            )
        table = None
        if self.features == "compact":
            log_close = np.log(data["Close"])
            table = pd.DataFrame(
                {
                    "trend_gap": log_close - log_close.rolling(self.trend).mean(),
                    "momentum": log_close.diff(self.momentum),
                },
                index=data.index,
            )
        length = self.episode_length if training and self.episode_length else None
        env = MarketEnv(
            data,
            window=self.window,
            features=table,
            actions=self.actions,
            fee_bps=self.fee_bps,
            episode_length=length,
        )
        if training and self.reward_scale != 1.0:
            scale = float(self.reward_scale)
            env = gymnasium.wrappers.TransformReward(env, lambda reward: reward * scale)
        return env

    # ------------------------------------------------------------------- positions

    def positions(self, data: pd.DataFrame) -> pd.Series:
        """Target exposure per bar: flat until the first test block, then the agents' actions."""
        for name in ("train_size", "retrain"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                owner = type(self).__name__
                raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")
        n = len(data)
        env = self.make_env(data, training=False)
        first = env.first_bar + self.train_size
        targets = np.zeros(n)
        if first > n - 1:
            if n < len(self.data.frame):  # a prefix (look-ahead check): no decision yet
                return pd.Series(targets, index=data.index, name="target")
            raise ValueError(
                f"{type(self).__name__}: {n} bars leave nothing to trade after the "
                f"{env.first_bar}-bar warm-up and train_size={self.train_size}"
            )
        # the last bar can be decided on, though no step follows it
        obs = env.reset(options={"start": first})[0] if first < n - 1 else env.observe(first)
        seconds, trained = 0.0, 0
        agent = None
        for t in range(first, n):
            if (t - first) % self.retrain == 0:
                agent, spent = self._agent_for(data.iloc[: t + 1])
                seconds += spent
                trained += 1
            action = agent.act(obs, greedy=True)
            targets[t] = env.target_of(action)
            if t + 1 < n:
                obs = env.step(action)[0]
        if n >= self._stats_bars:
            self._stats_bars = n
            self._stats = {"Retrainings": trained, "Training Time [s]": seconds}
        return pd.Series(targets, index=data.index, name="target")

    def diagnostics(self) -> dict[str, float]:
        """Retrainings and training time of the full run."""
        return dict(self._stats)

    def _agent_for(self, past: pd.DataFrame) -> tuple[Any, float]:
        """The agent trained on ``past`` (cached), and the seconds its training took."""
        h = hashlib.blake2b(digest_size=20)
        h.update(json.dumps(self.parameters_now(), sort_keys=True, default=str).encode())
        h.update(np.ascontiguousarray(past.to_numpy(dtype=np.float64)).data)
        key = h.hexdigest()
        if key in self._agents:
            return self._agents[key], 0.0
        began = time.perf_counter()
        env = self.make_env(past, training=True)
        env.reset(seed=self.seed)
        agent = self.make_agent(env)
        self.train_agent(agent, env)
        self._agents[key] = agent
        return agent, time.perf_counter() - began

    def parameters_now(self) -> dict[str, Any]:
        """The parameters with the values this instance runs with."""
        return {name: getattr(self, name) for name in self.parameters()}
