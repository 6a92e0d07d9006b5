"""Parameter optimization: grid and random sweeps, walk-forward optimization, overfitting guards.

>>> sweep = optimize(Backtest("SPX", SmaCross), fast=range(5, 55, 5), slow=range(20, 220, 20),
...                  constraint=lambda p: p["fast"] < p["slow"])
>>> sweep.best_params, sweep.best_stats["Sharpe Ratio"], sweep.deflated_sharpe, sweep.pbo
>>> sweep.table                      # one row per combination
>>> sweep.heatmap("fast", "slow", "heatmap.png")

Every combination is an independent :meth:`Backtest.run` sent through an executor
(:mod:`tradenn.backtest.executors`: local processes by default, ``jobs=1`` or
``executor="serial"`` in this process, or a Dask cluster). The backtest (data and settings) goes
to each worker once; each trial sends back only its statistics and its per-bar equity returns
(float64, one array of length ``T - 1``), never the full result.

Look-ahead: a single run proves a ``positions()`` strategy causal by calling it again on the
first third and two thirds of the data, or of its first 20,000 bars (see :meth:`Backtest.run`).
A sweep does that for :data:`CHECKED_TRIALS` combinations evenly spaced over it (the first and
the last included) and runs the others without the two extra calls, which tripled a sweep's
``positions()`` cost; the best combination is re-run checked. ``tradenn check-lookahead`` is
the thorough audit.

A combination that the strategy rejects (the engine turns its ``ValueError``/``TypeError`` into a
:class:`BacktestError`) is a failed row with a NaN metric and the reason; the sweep goes on.

Overfitting guards are computed from the sweep's own trials (see
:mod:`tradenn.backtest.overfitting`): the deflated Sharpe ratio of the best combination and the
probability of backtest overfitting (CSCV on the ``(T - 1, N)`` matrix of trial returns).

Walk-forward optimization (:func:`walk_forward_optimize`) re-optimizes on rolling in-sample
windows and trades each following out-of-sample window with the parameters chosen before it.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.backtest.engine import Backtest, BacktestError
from tradenn.backtest.executors import Interrupted, executor_for
from tradenn.backtest.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    trial_moments,
    trial_sharpes,
)
from tradenn.backtest.result import Result
from tradenn.backtest.stats import (
    STAT_KEYS,
    ImplausibleResultWarning,
    compute_stats,
    is_count,
    warn_if_implausible,
)
from tradenn.backtest.strategy import Strategy
from tradenn.data.calendar import bars_per_year as _infer_bars_per_year

__all__ = [
    "KEY_STATS",
    "OptimizeResult",
    "Steps",
    "WalkForwardOptimization",
    "optimize",
    "walk_forward_optimize",
]

KEY_STATS: tuple[str, ...] = ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades")
"""Statistics every row of a sweep's table shows besides the optimized metric."""

_NON_NUMERIC = {
    "Start",
    "End",
    "Duration",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "Max. Trade Duration",
    "Avg. Trade Duration",
}
_METRICS = tuple(k for k in (*STAT_KEYS, "# Orders Rejected") if k not in _NON_NUMERIC)
_MAX_GRID = 1_000_000  # a full grid larger than this needs max_tries (or method="random")
_AGGREGATES = ("max", "min", "mean", "median")


# ------------------------------------------------------------------------------ results


