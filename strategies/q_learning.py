"""Tabular Q-learning on a coarse market state, trained walk-forward."""

from strategies.adapters import AgentStrategy
from tradenn.rl.qlearning import Discretizer, QLearningAgent
from tradenn.rl.schedules import LinearSchedule


class QLearning(AgentStrategy):
    """Long, flat or short as a tabular Q-learning agent decides from a coarse state.

    The state: the price's distance from its ``trend``-bar average and the last ``momentum``
    bars' return (both z-scored causally and cut into ``bins`` bins over [-2, 2]), and the
    current position. Retrained every ``retrain`` bars on everything before (``episodes``
    random ``episode_length``-bar episodes, epsilon decaying linearly from 1 to 0.05)."""

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
        steps = self.episodes * (self.episode_length or 1000)
        return QLearningAgent(
            env.observation_space,
            env.action_space,
            discretizer=discretizer,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            epsilon=LinearSchedule(1.0, 0.05, steps),
            seed=self.seed,
        )

    def train_agent(self, agent, env):
        agent.train(env, self.episodes, seed=self.seed, progress=self.progress)
