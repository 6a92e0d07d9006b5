"""QLearningAgent and Discretizer: optimal policies against value iteration, discretization,
the update rule by hand, determinism, persistence, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from tradenn.nn.serialization import ModelFileError
from tradenn.rl import ExponentialSchedule, LinearSchedule, evaluate_policy
from tradenn.rl.qlearning import Discretizer, QLearningAgent

GAMMA = 0.99


def value_iteration(env: gym.Env, gamma: float = GAMMA, tolerance: float = 1e-12) -> np.ndarray:
    """Optimal action values Q*(s, a) (n_states, n_actions) from the model ``env.unwrapped.P``
    (``P[s][a]`` = list of (probability, next state, reward, terminated))."""
    model = env.unwrapped.P
    n_states, n_actions = len(model), len(model[0])
    q = np.zeros((n_states, n_actions))
    while True:
        v = q.max(axis=1)
        new = np.array(
            [
                [
                    sum(p * (r + gamma * v[s2] * (not done)) for p, s2, r, done in model[s][a])
                    for a in range(n_actions)
                ]
                for s in range(n_states)
            ]
        )
        if np.abs(new - q).max() < tolerance:
            return new
        q = new


def non_terminal_states(env: gym.Env) -> list[int]:
    """States with at least one transition that is not a self-loop of a terminal state."""
    model = env.unwrapped.P
    return [s for s in model if not all(done is True and s2 == s for _, s2, _, done in model[s][0])]


class LineWalk(gym.Env):
    """A continuous 1-D corridor: position in [0, 1], start near 0; action 1 moves right by
    about 0.1, action 0 left; reaching 1 terminates with reward 1, other steps cost 0.01."""

    observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float64)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(0.0, 0.1)
        return np.array([self.position]), {}

    def step(self, action):
        move = 0.1 if action == 1 else -0.1
        self.position = float(np.clip(self.position + move + self.np_random.normal(0, 0.01), 0, 1))
        done = self.position >= 1.0
        return np.array([self.position]), (1.0 if done else -0.01), done, False, {}


class OneStep(gym.Env):
    """Two states; from state 0 any action gives reward 1 and lands in state 1, ending the
    episode as terminated or as truncated."""

    observation_space = spaces.Discrete(2)
    action_space = spaces.Discrete(1)

    def __init__(self, terminated: bool) -> None:
        self.terminated = terminated

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, 1.0, self.terminated, not self.terminated, {}


def frozen_lake(slippery: bool) -> gym.Env:
    return gym.make("FrozenLake-v1", is_slippery=slippery)


def trained_frozen_lake_agent(slippery: bool, timesteps: int, seed: int = 0) -> QLearningAgent:
    env = frozen_lake(slippery)
    agent = QLearningAgent(
        env.observation_space,
        env.action_space,
        # slippery: a decaying step size averages out the noisy transitions (state 0's four
        # action values lie within 0.02 of each other, so a noisy table can pick one that
        # never leaves the top row); explore less over the first third of the steps.
        # Deterministic: a uniformly random behaviour policy (Q-learning is off-policy)
        # visits every state, so the whole table converges
        learning_rate=LinearSchedule(0.1, 0.005, timesteps) if slippery else 0.5,
        gamma=GAMMA,
        epsilon=LinearSchedule(1.0, 0.05, timesteps // 3) if slippery else 1.0,
        seed=seed,
    )
    agent.train(env, timesteps)
    return agent


# --------------------------------------------------------------------------- FrozenLake


def test_deterministic_frozen_lake_policy_is_optimal():
    env = frozen_lake(slippery=False)
    agent = trained_frozen_lake_agent(slippery=False, timesteps=10_000)
    optimal = value_iteration(env)
    for state in non_terminal_states(env):
        learned = agent.q_table[state]
        assert np.sum(learned == learned.max()) == 1, f"state {state} has tied greedy actions"
        best = np.flatnonzero(optimal[state] >= optimal[state].max() - 1e-9)
        assert learned.argmax() in best, f"state {state}: {learned.argmax()} not in {best}"


def test_deterministic_frozen_lake_greedy_walk_takes_the_shortest_path():
    env = frozen_lake(slippery=False)
    agent = trained_frozen_lake_agent(slippery=False, timesteps=10_000)
    obs, _ = env.reset(seed=0)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    assert total == 1.0
    assert steps == 6  # Manhattan distance from (0, 0) to (3, 3)
    assert agent.evaluate(env, 20, seed=1) == (1.0, 0.0)


def test_slippery_frozen_lake_succeeds_like_the_optimal_policy():
    env = frozen_lake(slippery=True)
    agent = trained_frozen_lake_agent(slippery=True, timesteps=150_000)
    learned, _ = agent.evaluate(env, 1000, seed=123)
    reference = QLearningAgent(env.observation_space, env.action_space, seed=0)
    reference.q_table = value_iteration(env)
    optimal, _ = reference.evaluate(env, 1000, seed=123)
    assert optimal > 0.7  # sanity check of the reference (about 0.74 under the 100-step limit)
    assert learned >= 0.7
    assert learned >= optimal - 0.06


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slippery_frozen_lake_longer_training_for_several_seeds(seed):
    env = frozen_lake(slippery=True)
    agent = trained_frozen_lake_agent(slippery=True, timesteps=400_000, seed=seed)
    assert agent.evaluate(env, 2000, seed=seed + 100)[0] >= 0.7


# --------------------------------------------------------------------------- the update rule


@pytest.mark.parametrize(("terminated", "expected"), [(True, 1.0), (False, 1.0 + 0.5 * 2.0)])
def test_update_bootstraps_on_truncation_but_not_on_termination(terminated, expected):
    env = OneStep(terminated)
    # lr = 1 replaces Q[0, 0] by its target; Q[1, :] stays at initial_q = 2
    agent = QLearningAgent(
        env.observation_space, env.action_space, learning_rate=1.0, gamma=0.5, initial_q=2.0
    )
    agent.train(env, 1)
    assert agent.q_table[0, 0] == expected
    assert agent.q_table[1, 0] == 2.0


def test_truncated_episodes_end_and_the_history_counts_them():
    env = TimeLimit(LineWalk(), max_episode_steps=3)
    agent = QLearningAgent(
        env.observation_space, env.action_space, discretizer=Discretizer(5), epsilon=1.0
    )
    history = agent.train(env, 22)  # 7 episodes of 3 steps, and one step of an 8th
    assert history.episode_lengths.tolist() == [3] * 7
    assert history.episode_lengths.dtype == np.int64
    np.testing.assert_allclose(history.episode_returns, -0.03)
    assert history.episode_timesteps.tolist() == [3, 6, 9, 12, 15, 18, 21]
    assert history.losses.size == 0 and history.eval_returns.size == 0
    assert agent.num_timesteps == 22
    agent.train(env, 3)
    assert agent.num_timesteps == 25  # the clock of the schedules runs over every call


def test_ties_go_to_the_lowest_action_when_acting_exploiting_and_evaluating():
    env = frozen_lake(slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, epsilon=0.0, seed=0)
    assert {agent.act(0) for _ in range(50)} == {0}  # the deployed policy: lowest action
    assert {agent.act(0, greedy=False) for _ in range(50)} == {0}  # exploiting: the same
    # evaluate scores that policy: LEFT in the corner forever, never the goal, every episode
    assert agent.evaluate(env, 5, seed=0) == (0.0, 0.0)
    agent.q_table[0, 2] = 1.0
    assert {agent.act(0) for _ in range(50)} == {2}
    assert {agent.act(0, greedy=False) for _ in range(50)} == {2}


def test_non_greedy_act_explores_with_epsilon():
    env = frozen_lake(slippery=False)
    agent = QLearningAgent(env.observation_space, env.action_space, epsilon=0.5, seed=0)
    agent.q_table[0, 2] = 1.0
    actions = np.array([agent.act(0, greedy=False) for _ in range(4000)])
    # greedy half plus a quarter of the random half
    assert abs(np.mean(actions == 2) - 0.625) < 0.03


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_q_tables_and_another_seed_does_not():
    tables = [
        trained_frozen_lake_agent(slippery=True, timesteps=5_000, seed=seed).q_table
        for seed in (4, 4, 5)
    ]
    np.testing.assert_array_equal(tables[0], tables[1])
    assert not np.array_equal(tables[0], tables[2])


# --------------------------------------------------------------------------- discretizer


def test_uniform_discretizer_bins_by_hand():
    discretizer = Discretizer(bins=[4, 2], low=[0.0, -1.0], high=[1.0, 1.0])
    discretizer.fit_space(spaces.Box(-np.inf, np.inf, shape=(2,)))
    np.testing.assert_allclose(discretizer.edges_[0], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(discretizer.edges_[1], [0.0])
    assert discretizer.n_states == 8
    # state = bin_0 * 2 + bin_1; values outside the range fall in the end bins
    assert discretizer.transform([0.1, -0.5]) == 0
    assert discretizer.transform([0.3, 0.5]) == 3
    assert discretizer.transform([0.5, 0.0]) == 5  # a value on an edge goes up
    assert discretizer.transform([7.0, -9.0]) == 6
    assert discretizer.transform([-3.0, 9.0]) == 1


def test_discretizer_takes_bounds_from_the_box():
    discretizer = Discretizer(bins=3).fit_space(spaces.Box(0.0, 3.0, shape=(2,)))
    np.testing.assert_allclose(discretizer.edges_[1], [1.0, 2.0])
    assert discretizer.transform([2.5, 0.5]) == 2 * 3 + 0


def test_quantile_discretizer_fills_bins_evenly():
    rng = np.random.default_rng(0)
    samples = np.column_stack([rng.exponential(size=4000), rng.normal(size=4000)])
    discretizer = Discretizer(bins=[4, 5], strategy="quantile").fit(samples)
    states = discretizer.transform_batch(samples)
    counts = np.bincount(states // 5, minlength=4)  # first feature's bin
    np.testing.assert_array_equal(counts, [1000] * 4)
    np.testing.assert_allclose(discretizer.edges_[0], np.quantile(samples[:, 0], [0.25, 0.5, 0.75]))


def test_transform_batch_matches_transform_row_by_row():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(200, 3))
    discretizer = Discretizer(bins=[3, 1, 6]).fit(samples)
    batch = discretizer.transform_batch(samples)
    assert batch.shape == (200,)
    assert batch.tolist() == [discretizer.transform(row) for row in samples]
    assert set(batch.tolist()) <= set(range(discretizer.n_states))


def test_box_agent_learns_the_line_walk_better_than_random():
    env = TimeLimit(LineWalk(), max_episode_steps=40)
    agent = QLearningAgent(
        env.observation_space,
        env.action_space,
        discretizer=Discretizer(bins=10),
        epsilon=ExponentialSchedule(1.0, 0.05, 0.9995),
        learning_rate=0.2,
        seed=0,
    )
    agent.train(env, 6_000)
    env.action_space.seed(1)
    random_return, _ = evaluate_policy(lambda obs: env.action_space.sample(), env, 100, seed=7)
    learned_return, _ = agent.evaluate(env, 100, seed=7)
    assert learned_return > 0.85  # at most ~11 steps of -0.01 before the reward of 1
    assert learned_return > random_return + 0.5


@pytest.mark.slow
def test_cartpole_with_coarse_bins_beats_random():
    env = gym.make("CartPole-v1")
    bounds = {"bins": [1, 1, 6, 6], "low": [-2.4, -3, -0.21, -2], "high": [2.4, 3, 0.21, 2]}
    agent = QLearningAgent(
        env.observation_space,
        env.action_space,
        discretizer=Discretizer(**bounds),
        epsilon=LinearSchedule(1.0, 0.05, 50_000),
        seed=2,
    )
    agent.train(env, 100_000)
    env.action_space.seed(3)
    random_return, _ = evaluate_policy(lambda obs: env.action_space.sample(), env, 50, seed=3)
    assert agent.evaluate(env, 50, seed=3)[0] > 4 * random_return


def test_multi_discrete_states_are_numbered_in_c_order():
    space = spaces.MultiDiscrete([3, 4], start=[1, 0])
    agent = QLearningAgent(space, spaces.Discrete(2))
    assert agent.n_states == 12
    agent.q_table[(3 - 1) * 4 + 2, 1] = 1.0
    assert agent.act(np.array([3, 2])) == 1


# --------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path):
    agent = trained_frozen_lake_agent(slippery=True, timesteps=3_000)
    path = tmp_path / "agent.npz"
    agent.save(path)
    loaded = QLearningAgent.load(path)
    np.testing.assert_array_equal(loaded.q_table, agent.q_table)
    assert loaded.get_config() == agent.get_config()
    assert loaded.num_timesteps == agent.num_timesteps == 3_000
    assert loaded.epsilon(loaded.num_timesteps) == agent.epsilon(agent.num_timesteps)
    assert loaded.observation_space == agent.observation_space
    assert np.load(path, allow_pickle=False)["q_table"].shape == (16, 4)


def test_save_load_keeps_the_discretizer_and_the_action_start(tmp_path):
    rng = np.random.default_rng(2)
    space = spaces.Box(-np.inf, np.inf, shape=(2, 2))
    discretizer = Discretizer(bins=3, strategy="quantile").fit(rng.normal(size=(100, 4)))
    agent = QLearningAgent(space, spaces.Discrete(3, start=-1), discretizer=discretizer)
    agent.q_table[:] = rng.normal(size=agent.q_table.shape)
    agent.save(tmp_path / "box.npz")
    loaded = QLearningAgent.load(tmp_path / "box.npz")
    observations = rng.normal(size=(50, 2, 2))
    actions = [agent.act(obs) for obs in observations]
    assert [loaded.act(obs) for obs in observations] == actions
    assert set(actions) <= {-1, 0, 1}
    for original, restored in zip(discretizer.edges_, loaded.discretizer.edges_, strict=True):
        np.testing.assert_array_equal(original, restored)


def test_load_rejects_foreign_and_missing_files(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(ModelFileError, match="is not a QLearningAgent file"):
        QLearningAgent.load(foreign)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="not a readable QLearningAgent file"):
        QLearningAgent.load(garbage)
    with pytest.raises(FileNotFoundError, match="No QLearningAgent file at"):
        QLearningAgent.load(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- errors


def one_line(error: pytest.ExceptionInfo) -> bool:
    return "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, r"learning_rate must be in \(0, 1\]"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"epsilon": -0.1}, r"epsilon must be in \[0, 1\]"),
        ({"epsilon": "greedy"}, "epsilon must be a number or a Schedule"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"max_table_size": 10}, r"the Q-table would have 16 states x 4 actions"),
        ({"discretizer": Discretizer(3)}, "a discretizer applies to Box observation spaces only"),
    ],
)
def test_bad_agent_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"QLearningAgent: {message}") as error:
        QLearningAgent(spaces.Discrete(16), spaces.Discrete(4), **kwargs)
    assert one_line(error)


def test_unsupported_spaces():
    with pytest.raises(ValueError, match="QLearningAgent: action_space must be Discrete"):
        QLearningAgent(spaces.Discrete(4), spaces.Box(-1, 1, shape=(1,)))
    with pytest.raises(ValueError, match="QLearningAgent: a Box observation space needs"):
        QLearningAgent(spaces.Box(-1, 1, shape=(2,)), spaces.Discrete(2))
    with pytest.raises(ValueError, match="Discretizer: feature 0 of the Box is unbounded"):
        unbounded = spaces.Box(-np.inf, 1, shape=(2,))
        QLearningAgent(unbounded, spaces.Discrete(2), discretizer=Discretizer())


def test_absurd_discretization_is_refused_before_allocating():
    box = spaces.Box(-1.0, 1.0, shape=(12,))
    with pytest.raises(ValueError, match=r"1e\+12 entries, above max_table_size") as error:
        QLearningAgent(box, spaces.Discrete(1), discretizer=Discretizer(bins=10))
    assert one_line(error)


def test_environment_must_match_the_agent():
    agent = QLearningAgent(spaces.Discrete(16), spaces.Discrete(3))
    with pytest.raises(ValueError, match="QLearningAgent: cannot train on an environment with"):
        agent.train(frozen_lake(slippery=False), 1)
    agent = QLearningAgent(spaces.Discrete(16), spaces.Discrete(4))
    with pytest.raises(ValueError, match="QLearningAgent: timesteps must be a positive integer"):
        agent.train(frozen_lake(slippery=False), 0)
    with pytest.raises(ValueError, match="QLearningAgent: cannot evaluate on an environment"):
        agent.evaluate(gym.make("CartPole-v1"), 1)
    with pytest.raises(ValueError, match="QLearningAgent: episodes must be a positive integer"):
        agent.evaluate(frozen_lake(slippery=False), 0)
    with pytest.raises(ValueError, match="observation 16 is outside Discrete"):
        agent.act(16)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Discretizer(bins=0), "Discretizer: bins must be a positive integer"),
        (lambda: Discretizer(low=np.nan), "Discretizer: low must be a finite number"),
        (lambda: Discretizer(strategy="kmeans"), "Discretizer: strategy must be"),
        (lambda: Discretizer(3, low=0, strategy="quantile"), "apply to strategy='uniform' only"),
        (lambda: Discretizer(2, low=1.0, high=0.0).fit(np.zeros((3, 1))), "needs low < high"),
        (lambda: Discretizer(2).transform([0.0]), "call fit"),
        (lambda: Discretizer(2).fit(np.eye(2)).transform([1.0]), r"expected observations"),
        (lambda: Discretizer(2, strategy="quantile").fit(np.ones(5)), r"fit needs observations"),
    ],
)
def test_bad_discretizer_use(build, message):
    with pytest.raises(ValueError, match=message) as error:
        build()
    assert one_line(error)