@dataclass
class OptimizeResult:
    """The outcome of :func:`optimize`.

    Attributes
    ----------
    best_params : dict
        The best combination (every strategy parameter, the swept ones at their best values).
    best_stats : Series
        Its statistics, as from :meth:`Backtest.run`.
    best : Result
        Its full result (re-run in this process once the sweep is done).
    table : DataFrame
        One row per combination tried, in grid order: the swept parameters, the metric, the
        :data:`KEY_STATS` and ``Error`` (the reason a combination failed, else None).
    metric : str
        The optimized statistic (a stats key, or the callable's name).
    maximize : bool
        True when larger metric values are better.
    trials : int
        Combinations that ran (failed ones excluded); the ``N`` of the deflated Sharpe ratio.
    deflated_sharpe : float
        Deflated Sharpe ratio of the best combination, given the ``trials`` tried and the
        variance of their Sharpe ratios (NaN when undefined).
    pbo : float
        Probability of backtest overfitting of the sweep (NaN with fewer than two trials or too
        few bars).
    pbo_logits : ndarray
        The CSCV logits behind ``pbo``.
    returns : ndarray, shape (T - 1, trials)
        Per-bar equity returns of every trial that ran, in table order.
    interrupted : bool
        The sweep was stopped (Ctrl-C, SIGTERM) before every combination ran: the table holds
        the combinations that had finished (the first ones, in grid order).
    total : int
        Combinations the sweep was to run.
    """

    best_params: dict[str, Any]
    best_stats: pd.Series
    best: Result
    table: pd.DataFrame
    metric: str
    maximize: bool
    trials: int
    deflated_sharpe: float
    pbo: float
    pbo_logits: np.ndarray = field(repr=False)
    returns: np.ndarray = field(repr=False)
    interrupted: bool = False
    total: int = 0

    def summary(self, top: int = 10) -> str:
        """The best combination, the overfitting guards and the ``top`` rows, for a terminal."""
        ok = self.table[self.table["Error"].isna()]
        ranked = ok.sort_values(self.metric, ascending=not self.maximize, kind="stable")
        failed = len(self.table) - len(ok)
        best = ", ".join(f"{k}={v!r}" for k, v in self.best_params.items())
        lines = [
            f"{self.best.strategy_name}: {self.trials} trials"
            + (f" ({failed} failed)" if failed else "")
            + (
                f" (INTERRUPTED: {len(self.table)} of {self.total} combinations ran)"
                if self.interrupted
                else ""
            )
            + f", {'maximize' if self.maximize else 'minimize'} {self.metric}",
            f"best: {best}",
            f"{self.metric}: {_number(self.best_stats.get(self.metric, float('nan')))}   "
            f"Return [%]: {_number(self.best_stats['Return [%]'])}   "
            f"# Trades: {self.best_stats['# Trades']}",
            f"Deflated Sharpe Ratio (probability the best Sharpe is real, given "
            f"{self.trials} trials): {_number(self.deflated_sharpe)}",
            f"Probability of Backtest Overfitting (CSCV): {_number(self.pbo)}",
            "",
            ranked.drop(columns=["Error"]).head(top).to_string(index=False),
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter's view: the sweep, the guards, the top rows and the best run."""
        from tradenn.backtest.report import optimize_html

        return optimize_html(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: best parameters and stats, guards, every row of the table."""
        return {
            "strategy": self.best.strategy_name,
            "interrupted": self.interrupted,
            "combinations": self.total,
            "metric": self.metric,
            "maximize": self.maximize,
            "trials": self.trials,
            "best_params": self.best_params,
            "best_stats": {k: _json(v) for k, v in self.best_stats.items()},
            "deflated_sharpe": _json(self.deflated_sharpe),
            "pbo": _json(self.pbo),
            "table": [
                {k: _json(v) for k, v in row.items()} for row in self.table.to_dict("records")
            ],
        }

    def heatmap(
        self,
        x: str,
        y: str,
        path: str | Path | None = None,
        agg: str | None = None,
    ):
        """The metric over parameters ``x`` (columns) and ``y`` (rows), other swept parameters
        aggregated with ``agg`` (``"max"``, ``"min"``, ``"mean"``, ``"median"``; default the
        optimization direction). Saves a PNG to ``path`` when given; returns the Figure."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        swept = [c for c in self.table.columns if c not in {self.metric, *KEY_STATS, "Error"}]
        for name, value in (("x", x), ("y", y)):
            if value not in swept:
                raise ValueError(
                    f"OptimizeResult.heatmap: {name}={value!r} is not a swept parameter; "
                    f"swept: {', '.join(swept)}"
                )
        if x == y:
            raise ValueError(f"OptimizeResult.heatmap: x and y must differ, both are {x!r}")
        agg = agg or ("max" if self.maximize else "min")
        if agg not in _AGGREGATES:
            raise ValueError(
                f"OptimizeResult.heatmap: agg must be one of {_AGGREGATES}, got {agg!r}"
            )
        grid = self.table.pivot_table(index=y, columns=x, values=self.metric, aggfunc=agg)
        grid = grid.sort_index().sort_index(axis=1)
        figure = Figure(figsize=(8.0, 6.0), dpi=110)
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        values = grid.to_numpy(dtype=np.float64, na_value=np.nan)
        image = ax.imshow(
            np.ma.masked_invalid(values), origin="lower", aspect="auto", cmap="viridis"
        )
        ax.set_xticks(range(len(grid.columns)), [_tick(v) for v in grid.columns], rotation=45)
        ax.set_yticks(range(len(grid.index)), [_tick(v) for v in grid.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if values.size <= 400:  # annotate cells while they are large enough to read
            for (i, j), value in np.ndenumerate(values):
                if math.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w")
        figure.colorbar(image, ax=ax, label=f"{self.metric} ({agg})")
        ax.set_title(f"{self.metric} over {x} x {y}")
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure


def _tick(value: Any) -> str:
    numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    return f"{value:g}" if numeric else str(value)


@dataclass
class WalkForwardOptimization:
    """The outcome of :func:`walk_forward_optimize`.

    Attributes
    ----------
    windows : DataFrame
        One row per window: in-sample and out-of-sample bar ranges (``IS Start``, ``IS End``,
        ``OOS Start``, ``OOS End`` as timestamps, end inclusive), the parameters chosen
        in-sample, ``IS <metric>`` (the best in-sample value) and ``OOS <metric>``.
    equity : Series
        Stitched out-of-sample equity: the starting cash compounded by the out-of-sample
        returns of every window, from the bar before the first out-of-sample bar.
    returns : Series
        The out-of-sample per-bar returns behind ``equity``.
    stats : Series
        :func:`~tradenn.backtest.stats.compute_stats` of ``equity`` and the out-of-sample trades
        (trade PnLs are in the money of each window's account, which starts at the cash).
    trades : DataFrame
        Every out-of-sample trade.
    metric : str
        The optimized statistic.
    """

    windows: pd.DataFrame
    equity: pd.Series
    returns: pd.Series
    stats: pd.Series
    trades: pd.DataFrame
    metric: str

    def summary(self) -> str:
        """Per-window choices and the stitched out-of-sample statistics, for a terminal."""
        keys = ["Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades"]
        shown = "   ".join(f"{k}: {_number(self.stats[k])}" for k in keys if k in self.stats)
        return "\n".join(
            [
                f"walk-forward optimization: {len(self.windows)} windows, metric {self.metric}",
                self.windows.to_string(index=False),
                "",
                f"out of sample, stitched: {shown}",
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the windows and the out-of-sample statistics."""
        return {
            "metric": self.metric,
            "windows": [
                {k: _json(v) for k, v in row.items()} for row in self.windows.to_dict("records")
            ],
            "stats": {k: _json(v) for k, v in self.stats.items()},
        }


def _number(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if value != value else f"{value:,.4f}"
    return str(value)


def _counts_as_integers(
    table: pd.DataFrame, columns: Sequence[str], statistic: str | None = None
) -> pd.DataFrame:
    """``table`` with its ``columns`` that hold a count (:func:`~tradenn.backtest.stats.
    is_count`; of ``statistic``, when given) as integers, ``<NA>`` where a combination failed:
    ``# Trades`` prints 175, not 175.0."""
    for column in dict.fromkeys(columns):
        if column in table and is_count(column if statistic is None else statistic):
            table[column] = table[column].astype("Int64")
    return table


def _json(value: Any) -> Any:
    if value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return str(value)
    return value


# ------------------------------------------------------------------------- the sweep


CHECKED_TRIALS = 8
"""Combinations of a sweep whose ``positions()`` is proved causal (evenly spaced over the
sweep, the first and last included); the others run without the two extra calls."""


def _run_trial(
    shared: tuple[Backtest, tuple[str, ...] | None], trial: tuple[dict[str, Any], bool]
) -> tuple[Any, Any]:
    """One combination, in a worker: ``(stats, per-bar returns)`` or ``(None, reason)``. The
    stats are the Series, or only the statistics named in ``shared`` (what the sweep's table
    shows) as a dict: that is all a worker sends back besides the returns."""
    (backtest, keep), (params, check) = shared, trial
    if not check and backtest.check_positions:
        backtest = copy.copy(backtest)
        backtest.check_positions = False
    try:
        stats, equity = backtest.evaluate(**params)
    except BacktestError as error:
        return None, str(error)
    if keep is not None:
        stats = {key: stats[key] for key in keep}
    return stats, _equity_returns(equity)


def _equity_returns(equity: np.ndarray) -> np.ndarray:
    """``E_t / E_{t-1} - 1``; 0 after a non-positive equity (a blown account has no return)."""
    before = equity[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before > 0, equity[1:] / before - 1.0, 0.0)


class Steps(Sequence):
    """The floats ``start, start + step, ...`` (``count`` of them, rounded to 12 decimals),
    computed when indexed: a parameter range that is never materialized (``range`` for
    floats)."""

    def __init__(self, start: float, step: float, count: int) -> None:
        self.start, self.step, self.count = float(start), float(step), int(count)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.count))]
        if not -self.count <= i < self.count:
            raise IndexError(f"Steps index {i} out of range")
        return round(self.start + (i % self.count) * self.step, 12)

    def __repr__(self) -> str:
        return f"Steps({self.start:g}, step={self.step:g}, count={self.count})"


def _check_ranges(backtest: Backtest, ranges: dict[str, Any]) -> dict[str, list]:
    name = backtest.strategy.__name__
    known = backtest.strategy.parameters()
    if not ranges:
        raise BacktestError(
            f"optimize: give at least one parameter range, e.g. fast=range(5, 50, 5); "
            f"{name}'s parameters: {', '.join(known) or 'none'}"
        )
    values: dict[str, list] = {}
    for param, spec in ranges.items():
        if param not in known:
            raise BacktestError(
                f"optimize: {name} has no parameter {param!r}; its parameters: "
                f"{', '.join(known) or 'none'}"
            )
        if isinstance(spec, str | bytes) or not isinstance(spec, Iterable):
            raise BacktestError(
                f"optimize: the range of {param!r} must be an iterable of values (a list, range "
                f"or array), got {spec!r}"
            )
        if isinstance(spec, range | Steps):
            items = spec  # distinct values, indexed on demand: a huge range is never built
        else:
            items = [v.item() if isinstance(v, np.generic) else v for v in spec]
            items = list(dict.fromkeys(items))  # duplicates would only repeat a trial
        if not len(items):
            raise BacktestError(f"optimize: the range of {param!r} is empty")
        values[param] = items
    return values


def _metric_function(maximize: str | Callable) -> tuple[str, Callable[[pd.Series], float]]:
    if callable(maximize):
        label = getattr(maximize, "__name__", "metric")
        return ("metric" if label == "<lambda>" else label), maximize
    if maximize not in _METRICS:
        raise BacktestError(
            f"optimize: maximize must be a numeric statistic or a callable(stats) -> float, got "
            f"{maximize!r}; statistics: {', '.join(_METRICS)}"
        )
    return maximize, lambda stats: stats[maximize]


def _as_float(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _select(
    sizes: list[int],
    names: list[str],
    values: dict[str, list],
    constraint: Callable[[dict], bool] | None,
    method: str,
    max_tries: int | float | None,
    random_state: int | None,
) -> list[dict[str, Any]]:
    """The combinations to run, in grid order."""
    total = math.prod(sizes)

    def combo(flat: int) -> dict[str, Any]:
        digits = np.unravel_index(flat, sizes)
        return {n: values[n][int(d)] for n, d in zip(names, digits, strict=True)}

    def allowed(params: dict[str, Any]) -> bool:
        return constraint is None or bool(constraint(params))

    if max_tries is None:
        if method == "random":
            raise BacktestError("optimize: method='random' needs max_tries (how many draws)")
        if total > _MAX_GRID:
            raise BacktestError(
                f"optimize: the grid has {total:,} combinations; pass max_tries (--max-tries) "
                f"to sample it or narrow the ranges"
            )
        chosen = [p for p in map(combo, range(total)) if allowed(p)]
    else:
        if isinstance(max_tries, bool) or not isinstance(max_tries, int | float):
            raise BacktestError(f"optimize: max_tries must be a number, got {max_tries!r}")
        if isinstance(max_tries, float):
            if not 0 < max_tries <= 1:
                raise BacktestError(
                    f"optimize: a fractional max_tries must lie in (0, 1], got {max_tries!r}"
                )
            wanted = max(1, math.ceil(max_tries * total))
        elif max_tries < 1:
            raise BacktestError(f"optimize: max_tries must be >= 1, got {max_tries!r}")
        else:
            wanted = max_tries
        rng = np.random.default_rng(random_state)
        picked: list[int] = []
        # Draw without replacement until enough pass the constraint or the grid is exhausted.
        order = rng.permutation(total) if total <= _MAX_GRID else _distinct_draws(rng, total)
        for flat in order:
            if allowed(combo(int(flat))):
                picked.append(int(flat))
                if len(picked) == wanted:
                    break
        chosen = [combo(flat) for flat in sorted(picked)]
    if not chosen:
        raise BacktestError(f"optimize: no combination of the {total:,} satisfies the constraint")
    return chosen


def _distinct_draws(rng: np.random.Generator, total: int) -> Iterable[int]:
    """Distinct uniform draws from ``range(total)`` for grids too large to permute."""
    seen: set[int] = set()
    while len(seen) < total:
        flat = int(rng.integers(total))
        if flat not in seen:
            seen.add(flat)
            yield flat


def optimize(
    backtest: Backtest,
    *,
    maximize: str | Callable[[pd.Series], float] = "Sharpe Ratio",
    minimize: bool = False,
    constraint: Callable[[dict[str, Any]], bool] | None = None,
    method: str = "grid",
    max_tries: int | float | None = None,
    random_state: int | None = None,
    executor: Any = None,
    jobs: int | None = None,
    pbo_blocks: int = 16,
    progress: bool = False,
    **ranges: Iterable[Any],
) -> OptimizeResult:
    """Sweep strategy parameters and keep the best combination.

    Parameters
    ----------
    backtest : Backtest
        The data, strategy and settings; every combination runs through ``backtest.run``.
    maximize : str or callable
        A numeric statistic (``"Sharpe Ratio"``, ``"Return [%]"``, ...) or ``f(stats) -> float``
        computed in this process from each trial's stats; NaN (or an exception-free non-number)
        marks a trial that cannot be ranked.
    minimize : bool
        Smaller metric values are better (for a loss-like statistic or callable).
    constraint : callable, optional
        ``f(params dict) -> bool``; combinations for which it is False are skipped.
    method : {"grid", "random"}
        ``"grid"``: every combination (a seeded random subset of ``max_tries`` when given).
        ``"random"``: ``max_tries`` seeded draws without replacement from the grid.
    max_tries : int or float, optional
        How many combinations to run at most; a float in ``(0, 1]`` is a fraction of the grid.
    random_state : int, optional
        Seed for the random subset.
    executor, jobs
        Where the trials run (see :func:`~tradenn.backtest.executors.make_executor`): default
        local processes (``jobs`` of them), ``"serial"``, ``"dask://HOST:PORT"``, an Executor or
        a Dask Client. An executor passed in is not closed.
    pbo_blocks : int
        Number of CSCV blocks for the PBO (even; fewer when the data are short: at least 4 bars
        per block).
    progress : bool
        Show a progress bar with an ETA (on a terminal).
    **ranges
        Parameter name -> iterable of values (list, range, numpy array). A strategy parameter
        named like one of the arguments above cannot be swept through this function.

    Returns
    -------
    OptimizeResult
        On Ctrl-C (KeyboardInterrupt) during the sweep the workers stop at once and the result
        holds the combinations that had finished, with ``interrupted`` set.
    """
    values = _check_ranges(backtest, ranges)
    label, metric_of = _metric_function(maximize)
    if method not in ("grid", "random"):
        raise BacktestError(f"optimize: method must be 'grid' or 'random', got {method!r}")
    if constraint is not None and not callable(constraint):
        raise BacktestError(
            f"optimize: constraint must be a callable(params) -> bool, got {constraint!r}"
        )
    names = list(values)
    combos = _select(
        [len(values[n]) for n in names], names, values, constraint, method, max_tries, random_state
    )

    checked = set(np.linspace(0, len(combos) - 1, min(CHECKED_TRIALS, len(combos))).astype(int))
    trials = [(params, k in checked) for k, params in enumerate(combos)]
    interrupted = False
    with executor_for(executor, jobs) as runner:
        try:
            outcomes = runner.map(
                _run_trial,
                trials,
                shared=(backtest, None if callable(maximize) else (label, *KEY_STATS)),
                progress="optimize" if progress else None,
            )
        except Interrupted as stop:
            if not stop.done:
                raise
            outcomes, interrupted = stop.done, True
    total, combos = len(combos), combos[: len(outcomes)]

    rows, kept_returns, kept_rows = [], [], []
    for position, (params, (stats, payload)) in enumerate(zip(combos, outcomes, strict=True)):
        row: dict[str, Any] = dict(params)
        if stats is None:
            row.update({label: math.nan, **dict.fromkeys(KEY_STATS, math.nan), "Error": payload})
        else:
            row[label] = _as_float(metric_of(stats))
            row.update({key: _as_float(stats[key]) for key in KEY_STATS if key != label})
            row["Error"] = None
            kept_returns.append(payload)
            kept_rows.append(position)
        rows.append(row)
    table = pd.DataFrame(
        rows, columns=[*names, label, *(k for k in KEY_STATS if k != label), "Error"]
    )

    if not kept_rows:
        raise BacktestError(
            f"optimize: all {len(combos)} combinations failed; the first: {rows[0]['Error']}"
        )
    scores = table[label].to_numpy(dtype=np.float64)
    if np.isnan(scores).all():
        raise BacktestError(f"optimize: no combination gave a finite {label!r}")
    best_row = int(np.nanargmin(scores) if minimize else np.nanargmax(scores))
    best = backtest.run(**combos[best_row])

    returns = np.column_stack(kept_returns)  # (T - 1, trials)
    dsr, pbo, logits = _guards(backtest, returns, kept_rows.index(best_row), pbo_blocks)
    return OptimizeResult(
        best_params=dict(best.params),
        best_stats=best.stats,
        best=best,
        table=_counts_as_integers(table, [label, *KEY_STATS]),
        metric=label,
        maximize=not minimize,
        trials=len(kept_rows),
        deflated_sharpe=dsr,
        pbo=pbo,
        pbo_logits=logits,
        returns=returns,
        interrupted=interrupted,
        total=total,
    )


def _guards(
    backtest: Backtest, returns: np.ndarray, best: int, pbo_blocks: int
) -> tuple[float, float, np.ndarray]:
    """Deflated Sharpe ratio of trial ``best`` and the PBO of all trials (excess returns)."""
    index = backtest.data.index
    bpy = backtest.bars_per_year or (_infer_bars_per_year(index) if len(index) > 1 else 1.0)
    excess = returns - backtest.risk_free_rate / bpy if backtest.risk_free_rate else returns
    sharpes = trial_sharpes(excess)
    finite = sharpes[np.isfinite(sharpes)]
    dsr = math.nan
    if math.isfinite(sharpes[best]) and len(excess) >= 2:
        _, skew, kurtosis = (float(v[0]) for v in trial_moments(excess[:, best : best + 1]))
        variance = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
        dsr = deflated_sharpe_ratio(
            float(sharpes[best]),
            len(excess),
            skew,
            kurtosis,
            n_trials=excess.shape[1],
            sr_variance=variance,
        )
    blocks = min(pbo_blocks, 2 * (len(excess) // 8))  # at least 4 bars per block
    if excess.shape[1] < 2 or blocks < 2:
        return dsr, math.nan, np.empty(0)
    found = probability_of_backtest_overfitting(excess, n_blocks=blocks)
    return dsr, found.pbo, found.logits


# ------------------------------------------------------------------ walk-forward


def _trading_from(strategy: type[Strategy], start: int) -> type[Strategy]:
    """``strategy`` that may only act from bar ``start`` on: ``next()`` is skipped before it and
    ``positions()`` is flat before it. Indicators still see (and warm up on) every earlier bar."""

    def next(self) -> None:
        if len(self.data) > start:
            strategy.next(self)

    namespace: dict[str, Any] = {
        "__module__": strategy.__module__,
        "__doc__": strategy.__doc__,
        "next": next,
    }
    if hasattr(strategy, "positions"):

        def positions(self, data: pd.DataFrame) -> np.ndarray:
            raw = strategy.positions(self, data)
            targets = np.array(
                raw.to_numpy() if isinstance(raw, pd.Series) else raw, dtype=np.float64
            )
            targets[:start] = 0.0
            return targets

        namespace["positions"] = positions
    return type(strategy.__name__, (strategy,), namespace)


def _windows(n: int, train: int, test: int) -> list[tuple[int, int, int, int]]:
    """``(is_start, is_end, oos_start, oos_end)`` bar ranges, ends exclusive; the last
    out-of-sample window may be shorter."""
    found = []
    k = 0
    while k * test + train < n:
        lo = k * test
        found.append((lo, lo + train, lo + train, min(lo + train + test, n)))
        k += 1
    return found


def walk_forward_optimize(
    backtest: Backtest,
    *,
    train: int,
    test: int,
    maximize: str | Callable[[pd.Series], float] = "Sharpe Ratio",
    minimize: bool = False,
    constraint: Callable[[dict[str, Any]], bool] | None = None,
    method: str = "grid",
    max_tries: int | float | None = None,
    random_state: int | None = None,
    executor: Any = None,
    jobs: int | None = None,
    progress: bool = False,
    **ranges: Iterable[Any],
) -> WalkForwardOptimization:
    """Optimize on rolling in-sample windows; trade each next window with the chosen parameters.

    Windows are anchored at the first bar: window ``k`` optimizes on bars
    ``[k test, k test + train)`` and trades bars ``[k test + train, k test + train + test)``
    (the last one may be shorter), so the out-of-sample windows tile the data after the first
    ``train`` bars without overlapping.

    In-sample, :func:`optimize` runs on the in-sample bars alone (indicator warm-up uses part of
    the window). Out-of-sample, the strategy runs on every bar up to the window's end, so its
    indicators are warm at the window start, but it may only act from the window's first bar:
    ``next()`` is not called and ``positions()`` is flat before it. The account starts flat at
    the window start and any position left at the window end is closed at its last close (with
    costs). So each out-of-sample return comes from decisions taken inside the window with
    parameters chosen on the bars before it.

    Parameters
    ----------
    backtest : Backtest
        The full data, strategy and settings.
    train, test : int
        In-sample and out-of-sample window lengths in bars.
    maximize, minimize, constraint, method, max_tries, random_state, executor, jobs, progress,
    **ranges
        As in :func:`optimize`, for each in-sample optimization. One executor serves every
        window.

    Returns
    -------
    WalkForwardOptimization
    """
    n = len(backtest.data)
    for name, value in (("train", train), ("test", test)):
        checks.positive_int(value, name, "walk_forward_optimize", error=BacktestError)
    if train < 2 or train >= n:
        raise BacktestError(
            f"walk_forward_optimize: train must lie in [2, {n - 1}] for {n} bars, got {train}"
        )
    _check_ranges(backtest, ranges)
    label, metric_of = _metric_function(maximize)
    index = backtest.data.index
    bpy = backtest.bars_per_year or _infer_bars_per_year(index)
    base = copy.copy(backtest)
    base.bars_per_year = bpy  # short windows would infer their own, differently

    rows, pieces, positions, trades, commissions = [], [], [], [], 0.0
    # The windows' runs stay quiet about implausible results: the stitched result warns once.
    with warnings.catch_warnings(), executor_for(executor, jobs) as runner:
        warnings.simplefilter("ignore", ImplausibleResultWarning)
        for is_lo, is_hi, lo, hi in _windows(n, train, test):
            inside = copy.copy(base)
            inside.data = backtest.data.iloc[is_lo:is_hi]
            sweep = optimize(
                inside,
                maximize=maximize,
                minimize=minimize,
                constraint=constraint,
                method=method,
                max_tries=max_tries,
                random_state=random_state,
                executor=runner,
                progress=progress,
                **ranges,
            )
            if sweep.interrupted:  # a window cut short cannot be traded out of sample
                raise KeyboardInterrupt
            outside = copy.copy(base)
            outside.data = backtest.data.iloc[:hi]
            outside.strategy = _trading_from(backtest.strategy, lo)
            outside.finalize_trades = True
            result = outside.run(**sweep.best_params)
            segment = result.equity.iloc[lo - 1 : hi]  # from the flat bar before the window
            window_stats = compute_stats(
                segment,
                result.trades,
                backtest.data["Close"].iloc[lo - 1 : hi],
                result.position.to_numpy()[lo - 1 : hi],
                commissions=float(result.stats["Commissions [$]"]),
                bars_per_year=bpy,
                risk_free_rate=backtest.risk_free_rate,
            )
            pieces.append(_equity_returns(segment.to_numpy(dtype=np.float64)))
            positions.append(result.position.to_numpy()[lo:hi])
            trades.append(result.trades)
            commissions += float(result.stats["Commissions [$]"])
            swept = {k: sweep.best_params[k] for k in ranges}
            rows.append(
                {
                    "IS Start": index[is_lo],
                    "IS End": index[is_hi - 1],
                    "OOS Start": index[lo],
                    "OOS End": index[hi - 1],
                    **swept,
                    f"IS {label}": _as_float(metric_of(sweep.best_stats)),
                    f"OOS {label}": _as_float(metric_of(window_stats)),
                }
            )

    first = train  # the first out-of-sample bar
    oos_returns = np.concatenate(pieces)
    equity = pd.Series(
        backtest.cash * np.cumprod(np.concatenate(([1.0], 1.0 + oos_returns))),
        index=index[first - 1 :],
        name="Equity",
    )
    all_trades = pd.concat([t for t in trades if len(t)] or trades[:1], ignore_index=True)
    stats = compute_stats(
        equity,
        all_trades,
        backtest.data["Close"].iloc[first - 1 :],
        np.concatenate(([0.0], *positions)),
        commissions=commissions,
        bars_per_year=bpy,
        risk_free_rate=backtest.risk_free_rate,
    )
    warn_if_implausible(f"{backtest.strategy.__name__} walk-forward", stats, len(equity))
    return WalkForwardOptimization(
        windows=_counts_as_integers(pd.DataFrame(rows), [f"IS {label}", f"OOS {label}"], label),
        equity=equity,
        returns=pd.Series(oos_returns, index=index[first:], name="Return"),
        stats=stats,
        trades=all_trades,
        metric=label,
    )
