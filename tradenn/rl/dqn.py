"""DQNAgent: deep Q-learning with a target network, Double DQN and a replay buffer.

The Q-network is a ``tradenn.nn`` MLP mapping a flattened observation to one value per
discrete action. Each gradient step draws a batch of transitions ``(s, a, r, s', done)``
from the replay buffer and regresses ``Q(s, a)`` on the one-step target::

    a* = argmax_a' Q_online(s', a')                   (Double DQN: the online net picks ...)
    y  = r + gamma (1 - terminated) Q_target(s', a*)  (... and the target net evaluates)
    L  = mean_i huber(Q(s_i, a_i) - y_i)

(plain DQN takes ``max_a' Q_target(s', a')`` instead). Only the taken action's output gets
a gradient: ``dL/dQ(s_i, a) = clip(Q(s_i, a_i) - y_i, -delta, delta) / N`` for ``a = a_i`` and
0 otherwise. Gradients are clipped to a global norm before the Adam step. The target network
follows the online one every ``target_update_interval`` steps: copied (``tau = 1``) or moved
a fraction ``tau`` towards it (Polyak averaging).

A time-limit truncation is not a terminal state: its transition still bootstraps from
``Q(s')``; only ``terminated`` cuts the return.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from .. import nn
from ..nn.base import backward_without_input_grad
from ..nn.serialization import (
    format_name,
    invalid_content,
    network_state,
    read_file,
    restore_network,
    write_file,
)
from .replay import ReplayBuffer

__all__ = ["DQNAgent", "hard_update", "polyak_update", "q_targets"]


def q_targets(
    rewards: np.ndarray,
    terminated: np.ndarray,
    next_q_target: np.ndarray,
    gamma: float,
    next_q_online: np.ndarray | None = None,
) -> np.ndarray:
    """One-step TD targets ``r + gamma (1 - terminated) Q_target(s', a*)``.

    Parameters
    ----------
    rewards, terminated : ndarray, shape (N,)
    next_q_target : ndarray, shape (N, n_actions)
        Target-network values of the next observations.
    gamma : float
        Discount factor.
    next_q_online : ndarray, shape (N, n_actions), optional
        Online-network values of the next observations. Given: Double DQN, ``a*`` is their
        argmax. None: plain DQN, ``a* = argmax Q_target(s', .)`` (the max of the target net).

    Returns
    -------
    ndarray, shape (N,)
    """
    if next_q_online is None:
        next_values = next_q_target.max(axis=1)
    else:
        chosen = next_q_online.argmax(axis=1)
        next_values = next_q_target[np.arange(len(chosen)), chosen]
    return rewards + gamma * np.logical_not(terminated) * next_values


def hard_update(target: Any, source: Any) -> None:
    """Copy every parameter of ``source`` into ``target`` (same architecture), in place."""
    for (t_layer, t_key, _), (s_layer, s_key, _) in zip(
        nn.parameters(target), nn.parameters(source), strict=True
    ):
        np.copyto(t_layer.params[t_key], s_layer.params[s_key])


def polyak_update(target: Any, source: Any, tau: float) -> None:
    """``target <- (1 - tau) target + tau source`` for every parameter, in place."""
    for (t_layer, t_key, _), (s_layer, s_key, _) in zip(
        nn.parameters(target), nn.parameters(source), strict=True
    ):
        weights = t_layer.params[t_key]
        weights *= 1.0 - tau
        weights += tau * s_layer.params[s_key]


class DQNAgent:
    """Deep Q-network agent for a Box observation space and a Discrete action space.

    Per gradient step, on ``B`` transitions drawn uniformly with replacement from the
    replay buffer (``θ`` the online network, ``θ⁻`` the target network)::

        y_i = r_i + gamma (1 - terminated_i) Q_θ⁻(s'_i, argmax_a Q_θ(s'_i, a))   (Double DQN;
              plain DQN: max_a Q_θ⁻(s'_i, a))
        L   = (1/B) sum_i huber_delta(Q_θ(s_i, a_i) - y_i)          Adam, global-norm clip
        θ⁻ <- θ (tau = 1)  or  (1 - tau) θ⁻ + tau θ               every target_update_interval steps
        epsilon_k = linear from epsilon_start to epsilon_end over exploration_fraction * T steps

    See docs/rl.md, section "DQN: the maths".

    Parameters
    ----------
    hidden_sizes : sequence of int
        Units of the hidden Dense layers of the Q-network (empty: a linear Q-function).
    activation : str
        Activation of the hidden layers.
    learning_rate : float
        Adam step size.
    buffer_size : int
        Replay buffer capacity (transitions).
    batch_size : int
        Transitions per gradient step.
    gamma : float
        Discount factor in [0, 1].
    learning_starts : int
        Environment steps collected (with the exploration policy) before the first update.
    train_frequency : int
        Environment steps between two rounds of updates.
    gradient_steps : int
        Gradient steps per round.
    target_update_interval : int
        Environment steps between two target-network updates.
    tau : float
        Target update coefficient in (0, 1]: 1 copies the online network (hard update),
        less moves the target that fraction of the way (Polyak averaging).
    double_dqn : bool
        Let the online network choose the next action and the target network value it.
    epsilon_start, epsilon_end : float
        Exploration rate at the start and at the end of the decay, in [0, 1].
    exploration_fraction : float
        Fraction of ``total_timesteps`` of a :meth:`train` call over which epsilon decays
        linearly from ``epsilon_start`` to ``epsilon_end`` (0: ``epsilon_end`` throughout).
    max_grad_norm : float, optional
        Clip the global gradient norm to this value (None: no clipping).
    huber_delta : float
        Where the Huber loss turns from quadratic to linear.
    seed : int
        Seeds the network weights, exploration, replay sampling and the first env reset.

    Attributes
    ----------
    q_network, target_network : nn.Sequential or None
        Built by the first :meth:`train` (or by :meth:`load`).
    num_timesteps : int
        Environment steps taken in training so far (over all :meth:`train` calls).
    epsilon : float
        The exploration rate of the last training step (what ``act(obs, greedy=False)`` uses).
    history : dict
        What the last :meth:`train` returned.
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "relu",
        learning_rate: float = 1e-3,
        buffer_size: int = 50_000,
        batch_size: int = 64,
        gamma: float = 0.99,
        learning_starts: int = 1_000,
        train_frequency: int = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 500,
        tau: float = 1.0,
        double_dqn: bool = True,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        exploration_fraction: float = 0.1,
        max_grad_norm: float | None = 10.0,
        huber_delta: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.hidden_sizes = tuple(_positive_int(h, "hidden_sizes entries") for h in hidden_sizes)
        self.activation = str(activation)
        nn.activations.get(self.activation)  # fail now on an unknown name
        self.learning_rate = _positive_float(learning_rate, "learning_rate")
        self.buffer_size = _positive_int(buffer_size, "buffer_size")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.gamma = _fraction(gamma, "gamma")
        self.learning_starts = _non_negative_int(learning_starts, "learning_starts")
        self.train_frequency = _positive_int(train_frequency, "train_frequency")
        self.gradient_steps = _positive_int(gradient_steps, "gradient_steps")
        self.target_update_interval = _positive_int(
            target_update_interval, "target_update_interval"
        )
        self.tau = _fraction(tau, "tau")
        if self.tau == 0.0:
            raise ValueError("DQNAgent: tau must be in (0, 1], got 0 (the target would never move)")
        self.double_dqn = bool(double_dqn)
        self.epsilon_start = _fraction(epsilon_start, "epsilon_start")
        self.epsilon_end = _fraction(epsilon_end, "epsilon_end")
        self.exploration_fraction = _fraction(exploration_fraction, "exploration_fraction")
        self.max_grad_norm = (
            None if max_grad_norm is None else _positive_float(max_grad_norm, "max_grad_norm")
        )
        self.huber_delta = _positive_float(huber_delta, "huber_delta")
        self.seed = _non_negative_int(seed, "seed")

        self.q_network: nn.Sequential | None = None
        self.target_network: nn.Sequential | None = None
        self.optimizer: nn.Adam | None = None
        self.buffer: ReplayBuffer | None = None
        self.obs_shape: tuple[int, ...] | None = None
        self.n_actions: int | None = None
        self.action_start = 0
        self.num_timesteps = 0
        self.epsilon = self.epsilon_start
        self.history: dict[str, list] = {}
        self._loss = nn.Huber(self.huber_delta)
        network_seed, action_seed, replay_seed, env_seed = np.random.SeedSequence(
            self.seed
        ).generate_state(4)
        self._network_seed = int(network_seed)
        self._action_rng = np.random.default_rng(int(action_seed))
        self._replay_rng = np.random.default_rng(int(replay_seed))
        self._env_seed: int | None = int(env_seed) % 2**31  # used by the first reset only

    # ------------------------------------------------------------------ configuration

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready) that recreate this agent untrained."""
        return {
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
            "learning_rate": self.learning_rate,
            "buffer_size": self.buffer_size,
            "batch_size": self.batch_size,
            "gamma": self.gamma,
            "learning_starts": self.learning_starts,
            "train_frequency": self.train_frequency,
            "gradient_steps": self.gradient_steps,
            "target_update_interval": self.target_update_interval,
            "tau": self.tau,
            "double_dqn": self.double_dqn,
            "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end,
            "exploration_fraction": self.exploration_fraction,
            "max_grad_norm": self.max_grad_norm,
            "huber_delta": self.huber_delta,
            "seed": self.seed,
        }

    # ------------------------------------------------------------------ the network

    def _build_network(self) -> nn.Sequential:
        seeds = np.random.SeedSequence(self._network_seed).generate_state(
            len(self.hidden_sizes) + 1
        )
        layers = [
            nn.Dense(
                units,
                activation=self.activation,
                kernel_initializer=nn.initializers.GlorotUniform(seed=int(s)),
            )
            for units, s in zip(self.hidden_sizes, seeds, strict=False)
        ]
        output_init = nn.initializers.GlorotUniform(seed=int(seeds[-1]))
        layers.append(nn.Dense(self.n_actions, kernel_initializer=output_init))
        network = nn.Sequential(layers)
        network.build((None, math.prod(self.obs_shape)))
        return network

    def _setup(self, env: Any) -> None:
        """Read the spaces of ``env``; build the networks, optimizer and buffer on first use."""
        obs_shape, n_actions, start = _check_spaces(env)
        if self.q_network is not None:
            if (obs_shape, n_actions) != (self.obs_shape, self.n_actions):
                raise ValueError(
                    f"DQNAgent: the agent was built for observations {self.obs_shape} and "
                    f"{self.n_actions} actions, the env has {obs_shape} and {n_actions}"
                )
        else:
            self.obs_shape, self.n_actions = obs_shape, n_actions
            self.q_network = self._build_network()
        self.action_start = start
        if self.target_network is None:
            self.target_network = self._build_network()
            hard_update(self.target_network, self.q_network)
        if self.optimizer is None:
            self.optimizer = nn.Adam(self.learning_rate, global_clipnorm=self.max_grad_norm)
        if self.buffer is None:
            self.buffer = ReplayBuffer(self.buffer_size, (math.prod(obs_shape),))

    # ------------------------------------------------------------------ acting

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values ``(N, n_actions)`` of a batch of observations ``(N, *obs_shape)``."""
        self._check_built("q_values")
        obs = np.asarray(obs, dtype=self.q_network.dtype)
        return self.q_network.forward(obs.reshape(len(obs), -1))

    def act(self, obs: Any, greedy: bool = True) -> Any:
        """The action for one observation (an int), or for a batch ``(N, *obs_shape)`` (an array).

        ``greedy=False`` explores: a uniformly random action with probability ``epsilon``.
        """
        self._check_built("act")
        obs = np.asarray(obs, dtype=self.q_network.dtype)
        single = obs.shape == self.obs_shape
        if not single and obs.shape[1:] != self.obs_shape:
            raise ValueError(
                f"DQNAgent.act: expected an observation of shape {self.obs_shape} or a batch "
                f"(N, {', '.join(map(str, self.obs_shape))}), got {obs.shape}"
            )
        rows = obs.reshape(1 if single else len(obs), -1)
        actions = self.q_network.forward(rows).argmax(axis=1)
        if not greedy:
            explore = self._action_rng.random(len(actions)) < self.epsilon
            actions[explore] = self._action_rng.integers(0, self.n_actions, int(explore.sum()))
        actions = actions + self.action_start
        return int(actions[0]) if single else actions

    # ------------------------------------------------------------------ training

    def train(
        self,
        env: Any,
        total_timesteps: int,
        *,
        progress: bool = False,
        log_interval: int = 20,
        eval_env: Any = None,
        eval_interval: int = 10_000,
        eval_episodes: int = 10,
    ) -> dict[str, list]:
        """Interact with ``env`` for ``total_timesteps`` steps, learning as it goes.

        Parameters
        ----------
        env : gymnasium.Env
            Box observations, Discrete actions. Reset with the agent's seed the first time.
        total_timesteps : int
            Environment steps of this call (the epsilon decay spans them).
        progress : bool
            Show a tqdm bar with the mean return of the last ``log_interval`` episodes.
        log_interval : int
            Episodes averaged in the progress bar's recent mean return.
        eval_env : gymnasium.Env, optional
            A second env (not ``env``) to evaluate the greedy policy on every
            ``eval_interval`` steps and at the end, ``eval_episodes`` episodes each (the same
            seeded start states every time). The best-scoring weights are kept: DQN's greedy
            policy oscillates, and this returns the best one seen rather than the last.

        Returns
        -------
        dict
            ``episode_returns`` and ``episode_lengths`` (completed episodes, in order),
            ``episode_timesteps`` (``num_timesteps`` at each episode's end), ``losses``
            (mean loss of each round of updates) and, with ``eval_env``, ``eval_timesteps``
            and ``eval_returns`` (mean greedy return of each evaluation).
        """
        total_timesteps = _positive_int(total_timesteps, "total_timesteps")
        log_interval = _positive_int(log_interval, "log_interval")
        eval_interval = _positive_int(eval_interval, "eval_interval")
        eval_episodes = _positive_int(eval_episodes, "eval_episodes")
        if eval_env is not None and eval_env is env:
            raise ValueError("DQNAgent: eval_env must be a separate env instance, not env")
        self._setup(env)
        if eval_env is not None:
            _check_spaces(eval_env)
        history: dict[str, list] = {
            "episode_returns": [],
            "episode_lengths": [],
            "episode_timesteps": [],
            "losses": [],
            "eval_timesteps": [],
            "eval_returns": [],
        }
        best: tuple[float, list[np.ndarray]] | None = None
        recent: deque[float] = deque(maxlen=log_interval)
        decay_steps = self.exploration_fraction * total_timesteps
        obs = self._reset(env)
        episode_return, episode_length = 0.0, 0
        with tqdm(total=total_timesteps, disable=not progress, unit="step", desc="DQN") as bar:
            for step in range(total_timesteps):
                self.epsilon = _linear(self.epsilon_start, self.epsilon_end, step, decay_steps)
                action = self._explore(obs)
                next_obs, reward, terminated, truncated, _ = env.step(action + self.action_start)
                next_obs = _flat(next_obs)
                self.buffer.add(obs, action, reward, next_obs, terminated)
                self.num_timesteps += 1
                episode_return += float(reward)
                episode_length += 1
                obs = next_obs
                if terminated or truncated:
                    history["episode_returns"].append(episode_return)
                    history["episode_lengths"].append(episode_length)
                    history["episode_timesteps"].append(self.num_timesteps)
                    recent.append(episode_return)
                    bar.set_postfix_str(f"return={np.mean(recent):.1f}", refresh=False)
                    obs = self._reset(env)
                    episode_return, episode_length = 0.0, 0
                if (
                    self.num_timesteps > self.learning_starts
                    and self.num_timesteps % self.train_frequency == 0
                ):
                    losses = [self.gradient_step() for _ in range(self.gradient_steps)]
                    history["losses"].append(float(np.mean(losses)))
                if self.num_timesteps % self.target_update_interval == 0:
                    self.update_target()
                if eval_env is not None and (
                    (step + 1) % eval_interval == 0 or step + 1 == total_timesteps
                ):
                    best = self._evaluate_checkpoint(eval_env, eval_episodes, history, best)
                bar.update(1)
        if best is not None:
            self.q_network.set_weights(best[1])
            hard_update(self.target_network, self.q_network)
        self.history = history
        return history

    def gradient_step(self, batch: dict[str, np.ndarray] | None = None) -> float:
        """One Adam step on a replay batch (drawn from the buffer if not given); returns the
        Huber loss measured before the step."""
        self._check_built("gradient_step")
        if batch is None:
            batch = self.buffer.sample(self.batch_size, self._replay_rng)
        dtype = self.q_network.dtype
        obs = np.asarray(batch["obs"], dtype=dtype)
        next_obs = np.asarray(batch["next_obs"], dtype=dtype)
        actions = np.asarray(batch["action"], dtype=np.int64)
        next_q_target = self.target_network.forward(next_obs)
        # the online net's pass on s' must come before the one on s: backward uses the last
        next_q_online = self.q_network.forward(next_obs) if self.double_dqn else None
        targets = q_targets(
            np.asarray(batch["reward"], dtype=dtype),
            np.asarray(batch["terminated"], dtype=bool),
            next_q_target,
            self.gamma,
            next_q_online,
        )
        q = self.q_network.forward(obs, training=True)
        value, dq = self.loss_and_gradient(q, actions, targets)
        backward_without_input_grad(self.q_network, dq)
        self.optimizer.step(self.q_network)
        return value

    def loss_and_gradient(
        self, q: np.ndarray, actions: np.ndarray, targets: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Huber loss of ``Q(s_i, a_i)`` against ``targets`` and its gradient w.r.t. ``q``.

        Parameters
        ----------
        q : ndarray, shape (N, n_actions)
        actions : ndarray of int, shape (N,)
            Action indices (0-based).
        targets : ndarray, shape (N,)

        Returns
        -------
        (float, ndarray of shape (N, n_actions))
            The mean loss, and ``dL/dq``: zero except at each row's taken action.
        """
        rows = np.arange(len(actions))
        value, grad_taken = self._loss.value_and_grad(targets, q[rows, actions])
        dq = np.zeros_like(q)
        dq[rows, actions] = grad_taken
        return value, dq

    def update_target(self) -> None:
        """Move the target network towards the online one (copy when ``tau == 1``)."""
        self._check_built("update_target")
        if self.tau == 1.0:
            hard_update(self.target_network, self.q_network)
        else:
            polyak_update(self.target_network, self.q_network, self.tau)

    def _evaluate_checkpoint(
        self,
        eval_env: Any,
        episodes: int,
        history: dict[str, list],
        best: tuple[float, list[np.ndarray]] | None,
    ) -> tuple[float, list[np.ndarray]]:
        """Evaluate the greedy policy, log it and return the best (score, weights) so far."""
        mean, _ = self.evaluate(eval_env, episodes, seed=self.seed)
        history["eval_timesteps"].append(self.num_timesteps)
        history["eval_returns"].append(mean)
        if best is None or mean > best[0]:
            return mean, self.q_network.get_weights()
        return best

    def _explore(self, obs: np.ndarray) -> int:
        """Epsilon-greedy action index for one flattened observation (uniform before
        ``learning_starts``)."""
        if self.num_timesteps < self.learning_starts or self._action_rng.random() < self.epsilon:
            return int(self._action_rng.integers(0, self.n_actions))
        return int(self.q_network.forward(obs[None]).argmax())

    def _reset(self, env: Any) -> np.ndarray:
        obs, _ = env.reset(seed=self._env_seed)
        self._env_seed = None  # later resets continue the env's own generator
        return _flat(obs)

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self, env: Any, episodes: int = 10, seed: int | None = None
    ) -> tuple[float, float]:
        """Mean and standard deviation of the return of ``episodes`` greedy episodes.

        ``seed`` seeds the first reset of ``env`` (later episodes continue its generator).
        """
        self._check_built("evaluate")
        episodes = _positive_int(episodes, "episodes")
        _check_spaces(env)
        returns = np.empty(episodes)
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            total, done = 0.0, False
            while not done:  # an episode is sequential: each action needs the last observation
                obs, reward, terminated, truncated, _ = env.step(self.act(obs))
                total += float(reward)
                done = terminated or truncated
            returns[episode] = total
        return float(returns.mean()), float(returns.std())

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> None:
        """Write the Q-network (with Adam state) and the agent's configuration to one file
        (:func:`~tradenn.nn.serialization.write_file`, no pickle). The replay buffer is not
        saved."""
        self._check_built("save")
        self.q_network.optimizer = self.optimizer  # saved with the model for further training
        try:
            network, arrays = network_state(self.q_network)
        finally:
            self.q_network.optimizer = None
        config = {
            "arguments": self.get_config(),
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "action_start": self.action_start,
            "num_timesteps": self.num_timesteps,
            "network": network,
        }
        write_file(path, format_name(type(self)), config, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DQNAgent:
        """Read an agent written by :meth:`save`; it acts exactly as the saved one did."""
        saved = read_file(path, format_name(cls), cls.__name__)
        config = saved.config
        with invalid_content(path, cls.__name__):
            agent = cls(**config["arguments"])
            agent.obs_shape = tuple(int(d) for d in config["obs_shape"])
            agent.n_actions = int(config["n_actions"])
            agent.action_start = int(config["action_start"])
            agent.num_timesteps = int(config["num_timesteps"])
            network_config = config["network"]
        network = restore_network(network_config, saved.arrays, path)
        agent.optimizer, network.optimizer = network.optimizer, None
        agent.q_network = network
        agent.target_network = agent._build_network()
        hard_update(agent.target_network, network)
        return agent

    # ------------------------------------------------------------------ helpers

    def _check_built(self, method: str) -> None:
        if self.q_network is None:
            raise ValueError(f"DQNAgent: call train(env, ...) (or load) before {method}")

    def __repr__(self) -> str:
        state = "untrained" if self.q_network is None else f"{self.num_timesteps} steps"
        return (
            f"DQNAgent(hidden_sizes={self.hidden_sizes}, double_dqn={self.double_dqn}, "
            f"seed={self.seed}, {state})"
        )


def _check_spaces(env: Any) -> tuple[tuple[int, ...], int, int]:
    """``(obs_shape, n_actions, action_start)`` of an env with Box obs and Discrete actions."""
    from gymnasium import spaces

    action_space = getattr(env, "action_space", None)
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(
            f"DQNAgent: needs a Discrete action space, got {type(action_space).__name__}"
        )
    observation_space = getattr(env, "observation_space", None)
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            f"DQNAgent: needs a Box observation space, got {type(observation_space).__name__}"
        )
    return tuple(observation_space.shape), int(action_space.n), int(action_space.start)


def _flat(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)


def _linear(start: float, end: float, step: int, steps: float) -> float:
    """``start`` moving linearly to ``end`` over ``steps`` steps, then ``end``."""
    if step >= steps:
        return end
    return start + (end - start) * step / steps


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"DQNAgent: {name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"DQNAgent: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def _positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
        raise ValueError(f"DQNAgent: {name} must be a positive number, got {value!r}")
    return float(value)


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"DQNAgent: {name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"DQNAgent: {name} must be in [0, 1], got {value!r}")
    return float(value)
