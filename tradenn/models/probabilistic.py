"""Probabilistic forecasts of log returns: what they are, how to score them, what to beat.

* :class:`Forecast` holds sample paths of future per-bar log returns and the summaries read off
  them (quantiles at :data:`QUANTILE_LEVELS`, mean, median, P(up)).
* Scoring rules, vectorised over many forecasts: :func:`quantile_loss` (pinball),
  :func:`weighted_quantile_loss` (WQL, as in Chronos and GluonTS), :func:`crps_from_samples`
  (sample CRPS in O(S log S)) and :func:`coverage`.
* Baseline: :class:`GaussianRandomWalk` with constant or rolling volatility.
* :func:`evaluate_probabilistic`: rolling-origin evaluation of any objects with
  ``forecast(history, horizon, num_samples, seed) -> Forecast``, which only ever see the prices
  up to each forecast origin.

Every forecaster here speaks log returns: ``samples[s, k - 1]`` is ``log(P[t + k] / P[t + k - 1])``
on sample path ``s`` of a forecast made at the close of bar ``t``. See docs/models_probabilistic.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from .. import checks
from .common import as_prices, close_series

__all__ = [
    "QUANTILE_LEVELS",
    "EvaluationResult",
    "Forecast",
    "GaussianRandomWalk",
    "ProbabilisticForecaster",
    "coverage",
    "crps_from_samples",
    "evaluate_probabilistic",
    "quantile_loss",
    "rolling_origins",
    "weighted_quantile_loss",
]

QUANTILE_LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The quantile levels of every :class:`Forecast`: 0.05, 0.10, ..., 0.95."""

_LEVEL_COLUMNS = pd.Index(QUANTILE_LEVELS, name="level")


# ---------------------------------------------------------------------------- the forecast
@dataclass(frozen=True, eq=False, repr=False)
class Forecast:
    """Sample paths of future per-bar log returns and their summaries.

    Build one with :meth:`from_samples`; the summaries are computed once, on construction.

    Attributes
    ----------
    samples : ndarray, shape (num_samples, horizon)
        Read-only. Row ``s`` is one path of log returns for steps ``1 .. horizon``.
    quantiles : DataFrame, shape (horizon, 19)
        Index ``step`` (1 .. horizon), columns the levels of :data:`QUANTILE_LEVELS`; empirical
        quantiles of the samples at each step (linear interpolation between order statistics,
        numpy's default method).
    mean, median : ndarray, shape (horizon,)
        Sample mean and median per step.
    p_up : ndarray, shape (horizon,)
        Fraction of samples ``> 0`` per step: the forecast probability of an up bar.
    """

    samples: np.ndarray
    quantiles: pd.DataFrame = field(init=False)
    mean: np.ndarray = field(init=False)
    median: np.ndarray = field(init=False)
    p_up: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        samples = np.array(self.samples, dtype=np.float64)  # a private copy, then frozen
        if samples.ndim != 2 or samples.size == 0:
            raise ValueError(
                f"samples must have shape (num_samples, horizon) and be non-empty, "
                f"got {samples.shape}"
            )
        if not np.isfinite(samples).all():
            raise ValueError("samples must be finite (no NaN or inf)")
        samples.setflags(write=False)
        horizon = samples.shape[1]
        ordered = np.sort(samples, axis=0)
        quantiles = pd.DataFrame(
            _sorted_quantiles(ordered, QUANTILE_LEVELS).T,
            index=pd.RangeIndex(1, horizon + 1, name="step"),
            columns=_LEVEL_COLUMNS,
        )
        summaries = {
            "samples": samples,
            "quantiles": quantiles,
            "mean": samples.mean(axis=0),
            "median": _sorted_quantiles(ordered, (0.5,))[0],
            "p_up": (samples > 0).mean(axis=0),
        }
        for name, value in summaries.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def from_samples(cls, samples: Any) -> Forecast:
        """The forecast of sample paths ``samples`` of shape (num_samples, horizon)."""
        return cls(samples)

    @property
    def num_samples(self) -> int:
        """Number of sample paths."""
        return self.samples.shape[0]

    @property
    def horizon(self) -> int:
        """Number of steps ahead."""
        return self.samples.shape[1]

    def cumulative(self) -> np.ndarray:
        """Cumulative log-return paths, shape (num_samples, horizon): ``log(P[t + k] / P[t])``."""
        return np.cumsum(self.samples, axis=1)

    def price_paths(self, last_price: float) -> np.ndarray:
        """Price paths, shape (num_samples, horizon): ``last_price * exp(cumulative())``."""
        if not last_price > 0:
            raise ValueError(f"last_price must be > 0, got {last_price!r}")
        return last_price * np.exp(self.cumulative())

    def __repr__(self) -> str:
        return f"Forecast(num_samples={self.num_samples}, horizon={self.horizon})"


