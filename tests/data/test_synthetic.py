"""Synthetic generators have the statistics they advertise (estimated independently here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn.data import gbm, ornstein_uhlenbeck, regime_switching, validate


@pytest.mark.parametrize("make", [gbm, ornstein_uhlenbeck, regime_switching])
def test_generators_return_valid_reproducible_price_frames(make):
    a, b, c = make(500, seed=3), make(500, seed=3), make(500, seed=4)
    validate(a, make.__name__)
    assert a.equals(b) and not a.equals(c)


def test_gbm_log_returns_have_the_advertised_mean_and_volatility():
    mu, sigma = 0.10, 0.25
    r = np.diff(np.log(gbm(20_000, mu=mu, sigma=sigma, seed=0)["Close"].to_numpy()))
    assert abs(r.std(ddof=1) * math.sqrt(252) - sigma) < 0.02 * sigma
    expected_mean = (mu - sigma**2 / 2) / 252
    assert abs(r.mean() - expected_mean) < 3 * sigma / math.sqrt(252) / math.sqrt(len(r))


def test_ou_half_life_is_recovered_within_ten_percent():
    half_life = 5.0
    x = np.log(ornstein_uhlenbeck(10_000, half_life=half_life, seed=0)["Close"].to_numpy())
    # Regress x[t+1] on x[t] (AR(1) with intercept): half-life = ln 2 / -ln(phi).
    design = np.column_stack([np.ones(len(x) - 1), x[:-1]])
    (_, phi), *_ = np.linalg.lstsq(design, x[1:], rcond=None)
    estimated = math.log(2) / -math.log(phi)
    assert abs(estimated - half_life) < 0.10 * half_life


def test_regime_switching_spends_the_stationary_share_in_each_regime_with_its_volatility():
    stay, sigma = (0.99, 0.97), (0.10, 0.40)
    frame = regime_switching(50_000, stay=stay, sigma=sigma, seed=1)
    share0 = (1 - stay[1]) / (2 - stay[0] - stay[1])
    assert abs((frame["Regime"] == 0).mean() - share0) < 0.05
    r = np.diff(np.log(frame["Close"].to_numpy()))
    regime = frame["Regime"].to_numpy()[1:]
    for k in (0, 1):
        assert abs(r[regime == k].std() * math.sqrt(252) - sigma[k]) < 0.05 * sigma[k]


def test_bad_parameters_are_value_errors():
    with pytest.raises(ValueError, match="half_life must be a finite number > 0"):
        ornstein_uhlenbeck(100, half_life=0)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        gbm(1)
