"""Guards against backtest overfitting: the deflated Sharpe ratio and the PBO of a sweep.

A parameter sweep that tries ``N`` combinations and keeps the best one reports a Sharpe ratio
that is biased upwards: the maximum of ``N`` noisy estimates is larger than a typical one even
when no combination has any skill. Two corrections are implemented here.

Conventions
-----------
* Sharpe ratios are **per bar and not annualized**: ``SR = mean(r) / std(r, ddof=1)`` of the
  per-bar returns ``r`` (subtract the per-bar risk-free rate first if it matters).
* ``skew`` is the sample skewness ``m3 / m2**1.5`` and ``kurtosis`` the **non-excess** kurtosis
  ``m4 / m2**2`` (3 for normal returns), both from the biased central moments ``m_k``.
* ``n`` is the number of returns the Sharpe ratio was estimated from.

Probabilistic Sharpe ratio (Bailey & Lopez de Prado, 2012)
    ``PSR(SR*) = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR**2))``:
    the probability that the true Sharpe ratio exceeds the benchmark ``SR*``, given the
    estimation error of ``SR`` under non-normal returns.
Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014)
    the PSR against the Sharpe ratio the best of ``N`` skill-less trials is expected to reach,
    ``SR0 = sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))`` with ``V`` the variance
    of the trials' Sharpe ratios and ``g`` the Euler-Mascheroni constant.
Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado & Zhu, 2015)
    combinatorially symmetric cross-validation (CSCV): the ``T`` bars of the ``(T, N)`` matrix of
    trial returns are cut into ``S`` equal blocks; for each of the ``C(S, S/2)`` ways to pick half
    of the blocks as in-sample (the rest out-of-sample) the trial that is best in-sample is ranked
    out-of-sample, ``w = rank / (N + 1)``, and its logit ``log(w / (1 - w))`` recorded. PBO is the
    share of logits ``<= 0``: how often the in-sample winner is at or below the out-of-sample
    median.

The normal CDF uses :func:`math.erfc`; its inverse Acklam's rational approximation refined by two
Newton steps (absolute error below 1e-12 on ``[1e-300, 1 - 1e-16]``), so nothing needs scipy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EULER_GAMMA",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "norm_cdf",
    "norm_ppf",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sharpe_moments",
    "trial_moments",
    "trial_sharpes",
]

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant."""

# Acklam's coefficients for the inverse normal CDF (central region and tails).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def norm_cdf(x: float) -> float:
    """The standard normal CDF ``Phi(x)``."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """The standard normal quantile ``Phi^-1(p)`` for ``p`` in ``(0, 1)``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"norm_ppf: p must lie in (0, 1), got {p!r}")
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        x = _tail(q)
    elif p > 1.0 - _P_LOW:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -_tail(q)
    else:
        q = p - 0.5
        r = q * q
        a, b = _A, _B
        num = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
        den = ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0
        x = num / den
    # Newton on Phi(x) - p (the approximation alone is good to about 1e-9 relative). In the
    # upper tail work with the survival function, which keeps its precision there.
    for _ in range(2):
        density = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        if density == 0.0:
            break
        if x > 0:
            error = (1.0 - p) - 0.5 * math.erfc(x / math.sqrt(2.0))
            x -= error / density
        else:
            x -= (norm_cdf(x) - p) / density
    return x