def _sorted_quantiles(ordered: np.ndarray, levels: Any) -> np.ndarray:
    """Quantiles ``(len(levels), ...)`` of samples sorted on axis 0, interpolating linearly
    between order statistics at position ``(S - 1) * level`` (numpy's default method)."""
    position = (ordered.shape[0] - 1) * np.asarray(levels, dtype=np.float64)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, ordered.shape[0] - 1)
    weight = (position - below).reshape((-1,) + (1,) * (ordered.ndim - 1))
    return ordered[below] + weight * (ordered[above] - ordered[below])


class ProbabilisticForecaster(Protocol):
    """What :func:`evaluate_probabilistic` needs: a ``forecast`` method (``fit`` is optional)."""

    def forecast(
        self, history: Any, horizon: int, num_samples: int = 100, seed: int | None = None
    ) -> Forecast: ...


# ---------------------------------------------------------------------------- scoring rules
def quantile_loss(y: Any, quantile_forecasts: Any, levels: Any = QUANTILE_LEVELS) -> np.ndarray:
    """Pinball loss of every observation at every quantile level.

    ``rho_tau(y - q) = max(tau (y - q), (tau - 1) (y - q))``: the loss whose expectation a
    forecaster minimises by reporting the true ``tau``-quantile.

    Parameters
    ----------
    y : array-like, shape (...)
        Observations.
    quantile_forecasts : array-like, shape (..., L)
        Forecast quantiles; the last axis runs over ``levels``.
    levels : sequence of L floats in (0, 1)

    Returns
    -------
    ndarray, shape (..., L); ``.mean()`` is the mean quantile loss.
    """
    y, q, tau = _quantile_arguments(y, quantile_forecasts, levels)
    error = y[..., None] - q
    return np.maximum(tau * error, (tau - 1) * error)


def weighted_quantile_loss(y: Any, quantile_forecasts: Any, levels: Any = QUANTILE_LEVELS) -> float:
    """Weighted quantile loss (WQL) of a set of quantile forecasts, as in Chronos and GluonTS.

    ``WQL = (1/L) sum_l [ 2 sum_i rho_l(y_i - q_il) / sum_i |y_i| ]`` over all observations
    ``i`` (every axis of ``y``) and levels ``l``. Scale-free; with many levels it approximates
    the CRPS divided by the mean absolute observation.
    """
    y, q, tau = _quantile_arguments(y, quantile_forecasts, levels)
    scale = np.abs(y).sum()
    if not scale > 0:
        raise ValueError("weighted_quantile_loss is undefined when every y is 0 (sum |y| = 0)")
    per_level = 2 * quantile_loss(y, q, tau).reshape(-1, tau.size).sum(axis=0) / scale
    return float(per_level.mean())


