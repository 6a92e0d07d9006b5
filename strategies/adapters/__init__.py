"""Adapters that turn a forecaster or an agent into a :class:`tradenn.backtest.Strategy`.

They sit above the engine, next to the ready strategies that use them: the engine
(:mod:`tradenn.backtest`) knows no model or agent, and these classes bring
:mod:`tradenn.models`, :mod:`tradenn.features` and :mod:`tradenn.rl` to it.

>>> from strategies.adapters import ForecastStrategy, NeuralForecastStrategy, AgentStrategy

- :class:`ForecastStrategy`, :class:`NeuralForecastStrategy` (:mod:`strategies.adapters.forecast`):
  a walk-forward forecast turned into target positions.
- :class:`AgentStrategy` (:mod:`strategies.adapters.agent`): a reinforcement-learning agent
  trained walk-forward, acting greedily.

This is a subpackage, not a strategy: :func:`strategies.available` does not list it.
"""

from strategies.adapters.agent import AgentStrategy
from strategies.adapters.forecast import ForecastStrategy, NeuralForecastStrategy

__all__ = ["AgentStrategy", "ForecastStrategy", "NeuralForecastStrategy"]
