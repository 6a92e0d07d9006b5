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

The agent follows the protocol of :mod:`tradenn.rl.agent`: built from the spaces, trained by
environment steps (``train(env, timesteps)``), exploring epsilon-greedily with ``epsilon`` a
number or a :mod:`tradenn.nn.schedules` schedule of ``num_timesteps``, acting greedily with
ties to the lowest action, and ``evaluate`` returning ``(mean, std)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from .. import checks, nn
from ..nn import schedules, serialization
from ..nn.base import backward_without_input_grad
from ..nn.schedules import LinearSchedule, Schedule, as_schedule
from .agent import Agent
from .replay import ReplayBuffer

__all__ = ["DEFAULT_EXPLORATION", "DQNAgent", "hard_update", "polyak_update", "q_targets"]

#: DQNAgent's default ``epsilon``: 1 to 0.05 over the first 10,000 steps (Stable-Baselines3's
#: start and end rates). Schedules are pure functions, so one instance can be shared.
DEFAULT_EXPLORATION = LinearSchedule(1.0, 0.05, 10_000)


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


class DQNAgent(Agent):
    """Deep Q-network agent for a Box observation space and a Discrete action space.

    Per gradient step, on ``B`` transitions drawn uniformly with replacement from the
    replay buffer (``θ`` the online network, ``θ⁻`` the target network)::

        y_i = r_i + gamma (1 - terminated_i) Q_θ⁻(s'_i, argmax_a Q_θ(s'_i, a))   (Double DQN;
              plain DQN: max_a Q_θ⁻(s'_i, a))
        L   = (1/B) sum_i huber_delta(Q_θ(s_i, a_i) - y_i)          Adam, global-norm clip
        θ⁻ <- θ (tau = 1)  or  (1 - tau) θ⁻ + tau θ               every target_update_interval steps
        a_t = uniform with probability epsilon(t), else argmax_a Q_θ(s_t, a) (lowest on ties)

    See docs/rl.md, section "DQN: the maths".

    Parameters
    ----------
    observation_space : gymnasium.spaces.Box
        The observations (any shape; the network sees them flattened).
    action_space : gymnasium.spaces.Discrete
        The actions; :meth:`act` returns values of this space (``start`` included).
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
        Environment steps collected (with uniformly random actions) before the first update.
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
    epsilon : float or Schedule
        Exploration rate in [0, 1] as a function of ``num_timesteps`` (counted over every
        :meth:`train` call); default :data:`DEFAULT_EXPLORATION`.
    max_grad_norm : float, optional
        Clip the global gradient norm to this value (None: no clipping).
    huber_delta : float
        Where the Huber loss turns from quadratic to linear.
    seed : int
        Seeds the network weights, exploration, replay sampling and the first env reset.

    Attributes
    ----------
    q_network, target_network : nn.Sequential
        The online and target Q-networks.
    num_timesteps : int
        Environment steps taken in training so far (over all :meth:`train` calls).
    history : TrainingHistory or None
        What the last :meth:`train` returned.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Discrete,
        *,
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
        epsilon: float | Schedule = DEFAULT_EXPLORATION,
        max_grad_norm: float | None = 10.0,
        huber_delta: float = 1.0,
        seed: int = 0,
    ) -> None:
        obs_shape = _check_spaces(observation_space, action_space)
        self.hidden_sizes = tuple(
            checks.positive_int(h, "hidden_sizes entries", "DQNAgent") for h in hidden_sizes
        )
        self.activation = str(activation)
        nn.activations.get(self.activation)  # fail now on an unknown name
        self.learning_rate = checks.positive_number(learning_rate, "learning_rate", "DQNAgent")
        self.buffer_size = checks.positive_int(buffer_size, "buffer_size", "DQNAgent")
        self.batch_size = checks.positive_int(batch_size, "batch_size", "DQNAgent")
        self.gamma = checks.number(gamma, "gamma", "DQNAgent", low=0, high=1)
        self.learning_starts = checks.non_negative_int(
            learning_starts, "learning_starts", "DQNAgent"
        )
        self.train_frequency = checks.positive_int(train_frequency, "train_frequency", "DQNAgent")
        self.gradient_steps = checks.positive_int(gradient_steps, "gradient_steps", "DQNAgent")
        self.target_update_interval = checks.positive_int(
            target_update_interval, "target_update_interval", "DQNAgent"
        )
        self.tau = checks.number(tau, "tau", "DQNAgent", low=0, high=1)
        if self.tau == 0.0:
            raise ValueError("DQNAgent: tau must be in (0, 1], got 0 (the target would never move)")
        self.double_dqn = bool(double_dqn)
        epsilon_schedule = as_schedule(epsilon, "epsilon", "DQNAgent")
        if not isinstance(epsilon, Schedule):
            checks.number(epsilon, "epsilon", "DQNAgent", low=0, high=1)
        self.max_grad_norm = (
            None
            if max_grad_norm is None
            else checks.positive_number(max_grad_norm, "max_grad_norm", "DQNAgent")
        )
        self.huber_delta = checks.positive_number(huber_delta, "huber_delta", "DQNAgent")
        seed = checks.non_negative_int(seed, "seed", "DQNAgent")
        network_seed, action_seed, replay_seed, env_seed = np.random.SeedSequence(
            seed
        ).generate_state(4)
        super().__init__(
            observation_space, action_space, epsilon_schedule, seed, int(env_seed) % 2**31
        )
        self.obs_shape = obs_shape
        self._loss = nn.Huber(self.huber_delta)
        self._network_seed = int(network_seed)
        self._action_rng = np.random.default_rng(int(action_seed))
        self._replay_rng = np.random.default_rng(int(replay_seed))
        self.q_network = self._build_network()
        self.target_network = self._build_network()
        hard_update(self.target_network, self.q_network)
        self.optimizer = nn.Adam(self.learning_rate, global_clipnorm=self.max_grad_norm)
        self.buffer = ReplayBuffer(self.buffer_size, (math.prod(obs_shape),))

    # ------------------------------------------------------------------ configuration

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready, the spaces aside) that recreate this agent
        untrained."""
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
            "epsilon": schedules.serialize(self.epsilon),
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

    # ------------------------------------------------------------------ acting

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values ``(N, n_actions)`` of a batch of observations ``(N, *obs_shape)``."""
        obs = np.asarray(obs, dtype=self.q_network.dtype)
        return self.q_network.forward(obs.reshape(len(obs), -1))

    def act(self, obs: Any, greedy: bool = True) -> Any:
        """The action for one observation (an int), or for a batch ``(N, *obs_shape)`` (an array).

        Greedy: ``argmax_a Q(s, a)``, ties to the lowest action, the policy :meth:`evaluate`
        scores. ``greedy=False`` explores: a uniformly random action with probability
        ``epsilon(num_timesteps)``.
        """
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
            explore = self._action_rng.random(len(actions)) < self.epsilon(self.num_timesteps)
            actions[explore] = self._action_rng.integers(0, self.n_actions, int(explore.sum()))
        actions = actions + self.action_start
        return int(actions[0]) if single else actions

    # ------------------------------------------------------------------ training

    def _prepare(self, obs: Any) -> np.ndarray:
        return _flat(obs)

    def _explore(self, state: np.ndarray) -> int:
        """Epsilon-greedy action index for one flattened observation (uniform before
        ``learning_starts``)."""
        if self.num_timesteps < self.learning_starts or self._action_rng.random() < self.epsilon(
            self.num_timesteps
        ):
            return int(self._action_rng.integers(0, self.n_actions))
        return int(self.q_network.forward(state[None]).argmax())

    def _learn(
        self,
        state: np.ndarray,
        action: int,
        reward: float,
        next_state: np.ndarray,
        terminated: bool,
    ) -> float | None:
        """Store the transition; every ``train_frequency`` steps after ``learning_starts`` run
        ``gradient_steps`` gradient steps (their mean loss is returned), and every
        ``target_update_interval`` steps update the target network."""
        self.buffer.add(state, action, reward, next_state, terminated)
        loss = None
        if (
            self.num_timesteps > self.learning_starts
            and self.num_timesteps % self.train_frequency == 0
        ):
            loss = float(np.mean([self.gradient_step() for _ in range(self.gradient_steps)]))
        if self.num_timesteps % self.target_update_interval == 0:
            self.update_target()
        return loss

    def _snapshot(self) -> list[np.ndarray]:
        return self.q_network.get_weights()

    def _restore(self, snapshot: list[np.ndarray]) -> None:
        self.q_network.set_weights(snapshot)
        hard_update(self.target_network, self.q_network)

    def gradient_step(self, batch: dict[str, np.ndarray] | None = None) -> float:
        """One Adam step on a replay batch (drawn from the buffer if not given); returns the
        Huber loss measured before the step."""
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
        if self.tau == 1.0:
            hard_update(self.target_network, self.q_network)
        else:
            polyak_update(self.target_network, self.q_network, self.tau)

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> None:
        """Write the Q-network (with Adam state) and the agent's configuration to one file
        (:func:`~tradenn.nn.serialization.write_file`, no pickle). The replay buffer is not
        saved."""
        self.q_network.optimizer = self.optimizer  # saved with the model for further training
        try:
            network, arrays = serialization.network_state(self.q_network)
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
        serialization.write_file(path, serialization.format_name(type(self)), config, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DQNAgent:
        """Read an agent written by :meth:`save`; it acts exactly as the saved one did."""
        saved = serialization.read_file(path, serialization.format_name(cls), cls.__name__)
        config = saved.config
        with serialization.invalid_content(path, cls.__name__):
            arguments = dict(config["arguments"])
            arguments["epsilon"] = schedules.get(arguments["epsilon"])
            # the bounds of the Box are not saved: the network sees any values of its shape
            shape = tuple(int(d) for d in config["obs_shape"])
            observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)
            action_space = spaces.Discrete(
                int(config["n_actions"]), start=int(config["action_start"])
            )
            agent = cls(observation_space, action_space, **arguments)
            agent.num_timesteps = int(config["num_timesteps"])
            network_config = config["network"]
        network = serialization.restore_network(network_config, saved.arrays, path)
        agent.optimizer, network.optimizer = network.optimizer, None
        agent.q_network = network
        hard_update(agent.target_network, network)
        return agent

    def __repr__(self) -> str:
        return (
            f"DQNAgent(hidden_sizes={self.hidden_sizes}, double_dqn={self.double_dqn}, "
            f"seed={self.seed}, {self.num_timesteps} steps trained)"
        )


def _check_spaces(observation_space: Any, action_space: Any) -> tuple[int, ...]:
    """The observation shape, once the spaces are a Box and a Discrete."""
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(
            f"DQNAgent: needs a Discrete action space, got {type(action_space).__name__}"
        )
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            f"DQNAgent: needs a Box observation space, got {type(observation_space).__name__}"
        )
    return tuple(observation_space.shape)


def _flat(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)