def crps_from_samples(samples: Any, y: Any, *, fair: bool = True) -> np.ndarray:
    """Continuous ranked probability score of sample forecasts, one per observation.

    Energy form: ``CRPS(F, y) = E|X - y| - 1/2 E|X - X'|`` with ``X, X'`` independent draws of
    ``F``. The fair (unbiased) estimator from ``S`` samples divides the pair sum by ``S (S - 1)``
    (``fair=False``: by ``S^2``, the CRPS of the empirical distribution). The pair sum needs no
    ``S x S`` matrix: for sorted samples ``x_(1) <= ... <= x_(S)``,
    ``sum_ij |x_i - x_j| = 2 sum_i (2 i - S - 1) x_(i)``, so the cost is one sort, O(S log S).

    Parameters
    ----------
    samples : array-like, shape (S, ...)
        Samples on the first axis, as in ``Forecast.samples`` (``S >= 2`` when ``fair``).
    y : array-like, shape (...)
        Observations.

    Returns
    -------
    ndarray, shape (...): lower is better; in the units of ``y``.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 0 or x.shape[1:] != y.shape:
        raise ValueError(f"samples must have shape (S, *y.shape) = (S, *{y.shape}), got {x.shape}")
    count = x.shape[0]
    if count < (2 if fair else 1):
        raise ValueError(f"samples needs at least {2 if fair else 1} draws, got {count}")
    rank = np.arange(1, count + 1, dtype=np.float64).reshape((count,) + (1,) * y.ndim)
    pair_sum_half = ((2 * rank - count - 1) * x).sum(axis=0)  # = 1/2 sum_ij |x_i - x_j|
    pairs = count * (count - 1) if fair else count**2
    return np.abs(x - y).mean(axis=0) - pair_sum_half / pairs


def coverage(y: Any, lower: Any, upper: Any) -> float:
    """Fraction of observations inside their interval, ``lower <= y <= upper`` (broadcast)."""
    y, lower, upper = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    )
    if y.size == 0:
        raise ValueError("y is empty")
    return float(((lower <= y) & (y <= upper)).mean())


def _quantile_arguments(y: Any, q: Any, levels: Any) -> tuple[np.ndarray, ...]:
    y = np.asarray(y, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)
    if tau.ndim != 1 or not ((tau > 0) & (tau < 1)).all():
        raise ValueError(f"levels must be a sequence of floats in (0, 1), got {levels!r}")
    if q.shape != (*y.shape, tau.size):
        raise ValueError(
            f"quantile_forecasts must have shape y.shape + (len(levels),) = "
            f"{(*y.shape, tau.size)}, got {q.shape}"
        )
    return y, q, tau


# ---------------------------------------------------------------------------- baselines
class GaussianRandomWalk:
    """Random-walk baseline: future log returns i.i.d. ``N(mu, sigma^2)``.

    Parameters
    ----------
    volatility : {"constant", "rolling"}, default "constant"
        ``"constant"``: ``sigma`` is the standard deviation of all log returns in the history
        (an expanding window). ``"rolling"``: of the last ``window`` log returns only, so it
        follows volatility clusters; each forecast holds that ``sigma`` for its whole horizon.
    window : int, default 20
        Bars in the rolling window (``volatility="rolling"``).
    drift : {"zero", "historical"}, default "zero"
        ``mu = 0``, or the mean log return of the same returns ``sigma`` is estimated from.
    fixed : bool, default False
        ``volatility="constant"`` only: estimate ``mu`` and ``sigma`` once, in :meth:`fit`, from
        the training prices and keep them for every forecast (a fixed training window).

    Sampling is vectorised (one ``standard_normal((num_samples, horizon))`` draw) and
    reproducible from ``seed``.
    """

    def __init__(
        self,
        volatility: Literal["constant", "rolling"] = "constant",
        *,
        window: int = 20,
        drift: Literal["zero", "historical"] = "zero",
        fixed: bool = False,
    ):
        checks.choice(volatility, "volatility", ("constant", "rolling"))
        checks.integer(window, "window", low=2)
        checks.choice(drift, "drift", ("zero", "historical"))
        if fixed and volatility != "constant":
            raise ValueError("fixed=True applies to volatility='constant' only")
        self.volatility = volatility
        self.window = int(window)
        self.drift = drift
        self.fixed = fixed
        self._fitted: tuple[float, float] | None = None

    def fit(self, prices: Any) -> GaussianRandomWalk:
        """With ``fixed=True``, estimate ``(mu, sigma)`` from training ``prices``; else a no-op.

        Returns
        -------
        self
        """
        if self.fixed:
            self._fitted = self._estimate_from(np.diff(np.log(as_prices(prices, "prices"))))
        return self

    def estimate(self, history: Any) -> tuple[float, float]:
        """The ``(mu, sigma)`` per bar a forecast from ``history`` (prices) would use."""
        if self.fixed:
            if self._fitted is None:
                raise ValueError("fixed=True needs fit(train_prices) before forecasting")
            return self._fitted
        returns = np.diff(np.log(as_prices(history, "history")))
        if self.volatility == "rolling":
            if returns.size < self.window:
                raise ValueError(
                    f"history has {returns.size + 1} prices; rolling volatility needs "
                    f"window + 1 = {self.window + 1}"
                )
            returns = returns[-self.window :]
        return self._estimate_from(returns)

    def forecast(
        self, history: Any, horizon: int, num_samples: int = 100, seed: int | None = None
    ) -> Forecast:
        """Sample ``num_samples`` paths of ``horizon`` log returns after the last price of
        ``history`` (a 1-D array or Series of prices up to and including the origin)."""
        checks.positive_int(horizon, "horizon")
        checks.positive_int(num_samples, "num_samples")
        mu, sigma = self.estimate(history)
        rng = np.random.default_rng(seed)
        return Forecast(mu + sigma * rng.standard_normal((num_samples, horizon)))

    def _estimate_from(self, returns: np.ndarray) -> tuple[float, float]:
        if returns.size < 2:
            raise ValueError(
                f"need at least 3 prices to estimate volatility, got {returns.size + 1}"
            )
        mu = float(returns.mean()) if self.drift == "historical" else 0.0
        return mu, float(returns.std(ddof=1))

    def __repr__(self) -> str:
        options = f", window={self.window}" if self.volatility == "rolling" else ""
        options += f", drift={self.drift!r}" if self.drift != "zero" else ""
        options += ", fixed=True" if self.fixed else ""
        return f"GaussianRandomWalk(volatility={self.volatility!r}{options})"


# ---------------------------------------------------------------------------- evaluation
@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Scores of probabilistic forecasters over rolling forecast origins.

    Attributes
    ----------
    summary : DataFrame
        One row per forecaster: ``wql`` (weighted quantile loss over all origins and steps),
        ``crps`` (mean), ``quantile_loss`` (mean pinball loss over steps and levels),
        ``coverage_90`` and ``coverage_50`` (share of realised returns inside the 5-95% and
        25-75% intervals; ideally 0.90 and 0.50), ``median_mae`` (mean absolute error of the
        median), ``direction_accuracy`` (share of steps where ``p_up > 0.5`` matches a positive
        realised return) and ``forecasts`` (origins x steps scored).
    by_step : DataFrame
        The same metrics per forecaster and step (MultiIndex ``forecaster, step``).
    per_origin : DataFrame
        Metrics averaged over the steps of each forecast (MultiIndex ``forecaster, origin``;
        ``time`` holds the origin's timestamp when the prices have an index). WQL is left out
        here: normalised by a handful of returns it is too noisy to read.
    origins : ndarray of int, shape (n_origins,)
        Positions ``t`` of the forecast origins in ``prices``.
    actuals : ndarray, shape (n_origins, horizon)
        Realised log returns ``log(P[t + k] / P[t + k - 1])``, ``k = 1 .. horizon``.
    quantiles, crps, p_up : dict of ndarray
        Per forecaster: quantiles ``(n_origins, horizon, 19)`` at :data:`QUANTILE_LEVELS`, CRPS and
        ``p_up`` ``(n_origins, horizon)``; enough to compute further metrics without rerunning.
    """

    summary: pd.DataFrame
    by_step: pd.DataFrame
    per_origin: pd.DataFrame
    origins: np.ndarray
    actuals: np.ndarray
    quantiles: dict[str, np.ndarray] = field(repr=False)
    crps: dict[str, np.ndarray] = field(repr=False)
    p_up: dict[str, np.ndarray] = field(repr=False)

    def __str__(self) -> str:
        return self.summary.to_string()


