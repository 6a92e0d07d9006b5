"""Every ready strategy runs on bundled data and trades by its own rule."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import StrategyNotFound, available, load_strategy
from tradenn.backtest import Backtest
from tradenn.data import load
from tradenn.features import bollinger, rsi

NAMES = [
    "bollinger_breakout",
    "buy_and_hold",
    "donchian_trend",
    "ema_momentum",
    "rsi_mean_reversion",
    "sma_cross",
]
MODEL_NAMES = [
    "attention_forecast",
    "gru_forecast",
    "knn_pattern",
    "linreg_forecast",
    "lstm_forecast",
    "tcn_forecast",
    "transformer_lm",
]
AGENT_NAMES = ["dqn", "q_learning"]
PORTFOLIO_NAMES = ["equal_weight", "inverse_volatility", "xs_momentum"]


@pytest.fixture(scope="module")
def spx():
    return load("SPX", "2005-01-01", "2012-12-31")


def test_the_registry_lists_every_strategy_module():
    assert sorted(available()) == sorted(NAMES + MODEL_NAMES + AGENT_NAMES + PORTFOLIO_NAMES)


@pytest.mark.parametrize("name", ["adapters", "_registry", "strategies.adapters"])
def test_the_adapters_subpackage_and_private_modules_are_no_strategies(name):
    with pytest.raises(StrategyNotFound, match=f"unknown strategy '{name}'; available: "):
        load_strategy(name)


def test_the_model_and_agent_strategies_build_on_the_adapters():
    from strategies.adapters import AgentStrategy, ForecastStrategy, NeuralForecastStrategy

    for name in MODEL_NAMES:
        assert issubclass(load_strategy(name), ForecastStrategy), name
    for name in ("attention_forecast", "gru_forecast", "lstm_forecast", "tcn_forecast"):
        assert issubclass(load_strategy(name), NeuralForecastStrategy), name
    for name in AGENT_NAMES:
        assert issubclass(load_strategy(name), AgentStrategy), name


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_runs_on_bundled_data_without_rejections(name, spx):
    result = Backtest(spx, load_strategy(name), commission=0.001, finalize_trades=True).run()
    assert result.stats["# Trades"] >= 1
    assert result.stats["# Orders Rejected"] == 0
    assert np.isfinite(result.equity).all() and (result.equity > 0).all()


def test_buy_and_hold_tracks_the_market_less_costs(spx):
    result = Backtest(spx, load_strategy("buy_and_hold"), commission=0.001).run()
    units = result.position.iloc[-1]
    # Bought at bar 1's open with all cash; the equity then moves one-for-one with the close.
    move = units * (spx.Close.iloc[-1] - spx.Close.iloc[1])
    assert result.equity.iloc[-1] - result.equity.iloc[1] == pytest.approx(move)
    assert units == (10_000 // (spx.Open.iloc[1] * 1.001))


def test_rsi_mean_reversion_only_buys_when_oversold(spx):
    result = Backtest(spx, load_strategy("rsi_mean_reversion")).run()
    values = rsi(spx.Close.to_numpy(), 14)
    decided = result.trades.EntryBar.to_numpy() - 1  # decided at the close before the fill
    assert len(decided) > 3 and (values[decided] < 30).all()


def test_bollinger_breakout_enters_above_the_upper_band(spx):
    result = Backtest(spx, load_strategy("bollinger_breakout")).run()
    _, upper, _ = bollinger(spx.Close.to_numpy(), 20, 2.0)
    decided = result.trades.EntryBar.to_numpy() - 1
    assert (spx.Close.to_numpy()[decided] > upper[decided]).all()


def test_sma_cross_reverses_and_is_always_in_the_market_after_the_first_cross(spx):
    result = Backtest(spx, load_strategy("sma_cross")).run()
    sizes = np.sign(result.trades.Size.to_numpy())
    assert (sizes[1:] == -sizes[:-1]).all()


def test_bad_parameters_are_reported_by_the_strategy(spx):
    with pytest.raises(Exception, match="need 0 < fast < slow"):
        Backtest(spx, load_strategy("sma_cross")).run(fast=30, slow=10)


def test_strategies_load_from_a_file_path(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from tradenn.backtest import Strategy\n"
        "class Mine(Strategy):\n    level = 3\n    def next(self):\n        pass\n"
    )
    assert load_strategy(f"{path}:Mine").parameters() == {"level": 3}
    assert load_strategy(str(path)).__name__ == "Mine"
    with pytest.raises(StrategyNotFound, match="no Strategy class 'Other'"):
        load_strategy(f"{path}:Other")
    with pytest.raises(StrategyNotFound, match="unknown strategy 'nope'"):
        load_strategy("nope")


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_runs_with_fractional_units(name, spx):
    # regression: `if not self.position` raised when fractional fills left numpy units
    result = Backtest(spx, load_strategy(name), fractional=True).run()
    assert result.stats["# Orders Rejected"] == 0 and np.isfinite(result.equity).all()