def _tail(q: float) -> float:
    c, d = _C, _D
    num = ((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]
    den = (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
    return num / den


def sharpe_moments(returns: np.ndarray) -> tuple[float, int, float, float]:
    """Per-bar Sharpe ratio, number of returns, skewness and non-excess kurtosis of ``returns``.

    NaN for the Sharpe ratio (and the moments) when there are fewer than two returns or they do
    not vary. Non-finite returns are left out.
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    sr, skew, kurtosis = (float(v[0]) for v in trial_moments(r[:, None]))
    return sr, len(r), skew, kurtosis


def trial_sharpes(matrix: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe ratio of each column of a ``(T, N)`` matrix of returns, as
    :func:`trial_moments` gives it (the same arithmetic), without the higher moments: two
    passes over the matrix instead of five (a sweep needs every trial's Sharpe ratio but the
    skewness and kurtosis of one)."""
    n = len(matrix)
    if n < 2:
        return np.full(matrix.shape[1], np.nan)
    return _sharpe(matrix.mean(axis=0), np.var(matrix, axis=0), n)


def _sharpe(mean: np.ndarray, m2: np.ndarray, n: int) -> np.ndarray:
    varies = m2 > 0
    return np.where(varies, mean / np.sqrt(np.where(varies, m2, 1.0) * n / (n - 1)), np.nan)


def trial_moments(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar Sharpe ratio, skewness and non-excess kurtosis of each column of a ``(T, N)``
    matrix of returns (``T`` finite returns per trial), as arrays of shape ``(N,)``; NaN where
    a column does not vary."""
    n = len(matrix)
    nan = np.full(matrix.shape[1], np.nan)
    if n < 2:
        return nan, nan, nan
    mean = matrix.mean(axis=0)
    centered = matrix - mean
    squared = centered * centered  # products, not powers: several times faster
    m2 = squared.mean(axis=0)
    m3 = (squared * centered).mean(axis=0)
    m4 = (squared * squared).mean(axis=0)
    varies = m2 > 0
    safe = np.where(varies, m2, 1.0)
    skew = np.where(varies, m3 / safe**1.5, np.nan)
    kurtosis = np.where(varies, m4 / safe**2, np.nan)
    return _sharpe(mean, m2, n), skew, kurtosis


def probabilistic_sharpe_ratio(
    sr: float, n: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (Bailey & Lopez de Prado).

    Parameters
    ----------
    sr : float
        Observed per-bar (non-annualized) Sharpe ratio.
    n : int
        Number of returns it was estimated from (at least 2).
    skew, kurtosis : float
        Skewness and non-excess kurtosis of the returns (0 and 3 for normal returns).
    sr_benchmark : float
        Per-bar Sharpe ratio to beat.

    Returns
    -------
    float
        ``PSR`` in ``[0, 1]``; NaN when ``sr`` or a moment is NaN.
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"probabilistic_sharpe_ratio: n must be an integer >= 2, got {n!r}")
    if not all(math.isfinite(v) for v in (sr, skew, kurtosis, sr_benchmark)):
        return math.nan
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if variance <= 0:
        return math.nan  # moments inconsistent with each other (kurtosis < 1 + skew**2)
    return norm_cdf((sr - sr_benchmark) * math.sqrt(n - 1.0) / math.sqrt(variance))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials whose Sharpe ratios vary
    with variance ``sr_variance`` (the closed-form approximation of Bailey & Lopez de Prado).

    ``sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``; 0 for a single trial.
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(
            f"expected_max_sharpe: n_trials must be a positive integer, got {n_trials!r}"
        )
    if not sr_variance >= 0:
        raise ValueError(f"expected_max_sharpe: sr_variance must be >= 0, got {sr_variance!r}")
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * norm_ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return math.sqrt(sr_variance) * z


def deflated_sharpe_ratio(
    sr: float,
    n: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    *,
    n_trials: int,
    sr_variance: float,
) -> float:
    """The deflated Sharpe ratio (Bailey & Lopez de Prado, 2014) of the best of ``n_trials``.

    The probabilistic Sharpe ratio of ``sr`` against :func:`expected_max_sharpe`
    ``(n_trials, sr_variance)``. All Sharpe ratios per bar, not annualized; ``sr_variance`` is
    the variance across the trials of their per-bar Sharpe ratios.

    Returns
    -------
    float
        Probability that the best trial's true Sharpe ratio is positive after accounting for the
        selection among ``n_trials``; above 0.95 is the usual bar.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return probabilistic_sharpe_ratio(sr, n, skew, kurtosis, sr_benchmark=sr0)


@dataclass
class PBOResult:
    """The outcome of :func:`probability_of_backtest_overfitting`.

    Attributes
    ----------
    pbo : float
        Share of the CSCV splits whose in-sample best trial ranks at or below the median
        out-of-sample (logit <= 0).
    logits : ndarray, shape (C(S, S/2),)
        One logit per split.
    n_blocks : int
        ``S``, the number of blocks used.
    """

    pbo: float
    logits: np.ndarray
    n_blocks: int


_SCORES_PER_CHUNK = 2**18
"""Split-by-trial scores computed at a time in the PBO (2 MiB: the chunk stays in cache)."""


def _block_sharpe(sums: np.ndarray, squares: np.ndarray, counts: float) -> np.ndarray:
    """Per-column Sharpe ratios from summed returns, summed squares and the count of returns
    (rows = splits). The arrays are (splits x trials), hundreds of megabytes in a large sweep:
    the arithmetic runs in place (two new buffers, not six; 4x faster, the same values)."""
    mean = sums / counts
    variance = mean * mean
    variance *= counts
    np.subtract(squares, variance, out=variance)
    variance /= counts - 1
    np.maximum(variance, 0.0, out=variance)
    np.sqrt(variance, out=variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(mean, variance, out=variance)
    variance[~np.isfinite(variance)] = -np.inf
    return variance


def probability_of_backtest_overfitting(
    returns: np.ndarray,
    n_blocks: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] | None = None,
) -> PBOResult:
    """PBO of a set of trials by combinatorially symmetric cross-validation (CSCV).

    Parameters
    ----------
    returns : array, shape (T, N)
        Per-bar returns of the ``N`` trials (columns) over the same ``T`` bars.
    n_blocks : int
        ``S``, an even number >= 2 of equal blocks the bars are cut into; the ``T mod S`` earliest
        bars are dropped. ``C(S, S/2)`` splits are evaluated (12,870 for S = 16).
    metric : callable, optional
        ``metric(returns_subset (t, N)) -> (N,)`` scores; default the per-bar Sharpe ratio
        (computed from per-block sums, so all splits cost one matrix product). NaN scores rank
        lowest.

    Returns
    -------
    PBOResult
        ``pbo``, the ``logits`` and the number of blocks.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError(
            f"probability_of_backtest_overfitting: returns must have shape (T, N) with N >= 2 "
            f"trials, got {matrix.shape}"
        )
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2 or n_blocks % 2:
        raise ValueError(
            f"probability_of_backtest_overfitting: n_blocks must be an even integer >= 2, "
            f"got {n_blocks!r}"
        )
    t, n = matrix.shape
    size = t // n_blocks
    if size < 2:
        raise ValueError(
            f"probability_of_backtest_overfitting: {t} bars are too few for {n_blocks} blocks "
            f"(need at least 2 bars per block)"
        )
    matrix = matrix[t - size * n_blocks :]
    if math.isnan(float(matrix.sum())):  # one pass; a NaN anywhere (or inf - inf) makes it NaN
        matrix = np.nan_to_num(matrix, nan=0.0)
    blocks = matrix.reshape(n_blocks, size, n)
    # Every split as a boolean mask over the blocks: (C, S), True = in-sample. Combinations
    # come in lexicographic order, so split C - 1 - k is the complement of split k: one split's
    # out-of-sample half is another's in-sample half, and each half is scored once.
    picks = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    in_sample = np.zeros((len(picks), n_blocks), dtype=bool)
    np.put_along_axis(in_sample, picks, True, axis=1)
    splits = len(picks)
    if metric is None:
        sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # (S, N)
        count = size * (n_blocks // 2)

        def scores(rows: np.ndarray) -> np.ndarray:
            mask = in_sample[rows].astype(np.float64)
            return _block_sharpe(mask @ sums, mask @ squares, count)

    else:

        def scores(rows: np.ndarray) -> np.ndarray:
            out = np.empty((len(rows), n))
            for j, k in enumerate(rows):  # a user metric sees each split's bars itself
                out[j] = metric(blocks[in_sample[k]].reshape(-1, n))
            return np.where(np.isfinite(out), out, -np.inf)

    logits = np.empty(splits)
    # Splits k and C - 1 - k together, a few hundred pairs at a time: each half's scores serve
    # both splits, and the (splits x trials) score matrix is never held whole.
    step = max(1, _SCORES_PER_CHUNK // (2 * n))
    for start in range(0, splits // 2, step):
        ks = np.arange(start, min(start + step, splits // 2))
        first, second = scores(ks), scores(splits - 1 - ks)
        logits[ks] = _logits(first, second, n)
        logits[splits - 1 - ks] = _logits(second, first, n)
    return PBOResult(pbo=float(np.mean(logits <= 0)), logits=logits, n_blocks=n_blocks)


def _logits(score_is: np.ndarray, score_oos: np.ndarray, n: int) -> np.ndarray:
    """Logit of the out-of-sample rank of each split's in-sample winner (rows = splits)."""
    best = np.argmax(score_is, axis=1)
    chosen = score_oos[np.arange(len(best)), best][:, None]
    # Average rank (1 = worst) of the in-sample winner among the N out-of-sample scores.
    below = (score_oos < chosen).sum(axis=1)
    tied = (score_oos == chosen).sum(axis=1)
    rank = below + (tied + 1) / 2.0
    w = rank / (n + 1.0)
    return np.log(w / (1.0 - w))
