"""Run several strategies on the same data and costs and rank them: the leaderboard.

Every strategy goes through the same :class:`~tradenn.backtest.Backtest` configuration, so the
rows differ only by the strategy. Strategies whose ``diagnostics()`` report out-of-sample
forecast quality (the model strategies, through
:meth:`strategies.adapters.ForecastStrategy.diagnostics`) fill the forecast columns: OOS R^2
against the zero forecast, directional accuracy, the Diebold-Mariano p-value against the zero
forecast, and the time spent training. The leaderboard reads those by key from
:attr:`Result.diagnostics <tradenn.backtest.Result.diagnostics>` (NaN when absent): it takes
strategy classes and imports no model, agent or ready strategy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.backtest.engine import engine_for
from tradenn.backtest.result import Result
from tradenn.backtest.strategy import Strategy
from tradenn.errors import TradennError

__all__ = ["COLUMNS", "Leaderboard", "compare", "plot_comparison"]

COLUMNS = (
    "Return [%]",
    "Sharpe",
    "Max DD [%]",
    "# Trades",
    "Exposure [%]",
    "OOS R2",
    "Dir. Acc. [%]",
    "DM p-value",
    "Train [s]",
    "Time [s]",
)


@dataclass
class Leaderboard:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    table : DataFrame
        One row per strategy that ran (index: its name), the :data:`COLUMNS`, best Sharpe
        first; NaN where a column does not apply (forecast columns of rule-based strategies).
    results : dict
        Each strategy's full :class:`~tradenn.backtest.Result`, by name.
    errors : dict
        Strategies that failed, by name, with the one-line reason.
    """

    table: pd.DataFrame
    results: dict[str, Result] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    data: pd.DataFrame | None = field(default=None, repr=False)

    def to_string(self) -> str:
        """The table formatted for a terminal, a line per failed strategy at the end."""
        formats = {
            "Return [%]": "{:,.1f}",
            "Sharpe": "{:.2f}",
            "Max DD [%]": "{:.1f}",
            "# Trades": "{:,.0f}",
            "Exposure [%]": "{:.0f}",
            "OOS R2": "{:+.4f}",
            "Dir. Acc. [%]": "{:.1f}",
            "DM p-value": "{:.3f}",
            "Train [s]": "{:.1f}",
            "Time [s]": "{:.1f}",
        }
        shown = self.table.copy().astype(object)
        for column, fmt in formats.items():
            shown[column] = [
                "-"
                if value is None or (isinstance(value, float) and math.isnan(value))
                else fmt.format(value)
                for value in self.table[column]
            ]
        text = shown.to_string()
        if self.errors:  # a failed strategy is a row too: its name and the reason
            width = max(len(str(name)) for name in [*shown.index, *self.errors])
            text += "".join(f"\n{name:<{width}} failed: {why}" for name, why in self.errors.items())
        return text

    def records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per strategy (NaN as None)."""
        rows = []
        for name, row in self.table.iterrows():
            record: dict[str, Any] = {"strategy": name, "label": self.results[name].label}
            for column, value in row.items():
                value = float(value)
                record[column] = value if math.isfinite(value) else None
            rows.append(record)
        return rows

    def plot(self, path: str | Path | None = None):
        """All equity curves on one chart; see :func:`plot_comparison`."""
        return plot_comparison(self, path)

    def _repr_html_(self) -> str:
        """Jupyter's view: the table, failures and the equity curves."""
        from tradenn.backtest.report import leaderboard_html

        return leaderboard_html(self)


