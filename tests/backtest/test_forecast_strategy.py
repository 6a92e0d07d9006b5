"""ForecastStrategy: walk-forward forecasts -> positions through the backtester."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from strategies.adapters import ForecastStrategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.backtest.engine import BacktestError
from tradenn.backtest.series import LookAheadError
from tradenn.features.windows import return_target


class CountingOLS:
    """Ridge-free OLS that counts its fits (class-wide) so tests can see the cache work."""

    input_kind = "tabular"
    fits = 0

    def get_config(self):
        return {}

    def fit(self, X, y):
        type(self).fits += 1
        A = np.column_stack([np.ones(len(X)), X])
        self.w = np.linalg.lstsq(A, y, rcond=None)[0]
        return self

    def predict(self, X):
        return np.column_stack([np.ones(len(X)), X]) @ self.w


class MeanReversionOLS(ForecastStrategy):
    """OLS on the full feature pipeline."""

    features = "full"
    lookback = 1
    train_size = 500
    retrain = 250

    def make_model(self):
        return CountingOLS()


class Peeking(MeanReversionOLS):
    """Feeds tomorrow's return in as a feature: must be caught."""

    def make_features(self, data):
        return return_target(data).shift(-1).to_frame("tomorrow")


@pytest.fixture(scope="module")
def ou():
    return data.ornstein_uhlenbeck(2500, half_life=5, seed=11)


def test_model_strategy_trades_its_forecast_and_reports_oos_quality(ou):
    CountingOLS.fits = 0
    result = Backtest(ou, MeanReversionOLS, commission=0.0005).run()
    diag = result.diagnostics
    assert diag["Refits"] == math.ceil(diag["Forecasts"] / 250)
    # the engine runs positions() three times (full + two truncations for its look-ahead
    # check); the truncated runs reuse the cached models, so each fold is fitted exactly once
    assert CountingOLS.fits == diag["Refits"]
    assert diag["OOS R2"] > 0.01 and diag["Directional Accuracy [%]"] > 54
    assert 0 <= diag["DM p-value"] <= 1 and diag["Training Time [s]"] > 0
    # flat before the first forecast, in the market after it
    first = result.position.to_numpy().nonzero()[0][0]
    assert first > 500
    assert result.stats["Sharpe Ratio"] > 1  # a known edge on mean-reverting prices
    assert result.stats["# Trades"] > 20


def test_peeking_at_the_future_is_caught(ou):
    with pytest.raises(LookAheadError, match="future"):
        Backtest(ou, Peeking).run()


class FakeResult:
    def __init__(self, forecast, scale, p_up=None):
        index = pd.date_range("2020-01-01", periods=len(forecast), freq="D")
        self.predictions = pd.Series(forecast, index=index)
        self.target_scale = pd.Series(scale, index=index)
        self.p_up = None if p_up is None else pd.Series(p_up, index=index)


def sizing(**params):
    strategy = MeanReversionOLS.__new__(MeanReversionOLS)
    for name, value in params.items():
        setattr(strategy, name, value)
    return strategy


def test_sizing_rules():
    forecast = np.array([0.02, -0.004, 0.001, 0.0, -0.03])
    fake = FakeResult(forecast, 0.01)
    np.testing.assert_array_equal(sizing(sizing="sign").size(fake), [1, -1, 1, 0, -1])
    np.testing.assert_array_equal(
        sizing(sizing="threshold", threshold=0.5).size(fake), [1, 0, 0, 0, -1]
    )
    np.testing.assert_array_equal(sizing(sizing="sign", long_only=True).size(fake), [1, 0, 1, 0, 0])
    # probability: 2 Phi(forecast / s) - 1 without a model probability ...
    expected = [math.erf(f / 0.01 / math.sqrt(2)) for f in forecast]
    np.testing.assert_allclose(sizing(sizing="probability").size(fake), expected, rtol=1e-12)
    # ... and 2 p - 1 with one
    fake = FakeResult(forecast, 0.01, p_up=[0.9, 0.4, 0.5, 0.55, 0.0])
    np.testing.assert_allclose(
        sizing(sizing="probability").size(fake), [0.8, -0.2, 0.0, 0.1, -1.0], atol=1e-12
    )


def test_bad_parameters_are_backtest_errors(ou):
    for params, message in (
        ({"sizing": "kelly"}, "sizing must be one of"),
        ({"features": "all"}, "features must be one of"),
        ({"threshold": -1.0}, "threshold must be >= 0"),
        ({"train_size": 5000}, "leave nothing to test"),
    ):
        with pytest.raises(BacktestError, match=message):
            Backtest(ou, MeanReversionOLS).run(**params)
