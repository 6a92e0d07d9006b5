"""The GARCH(1,1) generator has the variance and volatility clustering its parameters imply."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn.data import garch, gbm, validate


def log_returns(frame):
    return np.diff(np.log(frame["Close"].to_numpy()))


def lag1_autocorrelation(x):
    return np.corrcoef(x[1:], x[:-1])[0, 1]


def test_garch_returns_a_valid_price_frame_reproducible_from_its_seed():
    a, b, c = garch(500, seed=3), garch(500, seed=3), garch(500, seed=4)
    validate(a, "garch")
    assert list(a.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert a.equals(b) and not a.equals(c)
    assert a["Close"].iloc[0] == pytest.approx(100.0)


def test_sample_variance_matches_the_unconditional_variance():
    omega, alpha, beta = 1e-5, 0.10, 0.80
    r = log_returns(garch(100_000, omega=omega, alpha=alpha, beta=beta, seed=0))
    assert r.var() == pytest.approx(omega / (1 - alpha - beta), rel=0.05)


def test_student_t_innovations_keep_the_variance_and_fatten_the_tails():
    normal = log_returns(garch(100_000, alpha=0.05, beta=0.5, seed=1))
    fat = log_returns(garch(100_000, alpha=0.05, beta=0.5, innovations="t", df=5, seed=1))
    assert fat.var() == pytest.approx(normal.var(), rel=0.1)

    def kurtosis(x):
        return np.mean((x - x.mean()) ** 4) / x.var() ** 2

    assert kurtosis(fat) > kurtosis(normal) + 1.0


def test_squared_returns_cluster_as_garch_theory_says_and_gbm_ones_do_not():
    alpha, beta = 0.10, 0.80
    # Lag-1 autocorrelation of r^2 for a Gaussian GARCH(1,1) (Bollerslev, 1988).
    expected = alpha * (1 - alpha * beta - beta**2) / (1 - 2 * alpha * beta - beta**2)
    squared = log_returns(garch(100_000, alpha=alpha, beta=beta, seed=2)) ** 2
    clustered = lag1_autocorrelation(squared)
    independent = lag1_autocorrelation(log_returns(gbm(100_000, seed=2)) ** 2)
    assert clustered == pytest.approx(expected, abs=0.03)
    assert abs(independent) < 0.02


def test_volatility_column_is_the_conditional_standard_deviation():
    omega, alpha, beta, mu = 1e-5, 0.10, 0.80, 0.0005
    frame = garch(2000, omega=omega, alpha=alpha, beta=beta, mu=mu, volatility=True, seed=5)
    sigma, r = frame["Volatility"].to_numpy(), log_returns(frame)
    # r[i] is the return into bar i + 1, so the recursion for bar t >= 2 reads r[t - 2]; bar 1
    # depends on a shock before the first bar, which the frame does not show.
    recomputed = omega + alpha * (r[:-1] - mu) ** 2 + beta * sigma[1:-1] ** 2
    np.testing.assert_allclose(sigma[2:] ** 2, recomputed, rtol=1e-12)
    assert sigma[0] == pytest.approx(np.sqrt(omega / (1 - alpha - beta)))
    assert "Volatility" not in garch(100, seed=5).columns


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.2, "beta": 0.85}, "alpha \\+ beta must be < 1"),
        ({"omega": 0.0}, "omega must be a finite number > 0"),
        ({"alpha": -0.1}, "alpha must be a finite number >= 0"),
        ({"innovations": "cauchy"}, "innovations must be"),
        ({"innovations": "t", "df": 2}, "df must be > 2"),
    ],
)
def test_bad_parameters_are_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        garch(100, **kwargs)
