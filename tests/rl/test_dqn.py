"""DQNAgent: targets and updates by hand, learning, determinism, files, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from tradenn import nn
from tradenn.nn.serialization import ModelFileError, format_name, network_state, write_file
from tradenn.rl import LinearSchedule, evaluate_policy
from tradenn.rl.dqn import DEFAULT_EXPLORATION, DQNAgent, hard_update, polyak_update, q_targets

# --------------------------------------------------------------------------- small envs


class ChainEnv(gym.Env):
    """States 0..n-1 (one-hot), start at 0; action 1 moves right, 0 left (floor at 0).

    Reaching state n-1 pays 1 and terminates; 3n steps without reaching it truncate.
    With discount gamma the optimal values are ``Q(s, right) = gamma^(n-2-s)`` and
    ``Q(s, left) = gamma Q(max(s-1, 0), right)``.
    """

    def __init__(self, n: int = 5) -> None:
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.state, self.steps = 0, 0

    def _obs(self) -> np.ndarray:
        return np.eye(self.n, dtype=np.float32)[self.state]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.steps = 0, 0
        return self._obs(), {}

    def step(self, action):
        self.state = min(self.state + 1, self.n - 1) if action == 1 else max(self.state - 1, 0)
        self.steps += 1
        terminated = self.state == self.n - 1
        return self._obs(), float(terminated), terminated, self.steps >= 3 * self.n, {}


class OneStepEnv(gym.Env):
    """One state, two actions; every step pays ``reward`` and ends the episode, either as a
    true termination or as a time-limit truncation."""

    def __init__(self, truncate: bool, reward: float = 1.0) -> None:
        self.truncate, self.reward = truncate, reward
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([1.0, -1.0], dtype=np.float32), {}

    def step(self, action):
        obs = np.array([1.0, -1.0], dtype=np.float32)
        return obs, self.reward, not self.truncate, self.truncate, {}


def _mlp(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The Q-network computed by hand: relu hidden layers, linear output."""
    *hidden, (kernel, bias) = list(zip(weights[::2], weights[1::2], strict=True))
    for w, b in hidden:
        x = np.maximum(x @ w + b, 0.0)
    return x @ kernel + bias


def _random_policy_mean_return(env: gym.Env, episodes: int) -> float:
    env.action_space.seed(0)
    return evaluate_policy(lambda obs: env.action_space.sample(), env, episodes, seed=0)[0]


def _agent(env: gym.Env, **kwargs) -> DQNAgent:
    return DQNAgent(env.observation_space, env.action_space, **kwargs)


def _built_agent(**kwargs) -> DQNAgent:
    return _agent(ChainEnv(4), hidden_sizes=(8,), learning_starts=10, **kwargs)


# --------------------------------------------------------------------------- maths by hand


def test_double_dqn_targets_by_hand():
    rewards = np.array([1.0, 0.0, -1.0])
    terminated = np.array([False, True, False])
    next_q_online = np.array([[1.0, 3.0], [5.0, 0.0], [2.0, 1.0]])
    next_q_target = np.array([[10.0, 20.0], [7.0, 9.0], [4.0, 8.0]])
    # online argmax -> actions 1, 0, 0; the target net values them: 20, (terminal), 4
    expected = [1.0 + 0.9 * 20.0, 0.0, -1.0 + 0.9 * 4.0]
    np.testing.assert_allclose(
        q_targets(rewards, terminated, next_q_target, 0.9, next_q_online), expected
    )


def test_plain_dqn_targets_take_the_target_network_max():
    rewards = np.array([1.0, -1.0])
    terminated = np.array([False, False])
    next_q_target = np.array([[10.0, 20.0], [4.0, 8.0]])
    np.testing.assert_allclose(
        q_targets(rewards, terminated, next_q_target, 0.5), [1.0 + 10.0, -1.0 + 4.0]
    )


