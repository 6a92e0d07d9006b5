"""Deflated Sharpe ratio, PSR and PBO against published numbers and independent computations."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest

from tradenn.backtest import overfitting
from tradenn.backtest.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    norm_cdf,
    norm_ppf,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_moments,
    trial_moments,
)

NORMAL = NormalDist()  # the standard library's Wichura AS241 quantile, an independent reference


def test_norm_ppf_matches_reference_to_1e9():
    probabilities = np.concatenate(
        [np.logspace(-300, -2, 200), np.linspace(0.005, 0.995, 397), 1 - np.logspace(-14, -2, 60)]
    )
    errors = [abs(norm_ppf(p) - NORMAL.inv_cdf(p)) for p in probabilities]
    assert max(errors) < 1e-9
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, abs=1e-12)


def test_norm_cdf_matches_reference_and_inverts_ppf():
    for x in np.linspace(-8, 8, 161):
        assert norm_cdf(x) == pytest.approx(NORMAL.cdf(x), abs=1e-15)
    for p in (1e-10, 0.01, 0.3, 0.5, 0.77, 0.999):
        assert norm_cdf(norm_ppf(p)) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 2.0])
def test_norm_ppf_rejects_probabilities_outside_open_interval(p):
    with pytest.raises(ValueError, match="norm_ppf: p must lie in"):
        norm_ppf(p)


def test_deflated_sharpe_reproduces_bailey_lopez_de_prado_example():
    # The numerical example of Bailey & Lopez de Prado (2014): 100 trials, best annualized
    # SR 2.5, variance of annualized trial SRs 0.5, 1,250 daily returns (250 a year), skew -3,
    # kurtosis 10; the paper reports E[max SR] ~= 0.1132 per day and DSR ~= 0.9004.
    sr = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(sr, 1250, -3.0, 10.0, n_trials=100, sr_variance=variance)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


@pytest.mark.parametrize("n_trials", [10, 100])
def test_expected_max_sharpe_approximates_monte_carlo_maximum(n_trials):
    rng = np.random.default_rng(1)
    simulated = rng.standard_normal((20_000, n_trials)).max(axis=1).mean()
    # The closed form is an approximation (a few percent high for small N); scale by sqrt(V).
    assert expected_max_sharpe(n_trials, 1.0) == pytest.approx(simulated, rel=0.03)
    assert expected_max_sharpe(n_trials, 4.0) == pytest.approx(2 * expected_max_sharpe(n_trials, 1))
    assert expected_max_sharpe(1, 1.0) == 0.0


def test_psr_matches_monte_carlo_sampling_distribution():
    # For normal returns with true per-bar SR 0.05, the probability that the estimate falls
    # below the observed 0.15 is what PSR(0.05) of an observed 0.15 states.
    n, true_sr, observed = 250, 0.05, 0.15
    rng = np.random.default_rng(2)
    samples = rng.standard_normal((20_000, n)) + true_sr
    estimates = samples.mean(axis=1) / samples.std(axis=1, ddof=1)
    simulated = float(np.mean(estimates < observed))
    psr = probabilistic_sharpe_ratio(observed, n, 0.0, 3.0, sr_benchmark=true_sr)
    assert psr == pytest.approx(simulated, abs=0.01)
    assert probabilistic_sharpe_ratio(0.1, n, 0.0, 3.0, sr_benchmark=0.1) == 0.5


def test_psr_penalizes_negative_skew_and_fat_tails():
    base = probabilistic_sharpe_ratio(0.1, 500, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(0.1, 500, -2.0, 3.0) < base
    assert probabilistic_sharpe_ratio(0.1, 500, 0.0, 12.0) < base
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        probabilistic_sharpe_ratio(0.1, 1)


def test_sharpe_moments_of_exponential_returns():
    rng = np.random.default_rng(3)
    r = rng.exponential(1.0, 400_000)
    sr, n, skew, kurtosis = sharpe_moments(r)
    assert n == len(r)
    assert sr == pytest.approx(1.0, rel=0.01)  # mean 1, std 1
    assert skew == pytest.approx(2.0, rel=0.05)
    assert kurtosis == pytest.approx(9.0, rel=0.1)  # non-excess
    assert math.isnan(sharpe_moments(np.ones(10))[0])


def _cscv_by_hand(matrix, n_blocks, metric):
    """CSCV written out plainly: one split at a time, ranks by sorting."""
    t, n = matrix.shape
    size = t // n_blocks
    matrix = matrix[t - size * n_blocks :]
    blocks = [matrix[k * size : (k + 1) * size] for k in range(n_blocks)]
    logits = []
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        rest = [k for k in range(n_blocks) if k not in chosen]
        is_rows = np.concatenate([blocks[k] for k in chosen])
        oos_rows = np.concatenate([blocks[k] for k in rest])
        winner = int(np.argmax(metric(is_rows)))
        oos = metric(oos_rows)
        rank = 1 + sorted(oos).index(oos[winner])  # no ties in continuous data
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits


def _sharpe(rows):
    return rows.mean(axis=0) / rows.std(axis=0, ddof=1)


def test_pbo_matches_plain_cscv_implementation():
    rng = np.random.default_rng(4)
    matrix = rng.normal(0.0005, 0.01, (50, 6))  # 50 bars: the 2 earliest are dropped for S = 6
    expected_pbo, expected_logits = _cscv_by_hand(matrix, 6, _sharpe)
    found = probability_of_backtest_overfitting(matrix, n_blocks=6)
    assert found.n_blocks == 6
    assert len(found.logits) == math.comb(6, 3)
    np.testing.assert_allclose(found.logits, expected_logits, rtol=1e-12)
    assert found.pbo == expected_pbo


@pytest.mark.parametrize("chunk", [1, 3 * 6, 10**9])
def test_pbo_in_chunks_of_split_pairs_matches_plain_cscv(monkeypatch, chunk):
    # Split k and its complement C - 1 - k are scored together, a chunk of pairs at a time:
    # one pair per chunk, three, and all at once give the plain result.
    monkeypatch.setattr(overfitting, "_SCORES_PER_CHUNK", chunk)
    rng = np.random.default_rng(6)
    matrix = rng.normal(0.0002, 0.01, (64, 6))
    expected_pbo, expected_logits = _cscv_by_hand(matrix, 8, _sharpe)
    found = probability_of_backtest_overfitting(matrix, n_blocks=8)
    np.testing.assert_allclose(found.logits, expected_logits, rtol=1e-12)
    assert found.pbo == expected_pbo


def test_pbo_with_a_custom_metric_matches_plain_cscv():
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.0, 0.01, (40, 5))
    mean = lambda rows: rows.mean(axis=0)  # noqa: E731
    expected_pbo, expected_logits = _cscv_by_hand(matrix, 4, mean)
    found = probability_of_backtest_overfitting(matrix, n_blocks=4, metric=mean)
    np.testing.assert_allclose(found.logits, expected_logits, rtol=1e-12)
    assert found.pbo == expected_pbo


def test_pbo_is_zero_when_one_trial_is_truly_better():
    rng = np.random.default_rng(6)
    matrix = rng.normal(0.0, 0.01, (1_600, 20))
    matrix[:, 7] += 0.01  # a per-bar Sharpe of ~1: best in every half of the data
    found = probability_of_backtest_overfitting(matrix)
    assert found.pbo == 0.0
    assert (found.logits > 0).all()


def test_pbo_is_about_half_when_every_trial_is_noise():
    values = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, (1_600, 50))
        ).pbo
        for seed in range(5)
    ]
    assert 0.35 < np.mean(values) < 0.65


def test_pbo_rejects_bad_input():
    matrix = np.zeros((100, 4))
    with pytest.raises(ValueError, match="n_blocks must be an even integer"):
        probability_of_backtest_overfitting(matrix, n_blocks=5)
    with pytest.raises(ValueError, match="too few for 16 blocks"):
        probability_of_backtest_overfitting(np.zeros((20, 4)))
    with pytest.raises(ValueError, match=r"shape \(T, N\) with N >= 2"):
        probability_of_backtest_overfitting(np.zeros(100))


def test_trial_sharpes_are_trial_moments_sharpes_to_the_bit():
    rng = np.random.default_rng(8)
    matrix = rng.normal(0.0003, 0.01, (700, 40))
    matrix[:, 5] = 0.002  # a trial that does not vary: NaN in both
    np.testing.assert_array_equal(
        overfitting.trial_sharpes(matrix), trial_moments(matrix)[0], strict=True
    )


def test_trial_moments_match_one_column_at_a_time():
    rng = np.random.default_rng(7)
    matrix = rng.standard_t(5, (300, 4)) * 0.01 + 0.001
    matrix[:, 2] = 0.0  # a trial that never moves
    sharpes, skews, kurtoses = trial_moments(matrix)
    for k in (0, 1, 3):
        column = matrix[:, k]
        centered = column - column.mean()
        assert sharpes[k] == pytest.approx(column.mean() / column.std(ddof=1), rel=1e-12)
        assert skews[k] == pytest.approx(np.mean(centered**3) / np.std(column) ** 3, rel=1e-10)
        assert kurtoses[k] == pytest.approx(np.mean(centered**4) / np.var(column) ** 2, rel=1e-10)
    assert np.isnan([sharpes[2], skews[2], kurtoses[2]]).all()


def test_pbo_counts_a_missing_return_as_zero():
    rng = np.random.default_rng(9)
    matrix = rng.normal(0.0, 0.01, (96, 5))
    holes = matrix.copy()
    holes[[3, 40, 77], [0, 2, 4]] = np.nan
    zeros = np.nan_to_num(holes, nan=0.0)
    found = probability_of_backtest_overfitting(holes, n_blocks=6)
    np.testing.assert_array_equal(
        found.logits, probability_of_backtest_overfitting(zeros, 6).logits
    )
