"""Point-forecast metrics and the Diebold-Mariano test.

All functions take equally long 1-D arrays (or Series) of actual values ``y`` and forecasts
``p``; NaN pairs are the caller's business (:func:`forecast_metrics` drops them).

* ``MSE = mean((y - p)^2)``, ``MAE = mean(|y - p|)``.
* Directional accuracy: the share of samples with ``sign(p) == sign(y)``, over samples with
  ``y != 0``; a zero forecast has no direction and counts as a miss.
* Out-of-sample R^2 against a benchmark forecast ``b`` (Campbell & Thompson, 2008):
  ``1 - sum((y - p)^2) / sum((y - b)^2)``. With ``b = 0`` the benchmark is the random walk's
  zero return; with ``b`` = the training-window mean it is the historical average. Positive
  means the model beat the benchmark out of sample.
* Diebold-Mariano (1995) with the Harvey, Leybourne & Newbold (1997) small-sample correction:
  loss differential ``d_t = L(e_model,t) - L(e_bench,t)``; long-run variance with
  autocovariances up to lag ``h - 1`` (rectangular kernel, the forecast errors of an
  ``h``-step forecast are MA(h-1)); ``DM = mean(d) / sqrt(lrv / n)`` scaled by
  ``sqrt((n + 1 - 2h + h(h-1)/n) / n)`` and compared with Student's t with ``n - 1`` degrees of
  freedom. Negative statistics favour the model.
* :func:`diebold_mariano_hac`: the same test on any per-forecast losses (e.g. pinball losses of
  quantile forecasts), with the Newey-West (1987) long-run variance: Bartlett weights
  ``1 - k / (L + 1)`` on the autocovariances up to lag ``L``, by default
  ``L = floor(4 (n / 100)^(2/9))``, so loss differentials that cluster (as they do in volatile
  periods) do not overstate the evidence.
"""

from __future__ import annotations

import math

import numpy as np

from tradenn import checks

__all__ = [
    "diebold_mariano",
    "diebold_mariano_hac",
    "directional_accuracy",
    "forecast_metrics",
    "mae",
    "mse",
    "oos_r2",
    "student_t_sf",
]


def _pair(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"actuals and forecasts differ in length: {len(y)} vs {len(p)}")
    return y, p


def mse(y, p) -> float:
    """Mean squared error."""
    y, p = _pair(y, p)
    return float(np.mean((y - p) ** 2)) if len(y) else math.nan


def mae(y, p) -> float:
    """Mean absolute error."""
    y, p = _pair(y, p)
    return float(np.mean(np.abs(y - p))) if len(y) else math.nan


def directional_accuracy(y, p) -> float:
    """Share of samples (with ``y != 0``) whose forecast has the actual's sign."""
    y, p = _pair(y, p)
    moved = y != 0
    if not moved.any():
        return math.nan
    return float(np.mean(np.sign(p[moved]) == np.sign(y[moved])))


def oos_r2(y, p, benchmark=0.0) -> float:
    """Out-of-sample R^2 of ``p`` against the ``benchmark`` forecast (a scalar or an array)."""
    y, p = _pair(y, p)
    b = np.broadcast_to(np.asarray(benchmark, dtype=np.float64), y.shape)
    denominator = float(np.sum((y - b) ** 2))
    if denominator == 0:
        return math.nan
    return 1.0 - float(np.sum((y - p) ** 2)) / denominator


def diebold_mariano(y, p, benchmark=0.0, *, horizon: int = 1, loss: str = "squared"):
    """Diebold-Mariano test of equal accuracy of ``p`` and ``benchmark`` (HLN-corrected).

    Returns ``(statistic, p_value)``: the two-sided p-value of Student's t with ``n - 1``
    degrees of freedom. The statistic is negative when ``p`` has the smaller loss. NaN when the
    losses are identical at every sample or there are fewer than 3 samples.
    """
    if loss not in ("squared", "absolute"):
        raise ValueError(f"diebold_mariano: loss must be 'squared' or 'absolute', got {loss!r}")
    checks.positive_int(horizon, "horizon", "diebold_mariano")
    y, p = _pair(y, p)
    b = np.broadcast_to(np.asarray(benchmark, dtype=np.float64), y.shape)
    e_model, e_bench = y - p, y - b
    if loss == "squared":
        d = e_model**2 - e_bench**2
    else:
        d = np.abs(e_model) - np.abs(e_bench)
    n = len(d)
    if n < 3:
        return math.nan, math.nan
    centered = d - d.mean()
    lrv = float(centered @ centered) / n
    for lag in range(1, min(horizon, n)):
        lrv += 2.0 * float(centered[lag:] @ centered[:-lag]) / n
    if not lrv > 0:
        return math.nan, math.nan
    statistic = d.mean() / math.sqrt(lrv / n)
    h = horizon
    statistic *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    p_value = 2.0 * student_t_sf(abs(statistic), n - 1)
    return float(statistic), float(min(p_value, 1.0))