def rolling_origins(n: int, *, start: int, horizon: int, step: int = 1) -> np.ndarray:
    """Forecast origins ``t = start, start + step, ...`` with ``horizon`` realised bars after each
    (``t + horizon <= n - 1``) among ``n`` prices."""
    for name, value in (("start", start), ("horizon", horizon), ("step", step)):
        checks.positive_int(value, name)
    origins = np.arange(start, n - horizon, step)
    if origins.size == 0:
        raise ValueError(
            f"start + horizon must be <= len(prices) - 1 = {n - 1} for one origin, "
            f"got {start} + {horizon}"
        )
    return origins


def evaluate_probabilistic(
    forecasters: Mapping[str, ProbabilisticForecaster],
    prices: Any,
    *,
    start: int,
    horizon: int,
    step: int = 1,
    num_samples: int = 100,
    seed: int = 0,
) -> EvaluationResult:
    """Rolling-origin evaluation of probabilistic forecasters on one price series.

    At each origin ``t`` in :func:`rolling_origins` every forecaster is called as
    ``forecast(history, horizon, num_samples=num_samples, seed=s_t)`` with ``history`` a fresh
    copy of ``prices[: t + 1]`` (a copy, so not even a view reaches later prices) and scored
    against the realised log returns of bars ``t + 1 .. t + horizon``. A forecaster with a
    ``fit`` method has ``fit(prices[:start])`` called once, before the first origin (the objects
    passed in are fitted in place). All forecasters get the same seed ``s_t`` at an origin
    (derived from ``seed`` and ``t`` only), so differences in scores come from the models rather
    than from sampling noise, and an origin's draws do not depend on ``start`` or ``step``.

    Parameters
    ----------
    forecasters : dict of name -> forecaster
    prices : 1-D array, Series, or a price frame (its ``Close`` is used)
        Series and frames pass Series histories (with their index) to the forecasters.
    start, horizon, step : int
        First origin, steps ahead, and bars between origins.
    num_samples, seed : int

    Returns
    -------
    EvaluationResult
    """
    if not forecasters:
        raise ValueError("forecasters must name at least one forecaster")
    for name, forecaster in forecasters.items():
        if not callable(getattr(forecaster, "forecast", None)):
            raise ValueError(f"forecasters[{name!r}] has no forecast(history, horizon, ...) method")
    checks.integer(num_samples, "num_samples", low=2)  # the CRPS estimate needs two samples
    series = close_series(prices)
    values = as_prices(prices if series is None else series, "prices")
    origins = rolling_origins(values.size, start=start, horizon=horizon, step=step)
    actuals = np.diff(np.log(values))[origins[:, None] + np.arange(horizon)]

    def history(end: int) -> np.ndarray | pd.Series:
        return series.iloc[:end].copy() if series is not None else values[:end].copy()

    for forecaster in forecasters.values():
        if callable(getattr(forecaster, "fit", None)):
            forecaster.fit(history(start))

    # One seed per bar, so an origin's draws do not depend on start or step.
    seeds = np.random.SeedSequence(seed).generate_state(values.size, dtype=np.uint32)
    quantiles, crps, p_up = {}, {}, {}
    for name, forecaster in forecasters.items():
        q = np.empty((origins.size, horizon, len(QUANTILE_LEVELS)))
        c, p = np.empty((origins.size, horizon)), np.empty((origins.size, horizon))
        for i, t in enumerate(origins):  # each origin is a separate call with its own history
            forecast = forecaster.forecast(
                history(t + 1), horizon, num_samples=num_samples, seed=int(seeds[t])
            )
            if not isinstance(forecast, Forecast) or forecast.horizon != horizon:
                raise ValueError(
                    f"forecasters[{name!r}] must return a Forecast of horizon {horizon}, "
                    f"got {forecast!r}"
                )
            q[i] = forecast.quantiles.to_numpy()
            c[i] = crps_from_samples(forecast.samples, actuals[i])
            p[i] = forecast.p_up
        quantiles[name], crps[name], p_up[name] = q, c, p

    index = series.index if series is not None else None
    return EvaluationResult(
        summary=_summary(actuals, quantiles, crps, p_up),
        by_step=_by_step(actuals, quantiles, crps, p_up),
        per_origin=_per_origin(origins, index, actuals, quantiles, crps, p_up),
        origins=origins,
        actuals=actuals,
        quantiles=quantiles,
        crps=crps,
        p_up=p_up,
    )


