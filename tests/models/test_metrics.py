"""Forecast metrics and the Diebold-Mariano test against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradenn.models.metrics import (
    diebold_mariano,
    diebold_mariano_hac,
    directional_accuracy,
    forecast_metrics,
    mae,
    mse,
    oos_r2,
    student_t_sf,
)


@pytest.mark.parametrize("t", [-3.0, -0.4, 0.0, 0.7, 1.0, 2.5, 12.0])
def test_student_t_tail_matches_closed_forms(t):
    # df = 1 is the Cauchy distribution, df = 2 has an algebraic CDF
    assert student_t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, abs=1e-13)
    assert student_t_sf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
    # very many degrees of freedom: the normal tail
    assert student_t_sf(t, 1e8) == pytest.approx(0.5 * math.erfc(t / math.sqrt(2)), abs=1e-7)


def test_student_t_textbook_critical_values():
    # two-sided 5% critical values from t tables
    for df, critical in ((5, 2.570582), (10, 2.228139), (30, 2.042272)):
        assert 2 * student_t_sf(critical, df) == pytest.approx(0.05, abs=2e-7)
    assert student_t_sf(math.inf, 3) == 0.0 and math.isnan(student_t_sf(math.nan, 3))


def test_point_metrics_by_hand():
    y = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    p = np.array([0.02, -0.01, -0.01, 0.01, 0.0])
    assert mse(y, p) == pytest.approx((1e-4 + 1e-4 + 16e-4 + 1e-4 + 1e-4) / 5)
    assert mae(y, p) == pytest.approx((0.01 + 0.01 + 0.04 + 0.01 + 0.01) / 5)
    # y != 0 at four samples; signs agree at the first two; a zero forecast is a miss
    assert directional_accuracy(y, p) == 0.5
    assert oos_r2(y, y) == 1.0
    assert oos_r2(y, np.full(5, 0.003), 0.003) == 0.0
    assert oos_r2(y, p) == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum(y**2))


def reference_dm(y, p, b, h):
    """Straightforward loops: DM with HLN correction."""
    d = [(yi - pi) ** 2 - (yi - bi) ** 2 for yi, pi, bi in zip(y, p, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    gamma = [sum((d[t] - mean) * (d[t - k] - mean) for t in range(k, n)) / n for k in range(h)]
    variance = (gamma[0] + 2 * sum(gamma[1:])) / n
    dm = mean / math.sqrt(variance)
    return dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)


@pytest.mark.parametrize("h", [1, 3])
def test_diebold_mariano_matches_a_direct_computation(h):
    rng = np.random.default_rng(h)
    y = rng.normal(0, 0.01, 300)
    p = 0.3 * y + rng.normal(0, 0.01, 300)
    b = rng.normal(0, 0.002, 300)
    stat, p_value = diebold_mariano(y, p, b, horizon=h)
    assert stat == pytest.approx(reference_dm(y, p, b, h), rel=1e-10)
    assert p_value == pytest.approx(2 * student_t_sf(abs(stat), 299), rel=1e-12)


def test_diebold_mariano_detects_a_better_forecast_and_not_an_equal_one():
    rng = np.random.default_rng(1)
    signal = rng.normal(0, 1, 2000)
    y = signal + rng.normal(0, 1, 2000)
    stat, p_value = diebold_mariano(y, signal, 0.0)
    assert stat < 0 and p_value < 1e-6  # knowing half the variance beats the zero forecast
    stat, p_value = diebold_mariano(y, -signal, 0.0)
    assert stat > 0 and p_value < 1e-6
    noise = rng.normal(0, 0.01, 2000)  # a forecast no better than zero
    _, p_value = diebold_mariano(y, noise, 0.0)
    assert p_value > 0.01
    assert all(math.isnan(v) for v in diebold_mariano(y, np.zeros(2000), 0.0))


def test_forecast_metrics_drops_unknown_actuals():
    y = np.array([0.01, np.nan, -0.02, 0.015, -0.01, 0.02])
    p = np.array([0.005, 0.1, -0.01, -0.01, -0.02, 0.01])
    table = forecast_metrics(y, p, mean_benchmark=0.001)
    keep = np.isfinite(y)
    assert table["N"] == 5
    assert table["MSE"] == pytest.approx(mse(y[keep], p[keep]))
    assert table["OOS R2 (mean)"] == pytest.approx(oos_r2(y[keep], p[keep], 0.001))
    assert math.isnan(forecast_metrics(y, p)["OOS R2 (mean)"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="differ in length"):
        mse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="horizon must be"):
        diebold_mariano([1.0] * 5, [0.0] * 5, horizon=0)
    with pytest.raises(ValueError, match="loss must be"):
        diebold_mariano([1.0] * 5, [0.0] * 5, loss="huber")


def test_diebold_mariano_hac_matches_statsmodels_newey_west():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(401)
    d = 0.1 + noise[1:] + 0.6 * noise[:-1]  # MA(1) loss differentials
    benchmark = rng.random(400)
    ols = sm.OLS(d, np.ones_like(d)).fit(cov_type="HAC", cov_kwds={"maxlags": 5})
    statistic, p_value = diebold_mariano_hac(benchmark + d, benchmark, lags=5)
    assert statistic == pytest.approx(float(ols.tvalues[0]), rel=1e-9)
    assert p_value == pytest.approx(2 * student_t_sf(abs(statistic), 399), rel=1e-12)
    default_lags = math.floor(4 * (400 / 100) ** (2 / 9))
    assert diebold_mariano_hac(benchmark + d, benchmark) == diebold_mariano_hac(
        benchmark + d, benchmark, lags=default_lags
    )


def test_diebold_mariano_hac_is_negative_for_smaller_losses_and_nan_when_equal():
    rng = np.random.default_rng(0)
    benchmark = rng.random(300) + 1.0
    statistic, p_value = diebold_mariano_hac(benchmark - 0.1 * rng.random(300), benchmark)
    assert statistic < 0 and p_value < 1e-6
    assert all(math.isnan(v) for v in diebold_mariano_hac(benchmark, benchmark))
    with pytest.raises(ValueError, match="lags"):
        diebold_mariano_hac(benchmark, benchmark, lags=-1)