def compare(
    data: pd.DataFrame,
    strategies: Sequence[tuple[str, type[Strategy], dict[str, Any]]],
    *,
    progress: bool = False,
    executor: Any = "serial",
    jobs: int | None = None,
    **backtest_options: Any,
) -> Leaderboard:
    """Backtest each ``(name, strategy class, parameters)`` on ``data`` with the same options.

    ``backtest_options`` go to :class:`~tradenn.backtest.Backtest` (cash, commission, ...). A
    strategy that fails is recorded in ``errors`` and the others still run. ``executor``:
    ``"serial"`` (the default: model strategies already use both cores for their matrix
    products), ``"local"`` with ``jobs`` processes, or ``dask://HOST:PORT`` (see
    :mod:`tradenn.backtest.executors`). ``progress`` shows a tqdm bar across strategies (on
    stderr).
    """
    from tqdm import tqdm

    from tradenn.backtest.executors import SerialExecutor, executor_for

    shared = (data, backtest_options)
    with executor_for(executor, jobs) as runner:
        if isinstance(runner, SerialExecutor):
            bar = tqdm(
                strategies, desc="compare", unit="strategy", disable=not progress, leave=False
            )
            outcomes = []
            for run in bar:
                bar.set_postfix_str(run[0])
                outcomes.append(_run_one(shared, run))
        else:
            label = "compare" if progress else None
            outcomes = runner.map(_run_one, list(strategies), shared=shared, progress=label)
    rows, results, errors = {}, {}, {}
    for (name, _, _), (result, error, seconds) in zip(strategies, outcomes, strict=True):
        if error is not None:
            errors[name] = error
            continue
        results[name] = result
        rows[name] = _row(result, seconds)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS), dtype=float)
    table.index.name = "Strategy"
    table = table.sort_values("Sharpe", ascending=False, na_position="last", kind="stable")
    ranked = {k: results[k] for k in table.index}
    return Leaderboard(table=table, results=ranked, errors=errors, data=data)


def _run_one(shared: tuple, run: tuple) -> tuple[Result | None, str | None, float]:
    """One strategy's backtest (a module-level function: executors send it by reference)."""
    data, options = shared
    _, strategy, params = run
    began = time.perf_counter()
    try:
        result = engine_for(strategy)(data, strategy, **options).run(**params)
    except (TradennError, ValueError, TypeError) as error:
        text = str(error).strip()
        return None, text.splitlines()[0] if text else repr(error), 0.0
    return result, None, time.perf_counter() - began


def _row(result: Result, seconds: float) -> dict[str, float]:
    stats, extra = result.stats, result.diagnostics
    nan = math.nan
    return {
        "Return [%]": stats["Return [%]"],
        "Sharpe": stats["Sharpe Ratio"],
        "Max DD [%]": stats["Max. Drawdown [%]"],
        "# Trades": stats["# Trades"],
        "Exposure [%]": stats["Exposure Time [%]"],
        "OOS R2": extra.get("OOS R2", nan),
        "Dir. Acc. [%]": extra.get("Directional Accuracy [%]", nan),
        "DM p-value": extra.get("DM p-value", nan),
        "Train [s]": extra.get("Training Time [s]", nan),
        "Time [s]": seconds,
    }


def plot_comparison(board: Leaderboard, path: str | Path | None = None):
    """Every strategy's equity (as a multiple of starting cash) and buy & hold, log scale.

    Draws on a bare Agg figure (no pyplot); saves a PNG to ``path`` when given; returns the
    figure.
    """
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tradenn.backtest.plotting import DPI, thin_last, time_axis

    fig = Figure(figsize=(12.0, 6.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    data = board.data
    colors = _palette(len(board.results))
    for (name, result), color in zip(board.results.items(), colors, strict=True):
        equity = result.equity.to_numpy(dtype=np.float64)
        growth = equity / equity[0]
        sharpe = board.table.loc[name, "Sharpe"]
        label = f"{name} (Sharpe {sharpe:.2f})" if math.isfinite(sharpe) else name
        x = time_axis(result.equity.index)
        ax.plot(*thin_last(x, growth), linewidth=1.0, color=color, label=label)
    if isinstance(data, pd.DataFrame) and "Close" in data.columns:
        close = data["Close"].to_numpy(dtype=np.float64)
        ax.plot(
            *thin_last(time_axis(data.index), close / close[0]),
            color="black",
            linewidth=1.6,
            linestyle="--",
            label="Buy & hold",
        )
        ax.set_title(
            f"{data.attrs.get('source', 'data')}: {len(board.results)} strategies, "
            f"{data.index[0].date()} .. {data.index[-1].date()}",
            fontsize=11,
        )
    ax.set_yscale("log")
    ax.set_ylabel("Equity / starting cash (log scale)")
    ax.axhline(1.0, color="#7f7f7f", linewidth=0.6)
    ax.grid(True, which="both", color="#e5e5e5", linewidth=0.6)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.85, ncols=2)
    locator = mdates.AutoDateLocator(minticks=5, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if path is not None:
        fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return fig


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]
