"""The agent protocol: what every tradenn agent is built from, and how it trains, acts and scores.

::

    agent = QLearningAgent(env.observation_space, env.action_space, epsilon=0.1, seed=0)
    agent = DQNAgent(env.observation_space, env.action_space, epsilon=LinearSchedule(1, 0.05, 9000))
    history = agent.train(env, timesteps=50_000)          # a TrainingHistory of numpy arrays
    mean, std = agent.evaluate(env, episodes=10, seed=1)  # the greedy policy act() deploys
    agent.act(obs)                                        # greedy action; greedy=False explores
    agent.save("agent.npz"); type(agent).load("agent.npz")

* **Built from the spaces**, ``(observation_space, action_space, *, hyperparameters, seed)``:
  an agent is complete (it acts, saves and loads) without an environment, and trains or
  evaluates on any environment with the same spaces (a ``Box`` is compared by shape: its
  bounds do not change what the agent computes).
* **Trained by environment steps** (Stable-Baselines3's ``learn(total_timesteps)``):
  ``train(env, timesteps)`` takes exactly that many steps, starting with a reset (an
  episode still running at the end is not in the history); the first reset of an agent's
  first call is seeded from its ``seed``, later resets continue the environment's own
  generator. ``num_timesteps`` counts the steps of every call.
* **One exploration rule**: epsilon-greedy with ``epsilon`` a number or a
  :mod:`tradenn.nn.schedules` schedule evaluated at ``num_timesteps``, before the step.
* **One greedy rule**: ``argmax_a Q(s, a)`` with ties to the lowest action, a pure function
  of the observation. ``act``, the exploiting half of exploration and ``evaluate`` all use
  it, so ``evaluate`` scores exactly the policy ``act`` deploys (a random tie-break at
  evaluation would score another policy). A uniformly random baseline is evaluated
  explicitly: ``evaluate_policy(lambda obs: env.action_space.sample(), env, episodes)``.
* **One result of evaluation**: ``(mean, std)`` of the undiscounted episode returns
  (Stable-Baselines3's ``evaluate_policy``).
"""

from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from tradenn.nn.schedules import Schedule

__all__ = ["Agent", "TrainingHistory", "evaluate_policy"]


@dataclass(frozen=True)
class TrainingHistory:
    """What one :meth:`Agent.train` call did, as numpy arrays.

    Attributes
    ----------
    episode_returns : ndarray of float64, shape (E,)
        Undiscounted reward sum of each episode completed in the call, in order.
    episode_lengths : ndarray of int64, shape (E,)
        Steps of each completed episode.
    episode_timesteps : ndarray of int64, shape (E,)
        ``num_timesteps`` when each episode ended.
    losses : ndarray of float64, shape (U,)
        Mean loss of each round of gradient updates (DQN; empty for tabular Q-learning,
        whose update is not a gradient step on a loss).
    eval_timesteps, eval_returns : ndarray, shape (V,)
        With ``eval_env``: ``num_timesteps`` at each evaluation and its mean greedy return.
    """

    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    episode_timesteps: np.ndarray
    losses: np.ndarray
    eval_timesteps: np.ndarray
    eval_returns: np.ndarray


def evaluate_policy(
    policy: Callable[[Any], Any], env: Any, episodes: int = 10, *, seed: int | None = None
) -> tuple[float, float]:
    """Mean and standard deviation of the undiscounted return of ``episodes`` episodes.

    Parameters
    ----------
    policy : callable
        ``observation -> action`` (an agent's ``act``, or ``lambda obs:
        env.action_space.sample()`` for a uniformly random baseline).
    env : gymnasium.Env
        Its episodes must end (terminated or truncated, e.g. by a ``TimeLimit``).
    episodes : int
        Number of episodes (>= 1).
    seed : int, optional
        Seeds the first ``env.reset``; later episodes continue the environment's generator.

    Returns
    -------
    (float, float)
        The mean and the (population) standard deviation of the episode returns.
    """
    episodes = _count(episodes, "episodes", "evaluate_policy")
    returns = np.empty(episodes)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:  # an episode is sequential: each action needs the last observation
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns[episode] = total
    return float(returns.mean()), float(returns.std())


