"""Reinforcement learning for trading: a Gymnasium market environment and agents.

* :class:`MarketEnv` (registered as ``tradenn/Market-v0``): observations are causal windows of
  normalized features plus the position; actions set a target position; the account follows the
  backtester's fill and cost convention, so an episode replays exactly in :class:`Backtest`.
* :class:`QLearningAgent` (tabular, with a :class:`Discretizer` for continuous observations) and
  :class:`DQNAgent` (a :mod:`tradenn.nn` Q-network, replay buffer, target network, Double DQN),
  both subclasses of :class:`Agent`: one protocol (:mod:`tradenn.rl.agent`) for building,
  training (:class:`TrainingHistory`), acting and evaluating (:func:`evaluate_policy`).
* Exploration schedules: the schedules of :mod:`tradenn.nn.schedules` (one family with the
  learning-rate schedules), re-exported here because every agent takes one as ``epsilon``.
"""

import gymnasium

from tradenn.nn.schedules import ConstantSchedule, ExponentialSchedule, LinearSchedule, Schedule
from tradenn.rl.agent import Agent, TrainingHistory, evaluate_policy
from tradenn.rl.dqn import DQNAgent
from tradenn.rl.env import DEFAULT_FEATURES, MarketEnv
from tradenn.rl.qlearning import Discretizer, QLearningAgent
from tradenn.rl.replay import ReplayBuffer

if "tradenn/Market-v0" not in gymnasium.registry:
    gymnasium.register("tradenn/Market-v0", entry_point="tradenn.rl.env:MarketEnv")

__all__ = [
    "DEFAULT_FEATURES",
    "Agent",
    "ConstantSchedule",
    "DQNAgent",
    "Discretizer",
    "ExponentialSchedule",
    "LinearSchedule",
    "MarketEnv",
    "QLearningAgent",
    "ReplayBuffer",
    "Schedule",
    "TrainingHistory",
    "evaluate_policy",
]