def diebold_mariano_hac(losses, benchmark_losses, *, lags: int | None = None):
    """Diebold-Mariano test of equal expected loss, Newey-West (HAC) variance.

    ``d_t = losses_t - benchmark_losses_t``; ``DM = mean(d) / sqrt(lrv / n)`` with
    ``lrv = g_0 + 2 sum_{k=1..L} (1 - k / (L + 1)) g_k`` and ``g_k`` the lag-``k``
    autocovariance of ``d`` (divided by ``n``). ``lags`` defaults to
    ``floor(4 (n / 100)^(2/9))``.

    Returns ``(statistic, p_value)``: two-sided p-value of Student's t with ``n - 1`` degrees of
    freedom; the statistic is negative when ``losses`` are smaller on average. NaN when the
    losses are identical everywhere or there are fewer than 3 forecasts.
    """
    a, b = _pair(losses, benchmark_losses)
    d = a - b
    n = len(d)
    if n < 3:
        return math.nan, math.nan
    if lags is None:
        lags = math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))
    checks.non_negative_int(lags, "lags", "diebold_mariano_hac")
    centered = d - d.mean()
    lrv = float(centered @ centered) / n
    for lag in range(1, min(lags, n - 1) + 1):
        lrv += 2.0 * (1.0 - lag / (lags + 1.0)) * float(centered[lag:] @ centered[:-lag]) / n
    if not lrv > 0:
        return math.nan, math.nan
    statistic = d.mean() / math.sqrt(lrv / n)
    p_value = 2.0 * student_t_sf(abs(statistic), n - 1)
    return float(statistic), float(min(p_value, 1.0))


def forecast_metrics(y, p, mean_benchmark=None, *, horizon: int = 1) -> dict[str, float]:
    """The standard table for a point forecast of returns, over samples where ``y`` is known.

    ``mean_benchmark``: the historical-mean forecast per sample (for the second OOS R^2);
    omitted, that R^2 is NaN. The Diebold-Mariano test is against the zero forecast.
    """
    y, p = _pair(y, p)
    b = (
        np.full_like(y, np.nan)
        if mean_benchmark is None
        else np.broadcast_to(np.asarray(mean_benchmark, dtype=np.float64), y.shape)
    )
    keep = np.isfinite(y) & np.isfinite(p)
    y, p, b = y[keep], p[keep], b[keep]
    dm, dm_p = diebold_mariano(y, p, 0.0, horizon=horizon)
    return {
        "N": len(y),
        "MSE": mse(y, p),
        "MAE": mae(y, p),
        "Directional Accuracy": directional_accuracy(y, p),
        "OOS R2 (zero)": oos_r2(y, p, 0.0),
        "OOS R2 (mean)": oos_r2(y, p, b) if np.isfinite(b).all() else math.nan,
        "DM": dm,
        "DM p-value": dm_p,
    }


# ----------------------------------------------------------------------------- Student's t


def student_t_sf(t: float, df: float) -> float:
    """Upper tail ``P(T > t)`` of Student's t with ``df`` degrees of freedom.

    Through the regularized incomplete beta function: ``P(|T| > t) = I_x(df/2, 1/2)`` with
    ``x = df / (df + t^2)``.
    """
    if not df > 0:
        raise ValueError(f"student_t_sf: df must be positive, got {df!r}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    x = df / (df + t * t)
    two_sided = _betainc(df / 2.0, 0.5, x)
    return 0.5 * two_sided if t >= 0 else 1.0 - 0.5 * two_sided


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)`` by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # the fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        # even step
        numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        fraction *= d * c
        # odd step
        numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a
