"""Forecast, scoring rules, random-walk baselines and the rolling-origin harness.

Reference values come from textbook formulas written out independently: loops over pinball
losses, the O(S^2) pair sum for the CRPS, the CRPS of a Gaussian in closed form.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from tradenn.data import garch, gbm
from tradenn.models.probabilistic import (
    QUANTILE_LEVELS,
    Forecast,
    GaussianRandomWalk,
    coverage,
    crps_from_samples,
    evaluate_probabilistic,
    quantile_loss,
    rolling_origins,
    weighted_quantile_loss,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_walk_prices(rng, n, sigma=0.01):
    return 100 * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0, sigma, n - 1))]))


def gaussian_crps(mu, sigma, y):
    """Closed form: sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)], z = (y - mu) / sigma."""
    z = (y - mu) / sigma
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    return sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def pinball(y, q, tau):
    return tau * (y - q) if y >= q else (1 - tau) * (q - y)


# ---------------------------------------------------------------------------- Forecast
def test_quantile_levels_are_five_to_ninety_five_percent_in_steps_of_five():
    assert QUANTILE_LEVELS == (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55,
                               0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)  # fmt: skip


@pytest.mark.parametrize("num_samples", [1, 2, 7, 100])
def test_forecast_summaries_match_numpy_on_the_samples(rng, num_samples):
    samples = rng.normal(0.001, 0.01, (num_samples, 4))
    forecast = Forecast.from_samples(samples)
    q = forecast.quantiles
    assert list(q.index) == [1, 2, 3, 4] and q.index.name == "step"
    assert tuple(q.columns) == QUANTILE_LEVELS
    expected = np.quantile(samples, QUANTILE_LEVELS, axis=0).T
    np.testing.assert_allclose(q.to_numpy(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(forecast.median, np.median(samples, axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(forecast.mean, samples.mean(axis=0))
    np.testing.assert_array_equal(forecast.p_up, (samples > 0).mean(axis=0))
    assert (forecast.num_samples, forecast.horizon) == (num_samples, 4)


def test_p_up_counts_strictly_positive_samples_only():
    forecast = Forecast.from_samples([[0.0, 0.02], [0.01, 0.0], [-0.01, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(forecast.p_up, [0.25, 0.25])


def test_forecast_keeps_a_read_only_copy_of_its_samples(rng):
    samples = rng.normal(size=(10, 3))
    forecast = Forecast.from_samples(samples)
    samples[:] = 0.0
    assert forecast.samples.any()
    with pytest.raises(ValueError, match="read-only"):
        forecast.samples[0, 0] = 1.0


def test_cumulative_and_price_paths_compound_the_log_returns():
    forecast = Forecast.from_samples([[0.01, -0.02, 0.03], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(forecast.cumulative(), [[0.01, -0.01, 0.02], [0, 0, 0]])
    paths = forecast.price_paths(50.0)
    np.testing.assert_allclose(paths[0], 50 * np.exp([0.01, -0.01, 0.02]))
    np.testing.assert_allclose(paths[1], [50, 50, 50])


@pytest.mark.parametrize(
    ("samples", "message"),
    [([0.1, 0.2], "shape \\(num_samples, horizon\\)"), ([[0.1, np.nan]], "finite")],
)
def test_forecast_rejects_bad_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        Forecast.from_samples(samples)


# ---------------------------------------------------------------------------- metrics
def test_quantile_loss_is_the_pinball_loss_of_every_observation_and_level(rng):
    y = rng.normal(size=(3, 4))
    q = np.sort(rng.normal(size=(3, 4, 3)), axis=-1)
    levels = (0.1, 0.5, 0.9)
    loss = quantile_loss(y, q, levels)
    assert loss.shape == (3, 4, 3)
    for i, j, k in np.ndindex(loss.shape):
        assert loss[i, j, k] == pytest.approx(pinball(y[i, j], q[i, j, k], levels[k]))


def test_mean_pinball_loss_is_smallest_at_the_true_quantile(rng):
    y = rng.normal(size=20_000)
    candidates = np.linspace(-2, 2, 81)
    losses = [quantile_loss(y, np.full((y.size, 1), c), (0.9,)).mean() for c in candidates]
    assert candidates[int(np.argmin(losses))] == pytest.approx(1.2816, abs=0.05)


def test_weighted_quantile_loss_matches_its_definition(rng):
    y = rng.normal(size=(5, 3))
    q = np.sort(rng.normal(size=(5, 3, 19)), axis=-1)
    per_level = [
        2
        * sum(pinball(y[i, j], q[i, j, k], tau) for i in range(5) for j in range(3))
        / np.abs(y).sum()
        for k, tau in enumerate(QUANTILE_LEVELS)
    ]
    assert weighted_quantile_loss(y, q) == pytest.approx(np.mean(per_level))
    assert weighted_quantile_loss(10 * y, 10 * q) == pytest.approx(np.mean(per_level))


def test_weighted_quantile_loss_is_undefined_for_all_zero_observations():
    with pytest.raises(ValueError, match="sum \\|y\\| = 0"):
        weighted_quantile_loss(np.zeros(3), np.zeros((3, 19)))


@pytest.mark.parametrize("fair", [True, False])
def test_sorted_crps_equals_the_quadratic_pair_sum(rng, fair):
    samples, y = rng.normal(size=(15, 4, 3)), rng.normal(size=(4, 3))
    count = samples.shape[0]
    expected = np.empty_like(y)
    for index in np.ndindex(y.shape):
        x = samples[(slice(None), *index)]
        pair_sum = np.abs(x[:, None] - x[None, :]).sum()
        pairs = count * (count - 1) if fair else count**2
        expected[index] = np.abs(x - y[index]).mean() - 0.5 * pair_sum / pairs
    np.testing.assert_allclose(crps_from_samples(samples, y, fair=fair), expected, rtol=1e-12)


def test_empirical_crps_is_the_integral_of_the_squared_cdf_difference(rng):
    x, y = rng.normal(size=9), 0.3
    # (F_S(z) - 1{z >= y})^2 is a step function: integrate it exactly between its jump points.
    points = np.sort(np.append(x, y))
    integral = sum(
        ((x <= a).mean() - (a >= y)) ** 2 * (b - a) for a, b in itertools.pairwise(points)
    )
    assert crps_from_samples(x, y, fair=False) == pytest.approx(integral)


def test_crps_of_many_gaussian_samples_approaches_the_closed_form(rng):
    mu, sigma = 0.001, 0.02
    y = np.array([-0.05, -0.01, 0.0, 0.004, 0.03])
    samples = rng.normal(mu, sigma, (200_000, y.size))
    expected = [gaussian_crps(mu, sigma, v) for v in y]
    np.testing.assert_allclose(crps_from_samples(samples, y), expected, rtol=0.01)


def test_fair_crps_is_unbiased_for_few_samples_and_the_empirical_one_is_not(rng):
    sigma, count, repeats = 1.0, 4, 50_000
    samples, y = rng.normal(0, sigma, (count, repeats)), np.zeros(repeats)
    exact = gaussian_crps(0.0, sigma, 0.0)
    assert crps_from_samples(samples, y).mean() == pytest.approx(exact, rel=0.01)
    # The empirical-CDF estimator overstates it by E|X - X'| / (2 S) = sigma / (sqrt(pi) S).
    biased = crps_from_samples(samples, y, fair=False).mean()
    assert biased == pytest.approx(exact + sigma / (math.sqrt(math.pi) * count), rel=0.01)


def test_crps_of_a_point_forecast_is_the_absolute_error():
    assert crps_from_samples(np.full(5, 0.02), -0.01) == pytest.approx(0.03)


def test_crps_rejects_mismatched_shapes_and_single_samples():
    with pytest.raises(ValueError, match="samples must have shape"):
        crps_from_samples(np.zeros((10, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 draws"):
        crps_from_samples(np.zeros((1, 3)), np.zeros(3))


def test_coverage_counts_observations_inside_their_closed_interval():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert coverage(y, lower=1.0, upper=[2.0, 2.0, 2.0, 2.5]) == 0.5


# ---------------------------------------------------------------------------- baselines
def test_constant_volatility_is_the_std_of_all_history_returns(rng):
    prices = random_walk_prices(rng, 300)
    returns = np.diff(np.log(prices))
    assert GaussianRandomWalk().estimate(prices) == pytest.approx((0.0, returns.std(ddof=1)))
    historical = GaussianRandomWalk(drift="historical").estimate(prices)
    assert historical == pytest.approx((returns.mean(), returns.std(ddof=1)))


def test_rolling_volatility_uses_only_the_last_window_of_returns(rng):
    prices = random_walk_prices(rng, 300)
    model = GaussianRandomWalk("rolling", window=20)
    assert model.estimate(prices)[1] == pytest.approx(np.diff(np.log(prices[-21:])).std(ddof=1))
    earlier_crash = prices.copy()
    earlier_crash[:200] *= 0.5
    assert model.estimate(earlier_crash) == model.estimate(prices)


def test_samples_are_one_vectorised_seeded_normal_draw(rng):
    prices = random_walk_prices(rng, 100)
    model = GaussianRandomWalk(drift="historical")
    mu, sigma = model.estimate(prices)
    forecast = model.forecast(prices, horizon=5, num_samples=50, seed=7)
    expected = mu + sigma * np.random.default_rng(7).standard_normal((50, 5))
    np.testing.assert_allclose(forecast.samples, expected)
    assert not np.allclose(model.forecast(prices, 5, 50, seed=8).samples, expected)


def test_a_series_history_forecasts_like_its_values(rng):
    prices = random_walk_prices(rng, 50)
    series = pd.Series(prices, index=pd.bdate_range("2020-01-01", periods=50))
    model = GaussianRandomWalk("rolling")
    a, b = model.forecast(series, 3, seed=1), model.forecast(prices, 3, seed=1)
    np.testing.assert_array_equal(a.samples, b.samples)


def test_fixed_volatility_comes_from_the_training_prices_only(rng):
    train, later = random_walk_prices(rng, 200, 0.01), random_walk_prices(rng, 200, 0.05)
    model = GaussianRandomWalk(fixed=True).fit(train)
    assert model.estimate(later) == pytest.approx((0.0, np.diff(np.log(train)).std(ddof=1)))
    with pytest.raises(ValueError, match="needs fit"):
        GaussianRandomWalk(fixed=True).forecast(later, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: GaussianRandomWalk("garch"), "volatility must be one of 'constant', 'rolling'"),
        (lambda: GaussianRandomWalk("rolling", window=1), "window must be an integer >= 2"),
        (lambda: GaussianRandomWalk(drift="trend"), "drift must be"),
        (lambda: GaussianRandomWalk("rolling", fixed=True), "fixed=True applies to"),
        (lambda: GaussianRandomWalk("rolling").forecast(np.ones(10), 1), "needs window \\+ 1"),
        (lambda: GaussianRandomWalk().forecast([1.0, 2.0], 1), "at least 3 prices"),
        (lambda: GaussianRandomWalk().forecast([1.0, -2.0, 3.0], 1), "history must hold finite"),
        (lambda: GaussianRandomWalk().forecast(np.ones(5), 0), "horizon must be a positive int"),
    ],
)
def test_baseline_argument_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------- harness
class Spy:
    """A forecaster that records every history it is given (and its fit data)."""

    def __init__(self):
        self.histories, self.fitted_on = [], []

    def fit(self, prices):
        self.fitted_on.append(prices)

    def forecast(self, history, horizon, num_samples=100, seed=None):
        self.histories.append(history)
        return Forecast.from_samples(
            np.random.default_rng(seed).normal(size=(num_samples, horizon))
        )


@pytest.mark.parametrize("as_series", [False, True])
def test_no_forecaster_ever_sees_a_price_after_its_origin(as_series):
    prices = np.arange(1.0, 61.0)  # every price is unique and larger than all before it
    data = (
        pd.Series(prices, index=pd.bdate_range("2021-01-01", periods=60)) if as_series else prices
    )
    spy = Spy()
    result = evaluate_probabilistic({"spy": spy}, data, start=20, horizon=3, step=4, num_samples=5)
    np.testing.assert_array_equal(result.origins, np.arange(20, 57, 4))
    assert len(spy.histories) == len(result.origins)
    for t, history in zip(result.origins, spy.histories, strict=True):
        values = np.asarray(history)
        assert len(values) == t + 1 and values.max() == prices[t]
        if as_series:
            assert history.index[-1] == data.index[t]
    (train,) = spy.fitted_on
    np.testing.assert_array_equal(np.asarray(train), prices[:20])


def test_histories_are_copies_so_a_forecaster_cannot_reach_or_change_the_prices():
    prices = np.arange(1.0, 41.0)
    spy = Spy()
    evaluate_probabilistic({"spy": spy}, prices, start=10, horizon=2, num_samples=5)
    assert all(h.base is None for h in spy.histories)  # not views into the full array
    spy.histories[0][:] = -1.0
    np.testing.assert_array_equal(prices, np.arange(1.0, 41.0))


def test_actuals_are_the_log_returns_of_the_next_horizon_bars(rng):
    prices = random_walk_prices(rng, 50)
    result = evaluate_probabilistic({"rw": GaussianRandomWalk()}, prices, start=30, horizon=4)
    returns = np.diff(np.log(prices))
    for t, actual in zip(result.origins, result.actuals, strict=True):
        np.testing.assert_allclose(actual, returns[t : t + 4])


class Clairvoyant:
    """Cheats by construction (it is handed the future): the scores of a perfect forecast."""

    def __init__(self, prices):
        self.returns = np.diff(np.log(prices))

    def forecast(self, history, horizon, num_samples=100, seed=None):
        t = len(history) - 1
        return Forecast.from_samples(np.tile(self.returns[t : t + horizon], (num_samples, 1)))


def test_a_perfect_forecast_scores_zero_loss_and_full_coverage(rng):
    prices = random_walk_prices(rng, 80)
    result = evaluate_probabilistic({"oracle": Clairvoyant(prices)}, prices, start=40, horizon=3)
    row = result.summary.loc["oracle"]
    assert row["wql"] == pytest.approx(0) and row["crps"] == pytest.approx(0, abs=1e-15)
    assert row["median_mae"] == pytest.approx(0)
    assert row["coverage_90"] == row["coverage_50"] == row["direction_accuracy"] == 1.0
    assert row["forecasts"] == 37 * 3


def test_summary_by_step_and_per_origin_agree_with_the_stored_arrays(rng):
    prices = random_walk_prices(rng, 120)
    forecasters = {"constant": GaussianRandomWalk(), "rolling": GaussianRandomWalk("rolling")}
    result = evaluate_probabilistic(forecasters, prices, start=60, horizon=3, num_samples=50)
    for name in forecasters:
        q, y = result.quantiles[name], result.actuals
        row = result.summary.loc[name]
        assert row["wql"] == pytest.approx(weighted_quantile_loss(y, q))
        assert row["crps"] == pytest.approx(result.crps[name].mean())
        assert row["coverage_90"] == pytest.approx(coverage(y, q[..., 0], q[..., -1]))
        assert row["direction_accuracy"] == pytest.approx(
            ((result.p_up[name] > 0.5) == (y > 0)).mean()
        )
        step2 = result.by_step.loc[(name, 2)]
        assert step2["crps"] == pytest.approx(result.crps[name][:, 1].mean())
        assert step2["wql"] == pytest.approx(weighted_quantile_loss(y[:, 1], q[:, 1]))
        per_origin = result.per_origin.loc[name]
        np.testing.assert_allclose(per_origin["crps"], result.crps[name].mean(axis=1))
    assert list(result.per_origin.index.names) == ["forecaster", "origin"]


def test_forecasters_share_seeds_so_identical_models_score_identically(rng):
    prices = random_walk_prices(rng, 100)
    pair = {"a": GaussianRandomWalk(), "b": GaussianRandomWalk()}
    summary = evaluate_probabilistic(pair, prices, start=50, horizon=2, seed=3).summary
    pd.testing.assert_series_equal(summary.loc["a"], summary.loc["b"], check_names=False)


def test_an_origins_seed_depends_on_its_bar_not_on_start_or_step(rng):
    prices = random_walk_prices(rng, 100)
    forecasters = {"rw": GaussianRandomWalk()}
    every = evaluate_probabilistic(forecasters, prices, start=50, horizon=2, seed=3)
    sparse = evaluate_probabilistic(forecasters, prices, start=60, horizon=2, step=5, seed=3)
    np.testing.assert_array_equal(sparse.crps["rw"], every.crps["rw"][10::5])


def test_a_price_frame_is_evaluated_on_its_close_with_timestamps():
    frame = gbm(80, seed=1)
    result = evaluate_probabilistic({"rw": GaussianRandomWalk()}, frame, start=50, horizon=2)
    np.testing.assert_allclose(result.actuals[0], np.diff(np.log(frame["Close"].to_numpy()))[50:52])
    assert result.per_origin["time"].iloc[0] == frame.index[50]


def test_rolling_origins_stop_where_the_realised_horizon_ends():
    np.testing.assert_array_equal(rolling_origins(10, start=5, horizon=2, step=2), [5, 7])
    with pytest.raises(ValueError, match="start \\+ horizon must be <= len\\(prices\\) - 1 = 9"):
        rolling_origins(10, start=8, horizon=2)


def test_harness_errors_name_the_offending_forecaster_or_argument():
    class WrongHorizon(Spy):
        def forecast(self, history, horizon, num_samples=100, seed=None):
            return super().forecast(history, horizon + 1, num_samples, seed)

    prices = np.arange(1.0, 30.0)
    with pytest.raises(
        ValueError, match="forecasters\\['bad'\\] must return a Forecast of horizon 2"
    ):
        evaluate_probabilistic({"bad": WrongHorizon()}, prices, start=10, horizon=2)
    with pytest.raises(ValueError, match="forecasters\\['x'\\] has no forecast"):
        evaluate_probabilistic({"x": object()}, prices, start=10, horizon=2)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 2"):
        evaluate_probabilistic({"s": Spy()}, prices, start=10, horizon=2, num_samples=1)


# ---------------------------------------------------------------------------- demonstration
def test_on_garch_prices_rolling_volatility_beats_constant_volatility():
    """Scores reward a forecast whose volatility follows the clusters (the LM faces this test)."""
    prices = garch(2000, alpha=0.15, beta=0.83, seed=0)["Close"].to_numpy()
    forecasters = {"constant": GaussianRandomWalk(), "rolling": GaussianRandomWalk("rolling")}
    summary = evaluate_probabilistic(forecasters, prices, start=250, horizon=1).summary
    for metric in ("crps", "wql"):
        assert summary.loc["rolling", metric] < 0.99 * summary.loc["constant", metric]


def test_on_gbm_prices_constant_volatility_is_calibrated_and_rolling_is_not_better():
    prices = gbm(2000, sigma=0.2, seed=0)["Close"].to_numpy()
    forecasters = {"constant": GaussianRandomWalk(), "rolling": GaussianRandomWalk("rolling")}
    summary = evaluate_probabilistic(forecasters, prices, start=250, horizon=1).summary
    assert summary.loc["constant", "crps"] < summary.loc["rolling", "crps"]
    # With S samples the interval between the empirical 5% and 95% quantiles covers
    # 0.9 (S - 1) / (S + 1) of the probability in expectation, 0.882 for S = 100.
    assert summary.loc["constant", "coverage_90"] == pytest.approx(0.9 * 99 / 101, abs=0.025)
    assert summary.loc["constant", "coverage_50"] == pytest.approx(0.5 * 99 / 101, abs=0.035)
