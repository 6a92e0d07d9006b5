"""A Deep Q-Network trading agent (tradenn.nn MLP), trained walk-forward."""

from strategies.adapters import AgentStrategy
from tradenn.rl import DQNAgent, LinearSchedule


class Dqn(AgentStrategy):
    """Long, flat or short as a Double DQN decides from the market state and its position.

    The observation: the last ``window`` bars of the causal state features (by default the
    distance from the ``trend``-bar average and the ``momentum``-bar return; ``features=
    "default"`` uses six indicators) and the current position; the Q-network is an MLP of two
    ``hidden``-unit layers. Retrained every ``retrain`` bars on everything before, for
    ``timesteps`` environment steps over random ``episode_length``-bar episodes, epsilon
    decaying linearly from 1 to 0.05 over the first ``exploration_fraction`` of them."""

    hidden = 64
    timesteps = 20_000
    learning_rate = 0.0003
    gamma = 0.5
    exploration_fraction = 0.3
    target_update_interval = 1000

    def make_agent(self, env):
        decay = round(self.exploration_fraction * self.timesteps)
        return DQNAgent(
            env.observation_space,
            env.action_space,
            hidden_sizes=(self.hidden, self.hidden),
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            epsilon=LinearSchedule(1.0, 0.05, decay) if decay >= 1 else 0.05,
            target_update_interval=self.target_update_interval,
            learning_starts=min(1000, self.timesteps // 4),
            seed=self.seed,
        )

    def train_agent(self, agent, env):
        agent.train(env, self.timesteps, progress=self.progress)