def test_loss_gradient_is_huber_at_taken_actions_only():
    agent = _agent(ChainEnv(2), huber_delta=1.0)
    q = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 0.0]], dtype=np.float32)
    actions = np.array([1, 0, 1])
    targets = np.array([1.5, 5.0, 0.4], dtype=np.float32)
    value, dq = agent.loss_and_gradient(q, actions, targets)
    # errors 0.5, -2.0, -0.4 -> huber 0.125, 1.5, 0.08; gradients 0.5, -1 (clipped), -0.4; / 3
    assert value == pytest.approx((0.125 + 1.5 + 0.08) / 3)
    np.testing.assert_allclose(dq, [[0.0, 0.5 / 3], [-1.0 / 3, 0.0], [0.0, -0.4 / 3]], rtol=1e-6)


@pytest.mark.parametrize("double_dqn", [True, False])
def test_gradient_step_loss_matches_a_hand_computed_double_dqn_target(double_dqn):
    agent = _built_agent(double_dqn=double_dqn, gamma=0.9, max_grad_norm=None)
    # make the target net differ from the online one so the two target rules disagree
    rng = np.random.default_rng(0)
    for layer, key, _ in nn.parameters(agent.target_network):
        layer.params[key] += rng.normal(0.0, 0.5, layer.params[key].shape).astype(np.float32)
    batch = {
        "obs": np.eye(4, dtype=np.float32)[[0, 1, 2, 1]],
        "action": np.array([1, 0, 1, 1]),
        "reward": np.array([0.0, 0.0, 1.0, 0.5], dtype=np.float32),
        "next_obs": np.eye(4, dtype=np.float32)[[1, 0, 3, 2]],
        "terminated": np.array([False, False, True, False]),
    }
    online = [w.astype(np.float64) for w in agent.q_network.get_weights()]
    target = [w.astype(np.float64) for w in agent.target_network.get_weights()]
    next_target = _mlp(batch["next_obs"], target)
    if double_dqn:
        chosen = _mlp(batch["next_obs"], online).argmax(axis=1)
    else:
        chosen = next_target.argmax(axis=1)
    y = batch["reward"] + 0.9 * ~batch["terminated"] * next_target[np.arange(4), chosen]
    error = _mlp(batch["obs"], online)[np.arange(4), batch["action"]] - y
    huber = np.where(np.abs(error) <= 1.0, 0.5 * error**2, np.abs(error) - 0.5)
    assert agent.gradient_step(batch) == pytest.approx(huber.mean(), rel=1e-5)
    # the step moved the online weights and left the target network alone
    assert not np.allclose(agent.q_network.get_weights()[-2], online[-2])
    np.testing.assert_array_equal(agent.target_network.get_weights()[0], target[0])


