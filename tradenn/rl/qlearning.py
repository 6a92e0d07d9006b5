"""Tabular Q-learning for gymnasium environments, and a :class:`Discretizer` for Box observations.

::

    import gymnasium as gym
    from tradenn.rl import Discretizer, LinearSchedule, QLearningAgent

    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space,
                           epsilon=LinearSchedule(1.0, 0.05, 5_000), seed=0)
    history = agent.train(env, timesteps=20_000)      # a TrainingHistory
    agent.evaluate(env, episodes=100, seed=1)         # (mean, std) of the greedy return
    agent.act(obs)                                    # greedy action
    agent.save("frozen_lake.npz"); QLearningAgent.load("frozen_lake.npz")

    cart = gym.make("CartPole-v1")
    bounds = Discretizer(bins=[1, 1, 6, 6], low=[-2.4, -3, -0.21, -3], high=[2.4, 3, 0.21, 3])
    agent = QLearningAgent(cart.observation_space, cart.action_space, discretizer=bounds)

The agent follows the protocol of :mod:`tradenn.rl.agent` (built from the spaces, trained by
environment steps, ``evaluate`` returning ``(mean, std)``).

The update
----------
After each transition ``(s, a, r, s')`` (Watkins' Q-learning, off-policy)::

    target  = r + gamma * max_a' Q[s', a'] * (1 - terminated)
    Q[s, a] += learning_rate * (target - Q[s, a])

``terminated`` and ``truncated`` mean different things (gymnasium >= 0.26): a *terminated*
episode reached a terminal state of the MDP (a hole or the goal), whose value is 0, so
the target is ``r`` alone. A *truncated* episode was cut off from outside (a ``TimeLimit``
wrapper): ``s'`` is an ordinary state whose value is not 0, so the target still
bootstraps from ``max Q[s']``. Both end the episode.

Exploration is epsilon-greedy: with probability ``epsilon`` a uniformly random action,
otherwise the greedy one. The greedy action is ``argmax_a Q[s, a]`` with ties to the lowest
action, everywhere: in :meth:`~QLearningAgent.act`, in exploration and in
:meth:`~QLearningAgent.evaluate`, so the policy evaluated is the policy deployed. (An
untrained table ties everywhere; the random half of epsilon-greedy is what explores it.)
All randomness comes from the agent's own generator, seeded by ``seed``, so a seeded agent
trained on an environment is exactly reproducible.

``learning_rate`` and ``epsilon`` are numbers or :mod:`tradenn.nn.schedules` schedules,
evaluated at ``num_timesteps``, the agent's count of training steps before the step; the
count survives ``save``/``load`` and further ``train`` calls continue the schedules.

States
------
``Discrete(n, start)`` observations index the table directly (``obs - start``);
``MultiDiscrete`` and ``Tuple`` of ``Discrete`` spaces are numbered in C order (the
last component fastest), like ``numpy.ravel_multi_index``. ``Box`` observations (of any
shape, flattened) need a :class:`Discretizer`. The action space must be ``Discrete``.
The Q-table is a dense float64 array ``(n_states, n_actions)``; a table above
``max_table_size`` entries is refused before it is allocated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from tradenn import checks
from tradenn.nn import schedules, serialization
from tradenn.nn.schedules import Schedule, as_schedule

from .agent import Agent

__all__ = ["Discretizer", "QLearningAgent"]

_STRATEGIES = ("uniform", "quantile")


# --------------------------------------------------------------------------- discretizer


class Discretizer:
    """Maps a continuous observation vector to one integer state id.

    Each feature ``j`` is cut into ``bins[j]`` intervals by ``bins[j] - 1`` increasing
    inner edges ``e_1 <= ... <= e_{b-1}``; its bin is the number of edges at or below the
    value (so ``x < e_1`` is bin 0, ``x >= e_{b-1}`` the last bin: values outside the range
    fall into the end bins). The state id combines the feature bins in C order::

        state = sum_j bin_j * prod_{k > j} bins[k]        in [0, prod(bins))

    Edges come from one of two strategies:

    * ``"uniform"``: equal-width bins over ``[low_j, high_j]``. Bounds not given are taken
      from the Box space (:meth:`fit_space`, which the agent calls) or from the minimum and
      maximum of sample observations (:meth:`fit`).
    * ``"quantile"``: edges at the ``k / bins[j]`` quantiles of sample observations
      (:meth:`fit`), so each bin holds about the same share of the samples. Repeated
      sample values can make edges coincide; the bins between them are then never used.

    Parameters
    ----------
    bins : int or sequence of int
        Bins per feature (>= 1; a feature with 1 bin is ignored); one int for all features.
    low, high : float or sequence of float, optional
        Finite bounds of the uniform bins (per feature, or one for all).
    strategy : {"uniform", "quantile"}
        How the edges are placed.

    Attributes
    ----------
    edges_ : list of ndarray
        Inner edges of each feature (``bins[j] - 1`` values), once fitted.
    """

    def __init__(
        self,
        bins: int | Sequence[int] = 10,
        low: float | Sequence[float] | None = None,
        high: float | Sequence[float] | None = None,
        strategy: str = "uniform",
    ) -> None:
        owner = type(self).__name__
        if isinstance(bins, (list, tuple, np.ndarray)):
            if len(bins) == 0:
                raise ValueError(f"{owner}: bins must be a positive integer or a list of them")
            self.bins: int | list[int] = [checks.positive_int(b, "bins", owner) for b in bins]
        else:
            self.bins = checks.positive_int(bins, "bins", owner)
        self.low = self._bound(low, "low")
        self.high = self._bound(high, "high")
        if strategy not in _STRATEGIES:
            raise ValueError(f"{owner}: strategy must be 'uniform' or 'quantile', got {strategy!r}")
        if strategy == "quantile" and (low is not None or high is not None):
            raise ValueError(f"{owner}: low/high apply to strategy='uniform' only")
        self.strategy = strategy
        self.edges_: list[np.ndarray] | None = None

    def _bound(self, value: Any, name: str) -> float | list[float] | None:
        if value is None:
            return None
        owner = type(self).__name__
        if isinstance(value, (list, tuple, np.ndarray)):
            if np.size(value) == 0:
                raise ValueError(f"{owner}: {name} must be finite numbers, got {value!r}")
            return [checks.number(v, name, owner) for v in np.ravel(np.asarray(value, object))]
        return checks.number(value, name, owner)

    # ------------------------------------------------------------------ fitting

    @property
    def fitted(self) -> bool:
        """Whether the edges are known."""
        return self.edges_ is not None

    @property
    def n_features(self) -> int:
        """Number of features (once fitted)."""
        self._check_fitted("n_features")
        return len(self.edges_)

    @property
    def n_states(self) -> int:
        """Number of state ids, ``prod(bins)`` (once fitted)."""
        self._check_fitted("n_states")
        return math.prod(len(edges) + 1 for edges in self.edges_)

    def _per_feature(self, value: Any, n_features: int, name: str) -> list | None:
        if value is None or not isinstance(value, list):
            return None if value is None else [value] * n_features
        if len(value) != n_features:
            raise ValueError(
                f"{type(self).__name__}: {name} has {len(value)} entries for {n_features} features"
            )
        return value

    def _set_uniform(self, low: np.ndarray, high: np.ndarray) -> Discretizer:
        bins = self._per_feature(self.bins, len(low), "bins")
        if not np.all(low < high):
            j = int(np.flatnonzero(~(low < high))[0])
            raise ValueError(
                f"{type(self).__name__}: feature {j} needs low < high, got {low[j]} and {high[j]}"
            )
        self.edges_ = [
            lo + (hi - lo) * np.arange(1, b) / b for lo, hi, b in zip(low, high, bins, strict=True)
        ]
        self._compile()
        return self

    def fit_space(self, space: spaces.Box) -> Discretizer:
        """Uniform edges over the given bounds, or else the Box's own (finite) bounds."""
        owner = type(self).__name__
        if not isinstance(space, spaces.Box):
            raise ValueError(f"{owner}: fit_space needs a gymnasium Box space, got {space!r}")
        if self.strategy == "quantile":
            raise ValueError(f"{owner}: strategy='quantile' must be fitted on sample observations")
        n = int(np.prod(space.shape))
        low = self._per_feature(self.low, n, "low") or space.low.astype(np.float64).ravel()
        high = self._per_feature(self.high, n, "high") or space.high.astype(np.float64).ravel()
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        unbounded = ~(np.isfinite(low) & np.isfinite(high))
        if unbounded.any():
            raise ValueError(
                f"{owner}: feature {int(np.flatnonzero(unbounded)[0])} of the Box is unbounded; "
                "give low/high or fit on sample observations"
            )
        return self._set_uniform(low, high)

    def fit(self, observations: Any) -> Discretizer:
        """Place the edges from sample observations ``(N, F)``: their quantiles
        (``"quantile"``) or, for bounds not given, their range (``"uniform"``)."""
        owner = type(self).__name__
        x = np.asarray(observations, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
            raise ValueError(f"{owner}: fit needs observations (N >= 2, F), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{owner}: fit observations must be finite")
        n = x.shape[1]
        if self.strategy == "uniform":
            low = self._per_feature(self.low, n, "low") or x.min(axis=0)
            high = self._per_feature(self.high, n, "high") or x.max(axis=0)
            return self._set_uniform(np.asarray(low, float), np.asarray(high, float))
        bins = self._per_feature(self.bins, n, "bins")
        self.edges_ = [
            np.quantile(x[:, j], np.arange(1, b) / b) if b > 1 else np.empty(0)
            for j, b in enumerate(bins)
        ]
        self._compile()
        return self

    def _compile(self) -> None:
        """The padded edge matrix ``(F, max_edges)`` (padding ``+inf`` is never reached) and
        the C-order strides that turn per-feature bins into one state id."""
        width = max(len(edges) for edges in self.edges_)
        self._edges = np.full((len(self.edges_), width), np.inf)
        for j, edges in enumerate(self.edges_):
            self._edges[j, : len(edges)] = edges
        sizes = [len(edges) + 1 for edges in self.edges_]
        self._strides = np.array(
            [math.prod(sizes[j + 1 :]) for j in range(len(sizes))], dtype=np.int64
        )

    # ------------------------------------------------------------------ transforming

    def transform(self, observation: Any) -> int:
        """State id of one observation ``(F,)``."""
        x = np.asarray(observation, dtype=np.float64)
        self._check_input(x, 1)
        return int((x[:, None] >= self._edges).sum(axis=1) @ self._strides)

    def transform_batch(self, observations: Any) -> np.ndarray:
        """State ids ``(N,)`` (int64) of observations ``(N, F)``."""
        x = np.asarray(observations, dtype=np.float64)
        self._check_input(x, 2)
        return (x[:, :, None] >= self._edges).sum(axis=2) @ self._strides

    def _check_input(self, x: np.ndarray, ndim: int) -> None:
        owner = type(self).__name__
        self._check_fitted("transform")
        if x.ndim != ndim or x.shape[-1] != len(self._edges):
            expected = "(F,)" if ndim == 1 else "(N, F)"
            raise ValueError(
                f"{owner}: expected observations {expected} with F={len(self._edges)}, "
                f"got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"{owner}: observations must be finite, got {x}")

    def _check_fitted(self, what: str) -> None:
        if self.edges_ is None:
            raise ValueError(
                f"{type(self).__name__}: call fit(observations) or fit_space(space) before {what}"
            )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable); the edges are saved separately."""
        return {"bins": self.bins, "low": self.low, "high": self.high, "strategy": self.strategy}

    def __repr__(self) -> str:
        state = f"{self.n_states} states" if self.fitted else "not fitted"
        return f"Discretizer(bins={self.bins!r}, strategy={self.strategy!r}, {state})"


# --------------------------------------------------------------------------- spaces


def _describe_space(space: spaces.Space, role: str) -> dict[str, Any]:
    """JSON description of a supported space (a Box's bounds are saved as arrays)."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if role == "action":
        raise ValueError(f"QLearningAgent: action_space must be Discrete, got {space!r}")
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
        }
    if isinstance(space, spaces.Tuple) and all(isinstance(s, spaces.Discrete) for s in space):
        return {"type": "Tuple", "spaces": [_describe_space(s, role) for s in space]}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    raise ValueError(
        "QLearningAgent: observation_space must be Discrete, MultiDiscrete, a Tuple of "
        f"Discrete or Box, got {space!r}"
    )


def _build_space(description: dict[str, Any], low: Any = None, high: Any = None) -> spaces.Space:
    kind = description["type"]
    if kind == "Discrete":
        return spaces.Discrete(description["n"], start=description["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(description["nvec"], start=description["start"])
    if kind == "Tuple":
        return spaces.Tuple([_build_space(item) for item in description["spaces"]])
    if kind == "Box":
        shape = tuple(description["shape"])
        return spaces.Box(low.reshape(shape), high.reshape(shape), dtype=description["dtype"])
    raise ValueError(f"unknown space type {kind!r}")


# --------------------------------------------------------------------------- agent


class QLearningAgent(Agent):
    """Tabular Q-learning with epsilon-greedy exploration (see the module notes).

    With ``s`` the state id of an observation (a :class:`Discretizer` bin for Box spaces),
    ``t`` the number of training steps before this one (``num_timesteps``)::

        y        = r   (terminated)   or   r + gamma max_a' Q[s', a']   (otherwise)
        Q[s, a] += learning_rate(t) (y - Q[s, a])
        a        = uniform with probability epsilon(t), else argmax_a Q[s, a] (lowest on ties)

    See docs/rl.md, section "Q-learning: the maths".

    Parameters
    ----------
    observation_space : gymnasium Space
        ``Discrete``, ``MultiDiscrete``, ``Tuple`` of ``Discrete``, or ``Box`` (with a
        ``discretizer``).
    action_space : gymnasium.spaces.Discrete
        The actions; :meth:`act` returns values of this space (``start`` included).
    discretizer : Discretizer, optional
        Required for Box observations. Fitted already (:meth:`Discretizer.fit` on sample
        observations) or fitted here on the Box (uniform bins over its bounds).
    learning_rate : float or Schedule
        Step size in (0, 1].
    gamma : float
        Discount factor in [0, 1].
    epsilon : float or Schedule
        Exploration probability in [0, 1], e.g. ``LinearSchedule(1.0, 0.05, 10_000)``.
    initial_q : float
        Initial value of every Q-table entry (a high value explores optimistically).
    max_table_size : int
        Largest Q-table (``n_states * n_actions`` entries) the agent allocates.
    seed : int, optional
        Seeds the agent's generator (exploration) and the first reset of its first
        :meth:`train`.

    Attributes
    ----------
    q_table : ndarray (n_states, n_actions)
        The action values.
    num_timesteps : int
        Training steps so far (the schedules' clock).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        *,
        discretizer: Discretizer | None = None,
        learning_rate: float | Schedule = 0.1,
        gamma: float = 0.99,
        epsilon: float | Schedule = 0.1,
        initial_q: float = 0.0,
        max_table_size: int = 10_000_000,
        seed: int | None = 0,
    ) -> None:
        owner = type(self).__name__
        self._observation_description = _describe_space(observation_space, "observation")
        self._action_description = _describe_space(action_space, "action")
        self.learning_rate = as_schedule(learning_rate, "learning_rate", owner)
        epsilon_schedule = as_schedule(epsilon, "epsilon", owner)
        if not isinstance(learning_rate, Schedule):
            checks.number(learning_rate, "learning_rate", owner, low=0, high=1, low_open=True)
        if not isinstance(epsilon, Schedule):
            checks.number(epsilon, "epsilon", owner, low=0, high=1)
        gamma = checks.number(gamma, "gamma", owner, low=0, high=1)
        initial_q = checks.number(initial_q, "initial_q", owner)
        max_table_size = checks.positive_int(max_table_size, "max_table_size", owner)
        seed = checks.seed(seed, owner)
        super().__init__(observation_space, action_space, epsilon_schedule, seed, env_seed=seed)
        self.gamma = float(gamma)
        self.initial_q = float(initial_q)
        self.max_table_size = int(max_table_size)
        self.discretizer = discretizer
        self._encode, n_states = self._make_encoder(observation_space, discretizer)
        entries = n_states * self.n_actions
        if entries > self.max_table_size:
            raise ValueError(
                f"{owner}: the Q-table would have {n_states} states x {self.n_actions} actions "
                f"= {entries:.3g} entries, above max_table_size={self.max_table_size}; "
                "use fewer bins or raise max_table_size"
            )
        self.q_table = np.full((n_states, self.n_actions), self.initial_q)
        self._rng = np.random.default_rng(self.seed)

    @property
    def n_states(self) -> int:
        """Number of rows of the Q-table."""
        return len(self.q_table)

    def _make_encoder(
        self, space: spaces.Space, discretizer: Discretizer | None
    ) -> tuple[Callable[[Any], int], int]:
        """``(observation -> state id, number of states)`` for the observation space."""
        owner = type(self).__name__
        if isinstance(space, spaces.Box):
            if not isinstance(discretizer, Discretizer):
                raise ValueError(
                    f"{owner}: a Box observation space needs a discretizer, "
                    f"e.g. Discretizer(bins=10), got {discretizer!r}"
                )
            if not discretizer.fitted:
                discretizer.fit_space(space)
            if discretizer.n_features != int(np.prod(space.shape)):
                raise ValueError(
                    f"{owner}: the discretizer has {discretizer.n_features} features, the Box "
                    f"has {int(np.prod(space.shape))}"
                )
            transform = discretizer.transform
            if len(space.shape) == 1:
                return transform, discretizer.n_states
            return (lambda obs: transform(np.ravel(obs))), discretizer.n_states
        if discretizer is not None:
            raise ValueError(f"{owner}: a discretizer applies to Box observation spaces only")
        if isinstance(space, spaces.Discrete):
            n, start = int(space.n), int(space.start)

            def encode_discrete(obs: Any) -> int:
                state = int(obs) - start
                if not 0 <= state < n:
                    raise ValueError(f"{owner}: observation {obs!r} is outside {space}")
                return state

            return encode_discrete, n
        if isinstance(space, spaces.MultiDiscrete):
            sizes, starts = space.nvec.ravel().astype(np.int64), space.start.ravel()
        else:
            sizes = np.array([s.n for s in space], dtype=np.int64)
            starts = np.array([s.start for s in space], dtype=np.int64)
        strides = np.array([math.prod(sizes[j + 1 :]) for j in range(len(sizes))], np.int64)

        def encode_components(obs: Any) -> int:
            index = np.asarray(obs, dtype=np.int64).ravel() - starts
            if index.shape != sizes.shape or np.any((index < 0) | (index >= sizes)):
                raise ValueError(f"{owner}: observation {obs!r} is outside {space}")
            return int(index @ strides)

        return encode_components, math.prod(int(s) for s in sizes)

    # ------------------------------------------------------------------ acting

    def act(self, obs: Any, greedy: bool = True) -> int:
        """The greedy action for ``obs``, or with ``greedy=False`` an epsilon-greedy one at
        ``epsilon(num_timesteps)`` (from the agent's generator).

        The greedy action is a pure function of ``obs`` and the table: ties go to the lowest
        action, so a deployed policy (e.g. a backtest replayed on truncated data) acts the same
        way every time it sees the same state, and :meth:`evaluate` scores that policy.
        """
        state = self._encode(obs)
        index = int(self.q_table[state].argmax()) if greedy else self._explore(state)
        return self.action_start + index

    def _prepare(self, obs: Any) -> int:
        return self._encode(obs)

    def _explore(self, state: int) -> int:
        if self._rng.random() < self.epsilon(self.num_timesteps):
            return int(self._rng.integers(self.n_actions))
        return int(self.q_table[state].argmax())

    def _learn(
        self, state: int, action: int, reward: float, next_state: int, terminated: bool
    ) -> None:
        """Watkins' update of ``Q[state, action]`` (see the module notes)."""
        q = self.q_table
        target = reward if terminated else reward + self.gamma * q[next_state].max()
        # the clock of the step that produced the transition (train counted it already)
        q[state, action] += self.learning_rate(self.num_timesteps - 1) * (target - q[state, action])

    def _snapshot(self) -> np.ndarray:
        return self.q_table.copy()

    def _restore(self, snapshot: np.ndarray) -> None:
        self.q_table[...] = snapshot

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Hyperparameters, spaces and discretizer settings (JSON-serializable)."""
        return {
            "observation_space": self._observation_description,
            "action_space": self._action_description,
            "discretizer": None if self.discretizer is None else self.discretizer.get_config(),
            "learning_rate": schedules.serialize(self.learning_rate),
            "gamma": self.gamma,
            "epsilon": schedules.serialize(self.epsilon),
            "initial_q": self.initial_q,
            "max_table_size": self.max_table_size,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the Q-table, the step count, the discretizer's edges and the config (JSON)
        to one file at ``path`` (:func:`~tradenn.nn.serialization.write_file`: no pickle,
        written to a temporary file and renamed)."""
        config = {"arguments": self.get_config(), "steps": self.num_timesteps}
        arrays = {"q_table": self.q_table}
        if isinstance(self.observation_space, spaces.Box):
            arrays["observation_low"] = self.observation_space.low
            arrays["observation_high"] = self.observation_space.high
            arrays["discretizer_edges"] = self.discretizer._edges
        serialization.write_file(path, serialization.format_name(type(self)), config, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> QLearningAgent:
        """Read an agent written by :meth:`save` (its generator restarts from ``seed``)."""
        saved = serialization.read_file(path, serialization.format_name(cls), cls.__name__)
        arrays = saved.arrays
        serialization.check_finite(arrays, path, ["q_table"] if "q_table" in arrays else [])
        # a Box may be unbounded and the discretizer's edge rows are padded with +inf
        serialization.check_finite(
            arrays, path, [name for name in arrays if name != "q_table"], nan_only=True
        )
        with serialization.invalid_content(path, cls.__name__):
            config = dict(saved.config["arguments"])
            observation_space = _build_space(
                config.pop("observation_space"),
                arrays.get("observation_low"),
                arrays.get("observation_high"),
            )
            action_space = _build_space(config.pop("action_space"))
            discretizer = None
            if config["discretizer"] is not None:
                discretizer = Discretizer(**config["discretizer"])
                edges = arrays["discretizer_edges"]
                discretizer.edges_ = [row[np.isfinite(row)] for row in edges]
                discretizer._compile()
            config["discretizer"] = discretizer
            config["learning_rate"] = schedules.get(config["learning_rate"])
            config["epsilon"] = schedules.get(config["epsilon"])
            agent = cls(observation_space, action_space, **config)
            q_table = arrays["q_table"]
            steps = int(saved.config["steps"])
        if q_table.shape != agent.q_table.shape or q_table.dtype != np.float64:
            raise serialization.ModelFileError(
                f"{path}: Q-table of shape {q_table.shape}, the spaces need {agent.q_table.shape}"
            )
        agent.q_table = q_table
        agent.num_timesteps = int(steps)
        return agent

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.n_states} states x {self.n_actions} actions, "
            f"gamma={self.gamma}, epsilon={self.epsilon!r}, {self.num_timesteps} steps trained)"
        )