def _count(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Agent:
    """Base class of the value-based agents (see the module notes for the protocol).

    A subclass sets, in its constructor, the attributes below (through
    ``Agent.__init__``) and implements the hooks :meth:`act`, ``_prepare`` (observation to
    the agent's state), ``_explore`` (epsilon-greedy action index of a state), ``_learn``
    (one transition; returns a loss or None), ``_snapshot``/``_restore`` (the learned values,
    for the best-evaluation checkpoint), ``save`` and ``load``.

    Attributes
    ----------
    observation_space, action_space : gymnasium Space
        What the agent was built for; actions are values of ``action_space`` (``start``
        included).
    n_actions, action_start : int
        ``action_space.n`` and ``action_space.start``: action index ``i`` is the action
        ``action_start + i``.
    epsilon : Schedule
        Exploration rate, evaluated at ``num_timesteps``.
    seed : int or None
        Seeds every generator of the agent and the first reset of its first ``train``.
    num_timesteps : int
        Environment steps taken in training so far (all :meth:`train` calls).
    history : TrainingHistory or None
        What the last :meth:`train` returned.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        epsilon: Schedule,
        seed: int | None,
        env_seed: int | None,
    ) -> None:
        self.observation_space, self.action_space = observation_space, action_space
        self.action_start = int(action_space.start)
        self.n_actions = int(action_space.n)
        self.epsilon = epsilon
        self.seed = seed
        self.num_timesteps = 0
        self.history: TrainingHistory | None = None
        self._env_seed = env_seed  # the first reset of the first train call only

    # ------------------------------------------------------------------ the hooks

    def act(self, obs: Any, greedy: bool = True) -> Any:
        """The greedy action for ``obs`` (ties to the lowest action), or with ``greedy=False``
        an epsilon-greedy one at ``epsilon(num_timesteps)``."""
        raise NotImplementedError

    def _prepare(self, obs: Any) -> Any:
        raise NotImplementedError

    def _explore(self, state: Any) -> int:
        raise NotImplementedError

    def _learn(
        self, state: Any, action: int, reward: float, next_state: Any, terminated: bool
    ) -> float | None:
        raise NotImplementedError

    def _snapshot(self) -> Any:
        raise NotImplementedError

    def _restore(self, snapshot: Any) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the protocol

    def train(
        self,
        env: Any,
        timesteps: int,
        *,
        progress: bool = False,
        log_interval: int = 20,
        eval_env: Any = None,
        eval_interval: int = 10_000,
        eval_episodes: int = 10,
    ) -> TrainingHistory:
        """Interact with ``env`` for ``timesteps`` steps, learning from every transition.

        Parameters
        ----------
        env : gymnasium.Env
            An environment with the agent's spaces (wrappers such as ``TimeLimit`` kept:
            they define truncation, which bootstraps; only ``terminated`` cuts the return).
        timesteps : int
            Environment steps of this call.
        progress : bool
            Show a tqdm bar with the mean return of the last ``log_interval`` episodes.
        log_interval : int
            Episodes averaged in the progress bar's recent mean return.
        eval_env : gymnasium.Env, optional
            A second environment (not ``env``) on which :meth:`evaluate` scores the greedy
            policy every ``eval_interval`` steps and at the end, ``eval_episodes`` episodes
            each from the same seeded start (``seed``). The best-scoring values are kept:
            a learner's greedy policy can oscillate, and this returns the best one seen.

        Returns
        -------
        TrainingHistory
        """
        owner = type(self).__name__
        timesteps = _count(timesteps, "timesteps", owner)
        log_interval = _count(log_interval, "log_interval", owner)
        eval_interval = _count(eval_interval, "eval_interval", owner)
        eval_episodes = _count(eval_episodes, "eval_episodes", owner)
        if eval_env is not None and eval_env is env:
            raise ValueError(f"{owner}: eval_env must be a separate env instance, not env")
        self._check_env(env, "train")
        if eval_env is not None:
            self._check_env(eval_env, "evaluate")
        returns: list[float] = []
        lengths: list[int] = []
        ends: list[int] = []
        losses: list[float] = []
        eval_timesteps: list[int] = []
        eval_returns: list[float] = []
        best: tuple[float, Any] | None = None
        recent: deque[float] = deque(maxlen=log_interval)
        state = self._prepare(self._reset(env))
        episode_return, episode_length = 0.0, 0
        with tqdm(total=timesteps, disable=not progress, unit="step", desc=owner) as bar:
            # sequential by nature: each action depends on what the last step taught the agent
            for step in range(timesteps):
                action = self._explore(state)
                obs, reward, terminated, truncated, _ = env.step(self.action_start + action)
                next_state = self._prepare(obs)
                self.num_timesteps += 1
                loss = self._learn(state, action, float(reward), next_state, bool(terminated))
                if loss is not None:
                    losses.append(loss)
                state = next_state
                episode_return += float(reward)
                episode_length += 1
                if terminated or truncated:
                    returns.append(episode_return)
                    lengths.append(episode_length)
                    ends.append(self.num_timesteps)
                    recent.append(episode_return)
                    bar.set_postfix_str(f"return={np.mean(recent):.3g}", refresh=False)
                    state = self._prepare(self._reset(env))
                    episode_return, episode_length = 0.0, 0
                if eval_env is not None and (
                    (step + 1) % eval_interval == 0 or step + 1 == timesteps
                ):
                    mean, _ = self.evaluate(eval_env, eval_episodes, seed=self.seed)
                    eval_timesteps.append(self.num_timesteps)
                    eval_returns.append(mean)
                    if best is None or mean > best[0]:
                        best = (mean, self._snapshot())
                bar.update(1)
        if best is not None:
            self._restore(best[1])
        self.history = TrainingHistory(
            episode_returns=np.asarray(returns, dtype=np.float64),
            episode_lengths=np.asarray(lengths, dtype=np.int64),
            episode_timesteps=np.asarray(ends, dtype=np.int64),
            losses=np.asarray(losses, dtype=np.float64),
            eval_timesteps=np.asarray(eval_timesteps, dtype=np.int64),
            eval_returns=np.asarray(eval_returns, dtype=np.float64),
        )
        return self.history

    def evaluate(
        self, env: Any, episodes: int = 10, *, seed: int | None = None
    ) -> tuple[float, float]:
        """Mean and standard deviation of the return of ``episodes`` episodes of the greedy
        policy :meth:`act` deploys (no learning, no randomness of the agent's).

        ``seed`` seeds the first ``env.reset``; later episodes continue its generator.
        """
        episodes = _count(episodes, "episodes", type(self).__name__)
        self._check_env(env, "evaluate")
        return evaluate_policy(self.act, env, episodes, seed=seed)

    # ------------------------------------------------------------------ helpers

    def _reset(self, env: Any) -> Any:
        obs, _ = env.reset(seed=self._env_seed)
        self._env_seed = None  # later resets continue the env's own generator
        return obs

    def _check_env(self, env: Any, what: str) -> None:
        """The env's spaces must be the agent's (a Box compared by shape only)."""
        owner = type(self).__name__
        for role, mine in (("action", self.action_space), ("observation", self.observation_space)):
            theirs = getattr(env, f"{role}_space", None)
            if isinstance(mine, spaces.Box):
                same = isinstance(theirs, spaces.Box) and theirs.shape == mine.shape
            else:
                same = theirs == mine
            if not same:
                raise ValueError(
                    f"{owner}: cannot {what} on an environment with {role} space {theirs}; "
                    f"the agent's is {mine}"
                )