def test_hard_update_copies_every_parameter():
    source = nn.Sequential([nn.Dense(3, activation="relu"), nn.Dense(2)])
    target = nn.Sequential([nn.Dense(3, activation="relu"), nn.Dense(2)])
    source.build((None, 4))
    target.build((None, 4))
    hard_update(target, source)
    for a, b in zip(target.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    target.get_weights()[0][:] = 99.0  # a copy, not shared arrays
    assert target.params is not source.params
    source.layers[0].params["kernel"][0, 0] = 5.0
    assert target.layers[0].params["kernel"][0, 0] != 5.0


def test_polyak_update_by_hand():
    source, target = nn.Dense(2), nn.Dense(2)
    source.build((None, 2))
    target.build((None, 2))
    source.params["kernel"][:] = [[1.0, 2.0], [3.0, 4.0]]
    target.params["kernel"][:] = [[0.0, 0.0], [1.0, -4.0]]
    source.params["bias"][:] = [10.0, 0.0]
    target.params["bias"][:] = [0.0, 10.0]
    polyak_update(target, source, 0.25)
    np.testing.assert_allclose(target.params["kernel"], [[0.25, 0.5], [1.5, -2.0]])
    np.testing.assert_allclose(target.params["bias"], [2.5, 7.5])


def test_agent_target_update_hard_and_polyak():
    for tau in (1.0, 0.1):
        agent = _built_agent(tau=tau)
        online, before = agent.q_network.get_weights(), agent.target_network.get_weights()
        for layer, key, _ in nn.parameters(agent.q_network):
            layer.params[key] += 1.0
        agent.update_target()
        for o, b, t in zip(online, before, agent.target_network.get_weights(), strict=True):
            np.testing.assert_allclose(t, (1 - tau) * b + tau * (o + 1.0), rtol=1e-6, atol=1e-6)


def test_target_network_follows_every_target_update_interval_steps():
    env = ChainEnv(4)
    agent = _agent(env, hidden_sizes=(8,), learning_starts=5, target_update_interval=7, seed=1)
    agent.train(env, 14)  # learns from step 6 on; hard updates at steps 7 and 14
    for a, b in zip(agent.q_network.get_weights(), agent.target_network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    agent.train(env, 3)  # 3 more gradient steps, no update: the target lags behind
    assert not np.array_equal(
        agent.q_network.get_weights()[0], agent.target_network.get_weights()[0]
    )


def test_epsilon_follows_its_schedule_over_every_train_call():
    # the schedule's clock is num_timesteps, counted over all calls: a second call continues
    # the decay where the first stopped instead of restarting it
    env = ChainEnv(4)
    agent = _agent(env, hidden_sizes=(8,), learning_starts=0, epsilon=LinearSchedule(1.0, 0.2, 20))
    agent.train(env, 10)
    assert agent.epsilon(agent.num_timesteps) == pytest.approx(1.0 + (0.2 - 1.0) * 10 / 20)
    agent.train(env, 10)
    assert agent.num_timesteps == 20
    assert agent.epsilon(agent.num_timesteps) == 0.2


def test_exploration_takes_random_actions_with_probability_epsilon():
    env = ChainEnv(4)
    agent = _agent(env, hidden_sizes=(8,), seed=0, epsilon=0.5)
    obs = np.eye(4, dtype=np.float32)[[0] * 4000]
    greedy = agent.act(obs[0])
    explored = agent.act(obs, greedy=False)
    # the greedy half plus half of the uniformly random half
    assert abs(np.mean(explored == greedy) - 0.75) < 0.03
    assert DQNAgent(env.observation_space, env.action_space).epsilon == DEFAULT_EXPLORATION


# --------------------------------------------------------------------------- learning


def test_solves_a_chain_exactly():
    gamma = 0.9
    env = ChainEnv(5)
    agent = _agent(
        env,
        hidden_sizes=(32,),
        learning_rate=3e-3,
        gamma=gamma,
        learning_starts=200,
        train_frequency=1,
        target_update_interval=50,
        epsilon=LinearSchedule(1.0, 0.05, 1_500),
        buffer_size=5_000,
        batch_size=32,
        seed=0,
    )
    agent.train(env, 3_000)
    assert agent.evaluate(env, episodes=3, seed=0) == (1.0, 0.0)
    obs = np.eye(5, dtype=np.float32)[:4]  # the non-terminal states
    right = gamma ** (3 - np.arange(4))
    left = gamma * right[[0, 0, 1, 2]]
    np.testing.assert_allclose(agent.q_values(obs), np.stack([left, right], axis=1), atol=0.05)
    np.testing.assert_array_equal(agent.act(obs), [1, 1, 1, 1])


@pytest.mark.parametrize(("truncate", "expected"), [(False, 1.0), (True, 1.0 / (1 - 0.5))])
def test_bootstraps_on_truncation_not_on_termination(truncate, expected):
    # each step pays 1; a terminated episode is worth 1, a truncated one 1 + gamma V(s') = 2
    env = OneStepEnv(truncate)
    agent = _agent(
        env,
        hidden_sizes=(8,),
        gamma=0.5,
        learning_rate=1e-2,
        learning_starts=32,
        train_frequency=1,
        target_update_interval=20,
        seed=0,
    )
    agent.train(env, 1_500)
    np.testing.assert_array_equal(agent.buffer.terminated[: len(agent.buffer)], not truncate)
    np.testing.assert_allclose(agent.q_values([[1.0, -1.0]]), [[expected, expected]], atol=0.1)


def test_cartpole_improves_clearly_over_random_in_a_few_thousand_steps():
    env = gym.make("CartPole-v1")
    agent = _agent(
        env,
        learning_starts=500,
        train_frequency=1,
        target_update_interval=250,
        epsilon=LinearSchedule(1.0, 0.05, 1_500),
        seed=0,
    )
    history = agent.train(env, 5_000)
    random_mean = _random_policy_mean_return(env, 20)
    mean, _ = agent.evaluate(env, episodes=10, seed=1)
    assert mean > 3 * random_mean
    assert np.mean(history.episode_returns[-10:]) > 2 * np.mean(history.episode_returns[:10])
    assert history.losses.size == (5_000 - 500) and np.isfinite(history.losses).all()


def test_eval_env_keeps_the_best_evaluated_weights():
    eval_env = gym.make("CartPole-v1")
    agent = _agent(
        eval_env, learning_starts=200, train_frequency=1, target_update_interval=100, seed=1
    )
    history = agent.train(
        gym.make("CartPole-v1"), 2_500, eval_env=eval_env, eval_interval=1_000, eval_episodes=3
    )
    assert history.eval_timesteps.tolist() == [1_000, 2_000, 2_500]
    best = history.eval_returns.max()
    assert agent.evaluate(eval_env, 3, seed=agent.seed)[0] == best
    for a, b in zip(agent.q_network.get_weights(), agent.target_network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# rl-zoo-like settings: a wide network, bursts of 128 gradient steps every 256 env steps,
# a target that follows the online net every 10 steps (held fixed within a burst)
CARTPOLE_SETTINGS = {
    "hidden_sizes": (256, 256),
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1_000,
    "train_frequency": 256,
    "gradient_steps": 128,
    "target_update_interval": 10,
    "epsilon": LinearSchedule(1.0, 0.04, 8_000),  # 16% of the 50,000 steps
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_cartpole_reaches_475(seed):
    env = gym.make("CartPole-v1")
    agent = _agent(env, **CARTPOLE_SETTINGS, seed=seed)
    agent.train(
        env,
        50_000,
        eval_env=gym.make("CartPole-v1"),
        eval_interval=5_000,
        eval_episodes=5,
    )
    # 20 fresh episodes, other start states than those the checkpoint was chosen on
    mean, _ = agent.evaluate(gym.make("CartPole-v1"), episodes=20, seed=100 + seed)
    assert mean >= 475


# --------------------------------------------------------------------------- determinism, files


def test_same_seed_same_weights_after_training():
    def weights(seed):
        env = gym.make("CartPole-v1")
        agent = _agent(
            env, hidden_sizes=(16, 16), learning_starts=100, train_frequency=2, seed=seed
        )
        agent.train(env, 600)
        return agent.q_network.get_weights()

    first, second, other = weights(3), weights(3), weights(4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_save_load_round_trip_acts_identically(tmp_path):
    env = gym.make("CartPole-v1")
    agent = _agent(env, hidden_sizes=(16,), learning_starts=50, seed=2, gamma=0.95)
    agent.train(env, 300)
    path = tmp_path / "dqn.npz"
    agent.save(path)
    loaded = DQNAgent.load(path)
    assert loaded.get_config() == agent.get_config()
    assert loaded.num_timesteps == 300
    assert loaded.epsilon == agent.epsilon
    obs = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.q_values(obs), agent.q_values(obs))
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    assert loaded.evaluate(env, 2, seed=5) == agent.evaluate(env, 2, seed=5)
    loaded.train(env, 100)  # a loaded agent keeps training (fresh buffer, restored Adam state)
    assert loaded.num_timesteps == 400


def test_load_rejects_a_plain_model_file(tmp_path):
    model = nn.Sequential([nn.Dense(2)])
    model.build((None, 3))
    model.save(tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match=r"is a tradenn\.nn\.Model file, not a DQNAgent"):
        DQNAgent.load(tmp_path / "plain.npz")


def test_load_rejects_a_file_without_an_epsilon_schedule(tmp_path):
    # DQN files written before the schedule family stored epsilon_start/epsilon_end instead
    agent = _built_agent()
    arguments = {k: v for k, v in agent.get_config().items() if k != "epsilon"}
    network, arrays = network_state(agent.q_network)
    config = {
        "arguments": {**arguments, "epsilon_start": 1.0, "epsilon_end": 0.05},
        "obs_shape": [4],
        "n_actions": 2,
        "action_start": 0,
        "num_timesteps": 0,
        "network": network,
    }
    write_file(tmp_path / "old.npz", format_name(DQNAgent), config, arrays)
    with pytest.raises(ModelFileError, match=r"old\.npz holds an invalid DQNAgent") as error:
        DQNAgent.load(tmp_path / "old.npz")
    assert "\n" not in str(error.value)


def test_act_single_observation_returns_int_and_respects_action_start():
    env = ChainEnv(4)
    env.action_space = spaces.Discrete(2, start=-1)
    agent = _agent(env, hidden_sizes=(8,), learning_starts=10, seed=0)
    agent.train(env, 20)
    action = agent.act(np.eye(4, dtype=np.float32)[0])
    assert isinstance(action, int) and action in (-1, 0)


# --------------------------------------------------------------------------- errors


def test_rejects_a_continuous_action_space():
    with pytest.raises(TypeError, match="DQNAgent: needs a Discrete action space, got Box"):
        _agent(gym.make("Pendulum-v1"))


def test_rejects_a_discrete_observation_space():
    with pytest.raises(TypeError, match="needs a Box observation space, got Discrete"):
        _agent(gym.make("FrozenLake-v1"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"buffer_size": 2.5}, "buffer_size must be a positive integer"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"tau": 0.0}, r"tau must be in \(0, 1\]"),
        ({"learning_rate": -1e-3}, "learning_rate must be a finite number > 0"),
        ({"learning_starts": -1}, "learning_starts must be a non-negative integer"),
        ({"epsilon": 2}, r"epsilon must be in \[0, 1\]"),
        ({"epsilon": "greedy"}, "epsilon must be a number or a Schedule"),
        ({"hidden_sizes": (64, 0)}, "hidden_sizes entries must be a positive integer"),
        ({"max_grad_norm": 0}, "max_grad_norm must be a finite number > 0"),
        ({"target_update_interval": 0}, "target_update_interval must be a positive integer"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=f"DQNAgent: {message}"):
        _agent(ChainEnv(4), **kwargs)


def test_an_untrained_agent_acts_greedily_with_its_initial_network():
    agent = _built_agent()
    obs = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(agent.act(obs), agent.q_values(obs).argmax(axis=1))


def test_training_on_an_env_with_other_spaces_raises():
    agent = _built_agent()
    with pytest.raises(ValueError, match="DQNAgent: cannot train on an environment with"):
        agent.train(ChainEnv(6), 10)
    with pytest.raises(ValueError, match="DQNAgent: timesteps must be a positive integer"):
        agent.train(ChainEnv(4), 0)


def test_eval_env_must_not_be_the_training_env():
    env = ChainEnv(4)
    with pytest.raises(ValueError, match="eval_env must be a separate env instance"):
        _agent(env).train(env, 10, eval_env=env)


def test_act_rejects_an_observation_of_the_wrong_shape():
    agent = _built_agent()
    with pytest.raises(ValueError, match=r"DQNAgent.act: expected an observation of shape \(4,\)"):
        agent.act(np.zeros(3))
