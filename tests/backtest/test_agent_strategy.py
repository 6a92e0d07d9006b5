"""AgentStrategy: RL agents trained walk-forward and acting through positions()."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from strategies import load_strategy
from strategies.adapters import AgentStrategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.backtest.engine import BacktestError
from tradenn.backtest.series import LookAheadError
from tradenn.cli import main
from tradenn.errors import StrategyFailure

QLearning = load_strategy("q_learning")


class Counting(QLearning):
    """Counts trainings (class-wide) and remembers the last bar each training env saw."""

    _trainings: ClassVar[list] = []  # private: public class attributes are parameters

    def train_agent(self, agent, env):
        type(self)._trainings.append(env.unwrapped.data.index[-1])
        super().train_agent(agent, env)


class PeekingEnv(QLearning):
    """Shows the agent tomorrow's return: must be caught by the backtester."""

    def make_env(self, data, *, training):
        from tradenn.rl.env import MarketEnv

        tomorrow = np.log(data["Close"]).diff().shift(-1).fillna(0.0).to_frame("tomorrow")
        length = self.episode_length if training else None
        return MarketEnv(data, window=1, features=tomorrow, episode_length=length)


@pytest.fixture(scope="module")
def ou():
    return data.ornstein_uhlenbeck(2000, half_life=5, seed=21)


@pytest.mark.parametrize("name", ["q_learning", "dqn"])
def test_agents_learn_mean_reversion_out_of_sample(ou, name):
    result = Backtest(ou, load_strategy(name), commission=0.0005, fractional=True).run(
        train_size=700, retrain=500
    )
    assert result.stats["Sharpe Ratio"] > 0.5
    assert result.stats["# Trades"] > 20
    assert result.diagnostics["Retrainings"] == 3


def test_each_block_is_trained_once_on_the_past_only(ou):
    Counting._trainings = []
    result = Backtest(ou, Counting, commission=0.0005).run(train_size=700, retrain=500, episodes=20)
    position = result.position.to_numpy()
    first_trade = np.flatnonzero(position)[0]
    # the three blocks' training data end at their first decision bars, and the engine's two
    # reruns on truncated data reuse the cached agents
    assert len(Counting._trainings) == 3
    ends = [ou.index.get_loc(stamp) for stamp in Counting._trainings]
    assert ends == sorted(ends) and ends[1] - ends[0] == 500 and ends[2] - ends[1] == 500
    assert first_trade > ends[0]  # filled the bar after the first decision


def test_peeking_at_tomorrow_is_caught(ou):
    with pytest.raises(LookAheadError, match="future"):
        Backtest(ou, PeekingEnv).run(train_size=700, retrain=500, episodes=5)


def test_bad_settings_are_backtest_errors(ou):
    with pytest.raises(BacktestError, match="leave nothing to trade"):
        Backtest(ou, QLearning).run(train_size=5000)
    with pytest.raises(BacktestError, match="retrain must be a positive integer"):
        Backtest(ou, QLearning).run(retrain=0)
    # an unfinished strategy is one line naming it (issue 19); the cause is kept
    with pytest.raises(StrategyFailure, match="must define make_agent") as failure:
        Backtest(ou, AgentStrategy).run(train_size=700)
    assert isinstance(failure.value.__cause__, NotImplementedError)


def test_cli_backtests_an_agent(capsys):
    argv = ["backtest", "q_learning", "--end", "2006-12-31", "--no-plot", "--fractional"]
    assert main([*argv, "--param", "episodes=20", "--param", "retrain=400"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("QLearning(") and "Retrainings" in out
    argv[1] = "dqn"
    assert main([*argv, "--param", "timesteps=1500", "--param", "retrain=400", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["strategy"] == "Dqn" and payload["diagnostics"]["Retrainings"] == 3
