"""Synthetic price frames with known properties, for tests and for research with a known answer.

Every generator returns the price-frame schema (``Open, High, Low, Close, Volume`` on a
DatetimeIndex) and is reproducible from ``seed``. The close follows the named process; the open is
drawn from the Brownian bridge between consecutive closes (20% of the bar's variance accrues
before it, like an overnight gap), and the high and low extend beyond the open/close range by a
half-normal amount scaled to the bar's volatility, so every bar is consistent.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from tradenn import checks

_OPEN_FRACTION = 0.2  # share of a bar's variance that accrues before its open


def _frame(
    log_close: np.ndarray,
    bar_sigma: np.ndarray | float,
    rng: np.random.Generator,
    start: str,
    freq: str,
) -> pd.DataFrame:
    n = len(log_close)
    sigma = np.broadcast_to(np.asarray(bar_sigma, dtype=np.float64), (n,))
    previous = np.concatenate(([log_close[0]], log_close[:-1]))
    a = _OPEN_FRACTION
    log_open = (
        previous
        + a * (log_close - previous)
        + math.sqrt(a * (1 - a)) * sigma * rng.standard_normal(n)
    )
    log_open[0] = log_close[0] - sigma[0] * math.sqrt(1 - a) * rng.standard_normal()
    top = np.maximum(log_open, log_close) + 0.5 * sigma * np.abs(rng.standard_normal(n))
    bottom = np.minimum(log_open, log_close) - 0.5 * sigma * np.abs(rng.standard_normal(n))
    volume = np.round(1e6 * rng.lognormal(0.0, 0.3, n))
    index = pd.date_range(start, periods=n, freq=freq, name="Date")
    return pd.DataFrame(
        {
            "Open": np.exp(log_open),
            "High": np.exp(top),
            "Low": np.exp(bottom),
            "Close": np.exp(log_close),
            "Volume": volume,
        },
        index=index,
    )


def _check(n: int, **positive: float) -> None:
    """``n`` bars (at least 2, so there is one return) and the ``positive`` parameters > 0."""
    checks.integer(n, "n", low=2)
    for name, value in positive.items():
        checks.positive_number(value, name)


def gbm(
    n: int = 2520,
    *,
    mu: float = 0.07,
    sigma: float = 0.2,
    s0: float = 100.0,
    bars_per_year: int = 252,
    start: str = "2000-01-03",
    freq: str = "B",
    seed: int | None = None,
) -> pd.DataFrame:
    """Geometric Brownian motion: ``dS/S = mu dt + sigma dW`` with annual ``mu`` and ``sigma``.

    Close-to-close log returns are i.i.d. ``N((mu - sigma^2/2) dt, sigma^2 dt)``, ``dt =
    1/bars_per_year``: no strategy has an edge on it beyond the drift.
    """
    _check(n, sigma=sigma, s0=s0, bars_per_year=bars_per_year)
    rng = np.random.default_rng(seed)
    dt = 1.0 / bars_per_year
    steps = (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * rng.standard_normal(n - 1)
    log_close = math.log(s0) + np.concatenate(([0.0], np.cumsum(steps)))
    return _frame(log_close, sigma * math.sqrt(dt), rng, start, freq)


def ornstein_uhlenbeck(
    n: int = 2520,
    *,
    half_life: float = 20.0,
    sigma: float = 0.01,
    mean: float = 100.0,
    s0: float | None = None,
    start: str = "2000-01-03",
    freq: str = "B",
    seed: int | None = None,
) -> pd.DataFrame:
    """Mean-reverting prices: the log price is a discrete Ornstein-Uhlenbeck (AR(1)) process.

    ``x[t+1] = x[t] + theta (log(mean) - x[t]) + sigma eps``, ``theta = 1 - 2**(-1/half_life)``,
    so a deviation from ``mean`` halves every ``half_life`` bars in expectation. ``sigma`` is the
    per-bar volatility of the log price. A mean-reversion strategy has a real, known edge here.
    """
    _check(n, half_life=half_life, sigma=sigma, mean=mean)
    rng = np.random.default_rng(seed)
    phi = 2.0 ** (-1.0 / half_life)
    center = math.log(mean)
    x = np.empty(n)
    x[0] = math.log(s0) if s0 is not None else center
    shocks = sigma * rng.standard_normal(n)
    for t in range(1, n):  # a recursion: each step depends on the previous value
        x[t] = center + phi * (x[t - 1] - center) + shocks[t]
    return _frame(x, sigma, rng, start, freq)


def regime_switching(
    n: int = 2520,
    *,
    mu: tuple[float, float] = (0.15, -0.30),
    sigma: tuple[float, float] = (0.12, 0.35),
    stay: tuple[float, float] = (0.99, 0.97),
    s0: float = 100.0,
    bars_per_year: int = 252,
    start: str = "2000-01-03",
    freq: str = "B",
    seed: int | None = None,
) -> pd.DataFrame:
    """Two-state Markov regime switching GBM (a calm bull and a volatile bear market by default).

    The hidden regime follows a Markov chain that stays in state ``k`` with probability
    ``stay[k]`` each bar; within regime ``k`` log returns are ``N((mu_k - sigma_k^2/2) dt,
    sigma_k^2 dt)``. The regime of each bar is returned in an extra ``Regime`` column (0 or 1) so
    research can check what a model recovered; the long-run share of regime 0 is
    ``(1 - stay[1]) / (2 - stay[0] - stay[1])``.
    """
    _check(n, s0=s0, bars_per_year=bars_per_year, sigma0=sigma[0], sigma1=sigma[1])
    for p in stay:
        checks.number(p, "each of stay", low=0, high=1, high_open=True)
    rng = np.random.default_rng(seed)
    dt = 1.0 / bars_per_year
    regime = np.empty(n, dtype=np.int64)
    regime[0] = 0 if rng.random() < (1 - stay[1]) / (2 - stay[0] - stay[1]) else 1
    draws = rng.random(n)
    for t in range(1, n):  # a Markov chain: each state depends on the previous one
        switch = draws[t] >= stay[regime[t - 1]]
        regime[t] = 1 - regime[t - 1] if switch else regime[t - 1]
    mus, sigmas = np.asarray(mu)[regime], np.asarray(sigma)[regime]
    steps = (mus - 0.5 * sigmas**2) * dt + sigmas * math.sqrt(dt) * rng.standard_normal(n)
    steps[0] = 0.0
    log_close = math.log(s0) + np.cumsum(steps)
    frame = _frame(log_close, sigmas * math.sqrt(dt), rng, start, freq)
    frame["Regime"] = regime
    return frame


def garch(
    n: int = 2520,
    *,
    omega: float = 2e-6,
    alpha: float = 0.08,
    beta: float = 0.90,
    mu: float = 0.0,
    innovations: Literal["normal", "t"] = "normal",
    df: float = 5.0,
    volatility: bool = False,
    s0: float = 100.0,
    start: str = "2000-01-03",
    freq: str = "B",
    seed: int | None = None,
) -> pd.DataFrame:
    """GARCH(1,1) log returns: volatility that clusters, as in real markets.

    Close-to-close log returns (all parameters per bar, not annualised) follow::

        r[t]       = mu + sigma[t] * z[t],       z[t] i.i.d., mean 0, variance 1
        sigma[t]^2 = omega + alpha * (r[t-1] - mu)^2 + beta * sigma[t-1]^2

    The process is covariance-stationary only for ``alpha + beta < 1``; its unconditional
    variance is ``omega / (1 - alpha - beta)`` (the defaults give 1% a day, 16% a year) and the
    recursion starts there. ``alpha + beta`` is the persistence: a volatility shock decays by
    that factor per bar. ``innovations="t"`` draws ``z`` from a Student-t with ``df > 2`` degrees
    of freedom rescaled to unit variance (fatter tails for the same variance).

    ``volatility=True`` adds a ``Volatility`` column: ``sigma[t]``, the conditional standard
    deviation of the log return into bar ``t``, which is known at the close of bar ``t - 1``.
    """
    _check(n, omega=omega, s0=s0)
    checks.number(alpha, "alpha", low=0)
    checks.number(beta, "beta", low=0)
    if not alpha + beta < 1:
        raise ValueError(
            f"alpha + beta must be < 1 for a stationary GARCH(1,1), got {alpha + beta!r}"
        )
    checks.choice(innovations, "innovations", ("normal", "t"))
    if innovations == "t" and not df > 2:
        raise ValueError(f"df must be > 2 for Student-t innovations of finite variance, got {df!r}")
    rng = np.random.default_rng(seed)
    if innovations == "normal":
        z = rng.standard_normal(n)
    else:
        z = rng.standard_t(df, n) * math.sqrt((df - 2) / df)
    variance = np.empty(n)
    returns = np.zeros(n)  # returns[0] = 0: the first close is s0
    variance[0] = omega / (1 - alpha - beta)
    shock = math.sqrt(variance[0]) * z[0]  # the (unobserved) shock before the first bar
    for t in range(1, n):  # a recursion: each variance depends on the previous bar
        variance[t] = omega + alpha * shock**2 + beta * variance[t - 1]
        shock = math.sqrt(variance[t]) * z[t]
        returns[t] = mu + shock
    sigma = np.sqrt(variance)
    frame = _frame(math.log(s0) + np.cumsum(returns), sigma, rng, start, freq)
    if volatility:
        frame["Volatility"] = sigma
    return frame
