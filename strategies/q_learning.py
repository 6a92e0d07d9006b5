"""Tabular Q-learning on a coarse market state, trained walk-forward."""

from strategies.adapters import AgentStrategy
from tradenn.rl import Discretizer, LinearSchedule, QLearningAgent


class QLearning(AgentStrategy):
    """Long, flat or short as a tabular Q-learning agent decides from a coarse state.

    The state: the price's distance from its ``trend``-bar average and the last ``momentum``
    bars' return (both z-scored causally and cut into ``bins`` bins over [-2, 2]), and the
    current position. Retrained every ``retrain`` bars on everything before (the steps of
    ``episodes`` random ``episode_length``-bar episodes, epsilon decaying linearly from 1 to
    0.05 over them)."""

    bins = 5
    episodes = 200
    learning_rate = 0.05
    gamma = 0.9

    def make_agent(self, env):
        features = env.observation_space.shape[0] - 1  # the last entry is the position
        discretizer = Discretizer(
            bins=[self.bins] * features + [3],
            low=[-2.0] * features + [-1.5],
            high=[2.0] * features + [1.5],
        )
        return QLearningAgent(
            env.observation_space,
            env.action_space,
            discretizer=discretizer,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            epsilon=LinearSchedule(1.0, 0.05, self._timesteps(env)),
            seed=self.seed,
        )

    def train_agent(self, agent, env):
        agent.train(env, self._timesteps(env), progress=self.progress)

    def _timesteps(self, env):
        """Environment steps of ``episodes`` full episodes (agents train by steps)."""
        market = env.unwrapped
        return self.episodes * (market.episode_length or len(market.data) - 1 - market.first_bar)