def _scores(
    actuals: np.ndarray, q: np.ndarray, crps: np.ndarray, p_up: np.ndarray, axis: Any
) -> dict[str, np.ndarray]:
    """Every metric but WQL, averaged over ``axis`` of the (origin, step) arrays."""
    level = {tau: i for i, tau in enumerate(QUANTILE_LEVELS)}
    lower90, upper90 = q[..., level[0.05]], q[..., level[0.95]]
    lower50, upper50 = q[..., level[0.25]], q[..., level[0.75]]
    return {
        "crps": crps.mean(axis=axis),
        "quantile_loss": quantile_loss(actuals, q).mean(axis=-1).mean(axis=axis),
        "coverage_90": ((lower90 <= actuals) & (actuals <= upper90)).mean(axis=axis),
        "coverage_50": ((lower50 <= actuals) & (actuals <= upper50)).mean(axis=axis),
        "median_mae": np.abs(q[..., level[0.5]] - actuals).mean(axis=axis),
        "direction_accuracy": ((p_up > 0.5) == (actuals > 0)).mean(axis=axis),
    }


def _summary(actuals, quantiles, crps, p_up) -> pd.DataFrame:
    rows = {}
    for name, q in quantiles.items():
        row = {"wql": weighted_quantile_loss(actuals, q)}
        row.update(_scores(actuals, q, crps[name], p_up[name], axis=None))
        row["forecasts"] = actuals.size
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("forecaster")


def _by_step(actuals, quantiles, crps, p_up) -> pd.DataFrame:
    frames = []
    for name, q in quantiles.items():
        steps = range(q.shape[1])
        per_step = {"wql": [weighted_quantile_loss(actuals[:, k], q[:, k]) for k in steps]}
        per_step.update(_scores(actuals, q, crps[name], p_up[name], axis=0))
        index = pd.MultiIndex.from_product(
            [[name], range(1, q.shape[1] + 1)], names=["forecaster", "step"]
        )
        frames.append(pd.DataFrame(per_step, index=index))
    return pd.concat(frames)


def _per_origin(origins, time_index, actuals, quantiles, crps, p_up) -> pd.DataFrame:
    frames = []
    for name, q in quantiles.items():
        columns = _scores(actuals, q, crps[name], p_up[name], axis=1)
        index = pd.MultiIndex.from_product([[name], origins], names=["forecaster", "origin"])
        frame = pd.DataFrame(columns, index=index)
        if time_index is not None:
            frame.insert(0, "time", time_index[origins])
        frames.append(frame)
    return pd.concat(frames)
