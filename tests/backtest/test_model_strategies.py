"""Every model strategy in strategies/: a real edge is found and traded, after costs."""

from __future__ import annotations

import pytest

from strategies import available
from strategies.adapters import ForecastStrategy
from tradenn import data
from tradenn.backtest import Backtest

MODEL_STRATEGIES = {
    name: cls for name, cls in available().items() if issubclass(cls, ForecastStrategy)
}

# small settings so the default run stays fast; the strategies' defaults are for real data
SMALL = {
    "train_size": 500,
    "retrain": 250,
}
NETWORK = {"epochs": 8, "patience": 2, "lookback": 10}
OVERRIDES = {
    "lstm_forecast": NETWORK,
    "gru_forecast": NETWORK,
    "attention_forecast": NETWORK,
    "tcn_forecast": {**NETWORK, "lookback": 16},
    "transformer_lm": {"lookback": 16, "epochs": 5, "n_bins": 15, "learning_rate": 0.003},
}


def test_the_model_strategies_are_all_there():
    expected = {
        "linreg_forecast",
        "knn_pattern",
        "lstm_forecast",
        "gru_forecast",
        "attention_forecast",
        "tcn_forecast",
        "transformer_lm",
    }
    assert expected <= set(MODEL_STRATEGIES)


@pytest.fixture(scope="module")
def ou():
    return data.ornstein_uhlenbeck(2000, half_life=5, seed=21)


@pytest.mark.parametrize("name", sorted(MODEL_STRATEGIES))
def test_positive_sharpe_after_costs_on_mean_reverting_prices(name, ou):
    params = {**SMALL, **OVERRIDES.get(name, {})}
    result = Backtest(ou, MODEL_STRATEGIES[name], commission=0.0005).run(**params)
    assert result.stats["# Trades"] > 10
    assert result.stats["Sharpe Ratio"] > 0, result.diagnostics
    assert result.diagnostics["Directional Accuracy [%]"] > 50
