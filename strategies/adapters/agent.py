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

Live (the paper loop), :meth:`AgentStrategy.target_now` decides the newest bar only: it trains
the block's agent at the block's first bar (on the same bars as the backtest), observes the
bar with the position it holds, and acts greedily, so a replayed paper run trades exactly as
the backtest. Each trained agent is saved through the loop's artifact store
(``LEDGER.models/block-NNNN.npz``); a restart loads the last one instead of retraining.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.backtest.strategy import Strategy
from tradenn.live.artifacts import (
    ArtifactError,
    check_artifact,
    data_digest,
    load_artifact,
    read_artifact,
)

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

    history_bars = "all"  # live: training and the causal normalization see every bar
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
        # Live (the paper loop): the current agent, its block, when it is due, what it holds.
        self._agent: Any = None
        self._block: int | None = None
        self._until: int | None = None
        self._held = 0.0
        self._record: dict[str, Any] | None = None
        self._load: tuple[str, Any] | None = None  # ("record", r) or ("file", path) to load

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

    def _check_parameters(self) -> None:
        for name in ("train_size", "retrain"):
            value = getattr(self, name)
            checks.positive_int(value, name, type(self).__name__)

    def positions(self, data: pd.DataFrame) -> pd.Series:
        """Target exposure per bar: flat until the first test block, then the agents' actions."""
        self._check_parameters()
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

    # ------------------------------------------------------------------- live

    def target_now(self, data: pd.DataFrame) -> float:
        """The target at ``data``'s last bar (live): the block's agent, trained (and saved to
        :attr:`store`) at the block's first bar, acting greedily on the bar's observation with
        the position it holds."""
        self._check_parameters()
        t = len(data) - 1
        try:
            env = self.make_env(data, training=False)
        except ValueError as error:
            if "too short" not in str(error) and "no bar with every feature" not in str(error):
                raise
            if self._load is not None or self._agent is not None:
                self.waiting = f"{type(self).__name__} is flat until its features have warmed up"
                return 0.0
            self.waiting = (
                f"{type(self).__name__} is flat until its first agent: at least "
                f"{self.train_size + self.window - t} more bars before it trains "
                f"(train_size={self.train_size} after the features' warm-up)"
            )
            return 0.0
        first = env.first_bar + self.train_size
        if self._load is not None:
            self._load_agent(env, t, first)
        if self._agent is None or t >= self._until:
            if t < first:
                self.waiting = (
                    f"{type(self).__name__} is flat until its first agent: {first - t} more "
                    f"bars before it trains (train_size={self.train_size})"
                )
                return 0.0
            block = (t - first) // self.retrain
            start = first + block * self.retrain
            past = data.iloc[: start + 1]
            began = time.perf_counter()
            self._agent = self._train(past)
            seconds = time.perf_counter() - began
            self._block, self._until = block, start + self.retrain
            if self.store is not None:
                header = self._header(past, block)
                self._record = self.store.save(
                    f"block-{block:04d}", self._agent, header, seconds=seconds
                )
        self.waiting = None
        obs = env.observe(t, position=self._held)
        target = env.target_of(self._agent.act(obs, greedy=True))
        self._held = target
        return target

    def _load_agent(self, env: Any, t: int, first: int) -> None:
        """Load the agent a snapshot or ``use_model`` named (needs the env for its class)."""
        kind, what = self._load
        self._load = None
        cls = type(self.make_agent(env))
        if kind == "record":
            self._agent = self.store.load(what, cls)[0]
            return
        self._agent, header, _ = load_artifact(what, cls)
        if self.store is not None:
            self._record = self.store.adopt(what, header)
        self._block = -1
        self._until = (
            first if t < first else first + ((t - first) // self.retrain + 1) * self.retrain
        )

    def _train(self, past: pd.DataFrame) -> Any:
        env = self.make_env(past, training=True)
        env.reset(seed=self.seed)
        agent = self.make_agent(env)
        self.train_agent(agent, env)
        return agent

    def _header(self, past: pd.DataFrame, block: int) -> dict[str, Any]:
        return {
            "strategy": type(self).__name__,
            "params": self.parameters_now(),
            "block": block,
            "data": {
                "first": str(past.index[0]),
                "last": str(past.index[-1]),
                "bars": len(past),
                "sha256": data_digest(past),
            },
        }

    def train(self, data: pd.DataFrame) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
        """Train the agent on all of ``data`` (``tradenn train``): the agent, its artifact
        header and arrays."""
        self._check_parameters()
        return self._train(data), self._header(data, -1), {}

    def use_model(self, path: str) -> dict[str, Any]:
        """Start from an agent ``tradenn train`` saved (same strategy and parameters, or an
        :class:`~tradenn.live.artifacts.ArtifactError`); returns its header. It acts until the
        schedule's next block begins."""
        header, _ = read_artifact(path)
        check_artifact(header, type(self).__name__, self.parameters_now(), path)
        self._load = ("file", path)
        return header

    def state(self) -> dict[str, Any]:
        """The live agent's block, when the next is due, the position it holds, its file."""
        if self._agent is None:
            return {}
        return {
            "block": self._block,
            "until": self._until,
            "held": self._held,
            "model": self._record,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` snapshot (the agent is loaded at the next bar)."""
        if not state:
            return
        if state["model"] is None or self.store is None:
            raise ArtifactError(f"{type(self).__name__}: the snapshot names no agent file")
        self._block, self._until, self._held = state["block"], state["until"], state["held"]
        self._record = state["model"]
        self._load = ("record", state["model"])

    def _agent_for(self, past: pd.DataFrame) -> tuple[Any, float]:
        """The agent trained on ``past`` (cached), and the seconds its training took."""
        h = hashlib.blake2b(digest_size=20)
        h.update(json.dumps(self.parameters_now(), sort_keys=True, default=str).encode())
        h.update(np.ascontiguousarray(past.to_numpy(dtype=np.float64)).data)
        key = h.hexdigest()
        if key in self._agents:
            return self._agents[key], 0.0
        began = time.perf_counter()
        agent = self._train(past)
        self._agents[key] = agent
        return agent, time.perf_counter() - began
