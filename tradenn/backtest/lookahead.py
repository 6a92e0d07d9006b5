"""Look-ahead audit: does any decision change when the future is removed or altered?

:func:`check_lookahead` runs a strategy on the full data, on truncated copies ending at several
cut points and (with ``perturb``) on copies whose bars after each cut are randomly perturbed.
A causal strategy decides the same thing at every bar up to the cut in all of them; the first
bar where a decision differs is where it used data it could not have had.

Decisions are compared where they are made:

* ``positions()`` strategies: the target exposure at each bar <= cut.
* ``next()`` strategies: the orders placed at each bar <= cut (side, size, type, limit, stop,
  stop-loss, take-profit, tag) and the position held at each bar's close. Fills at t+1 of an
  order placed at t are not decisions at t, so order status and fill are not compared.

Truncation reruns ``positions()`` on a prefix with the instance built on the full frame (the
contract the engine's own two-cut check enforces); perturbed runs build a fresh instance on the
perturbed frame, so a strategy that reaches the future by another route than the frame handed
to ``positions()`` (``self.data``'s underlying frame, say) is caught there. ``next()``
strategies get a fresh backtest per copy. A strategy holding its own copy of the full data (a
module-level frame, a closure over a frame loaded elsewhere) cannot be caught by any rerun:
nothing the checker feeds it reaches that copy.

Model strategies cache fitted models by a digest of their training data; the runs of one check
share those caches, so truncated runs reuse the models of the full run, and a perturbed run
refits only the folds trained on perturbed bars. Keep ``cuts`` small for them.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.backtest.engine import Backtest
from tradenn.backtest.runner import Runner, TooFewBarsWarning, parameter_values, target_array
from tradenn.backtest.series import LookAheadError
from tradenn.backtest.stats import ImplausibleResultWarning
from tradenn.backtest.strategy import Strategy
from tradenn.errors import BacktestError, TradennError

__all__ = ["Finding", "LookaheadReport", "check_lookahead"]

_CACHES = ("_models", "_agents")  # content-addressed model caches safe to share between runs
_ORDER_FIELDS = ("Side", "Size", "Type", "Limit", "Stop", "SL", "TP", "Tag")
_BAR_IN_MESSAGE = re.compile(r"at bar (\d+)")
_SHOWN = 5  # findings listed in the summary


@dataclass(frozen=True)
class Finding:
    """One run in which a decision at or before the cut changed.

    Attributes
    ----------
    kind : str
        ``"truncated"`` (later bars removed), ``"perturbed"`` (later bars altered) or
        ``"engine"`` (the engine's or an indicator's own check raised ``LookAheadError``).
    cut : int or None
        Position of the last bar kept unaltered (None for an engine finding on the full data).
    bar : int or None
        Position of the first bar whose decision changed (None when it cannot be told).
    time : Timestamp or None
        Timestamp of ``bar``.
    detail : str
        What changed, e.g. ``"target 1 -> -1"``.
    """

    kind: str
    cut: int | None
    bar: int | None
    time: pd.Timestamp | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "kind": self.kind,
            "cut": self.cut,
            "bar": self.bar,
            "time": None if self.time is None else self.time.isoformat(),
            "detail": self.detail,
        }


@dataclass
class LookaheadReport:
    """The outcome of :func:`check_lookahead`.

    Attributes
    ----------
    strategy : str
        The strategy's label, with its overridden parameters.
    mode : str
        ``"positions"``, ``"next"`` or ``"weights"`` (portfolios): which decisions were
        compared.
    bars : int
        Bars in the data.
    cuts : list of int
        Positions of the cut bars.
    runs : int
        Strategy runs made (the full one included).
    findings : list of Finding
        Every run whose decisions changed, in the order run.
    """

    strategy: str
    mode: str
    bars: int
    cuts: list[int]
    runs: int
    index: pd.DatetimeIndex = field(repr=False)
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when no decision changed in any run."""
        return not self.findings

    @property
    def first_index(self) -> int | None:
        """Position of the earliest changed decision over all findings (None when clean)."""
        bars = [f.bar for f in self.findings if f.bar is not None]
        return min(bars) if bars else None

    @property
    def first_bar(self) -> pd.Timestamp | None:
        """Timestamp of the earliest changed decision over all findings (None when clean)."""
        i = self.first_index
        return None if i is None else self.index[i]

    def summary(self) -> str:
        """A short text: one verdict line, then one line per finding."""
        head = (
            f"{self.strategy} ({self.mode}): {self.runs} runs over {self.bars} bars, "
            f"{len(self.cuts)} cuts"
        )
        if self.clean:
            return f"{head}: clean, no decision changed when later bars were removed or altered"
        first = self.first_bar
        where = f"bar {self.first_index} ({_stamp(first)})" if first is not None else "unknown bar"
        lines = [f"{head}: LOOK-AHEAD, first changed decision at {where}"]
        for f in self.findings[:_SHOWN]:
            cut = "" if f.cut is None else f" after bar {f.cut}"
            at = "" if f.bar is None else f" bar {f.bar} ({_stamp(f.time)})"
            lines.append(f"  {f.kind}{cut}:{at} {f.detail}")
        if len(self.findings) > _SHOWN:
            lines.append(f"  ... and {len(self.findings) - _SHOWN} more runs with changes")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, findings included."""
        first = self.first_bar
        return {
            "strategy": self.strategy,
            "mode": self.mode,
            "clean": self.clean,
            "first_bar": None if first is None else first.isoformat(),
            "first_index": self.first_index,
            "bars": self.bars,
            "cuts": [{"bar": c, "time": self.index[c].isoformat()} for c in self.cuts],
            "runs": self.runs,
            "findings": [f.to_dict() for f in self.findings],
        }

    def __str__(self) -> str:
        return self.summary()


def check_lookahead(
    strategy: type[Strategy],
    data: pd.DataFrame | str,
    *,
    params: dict[str, Any] | None = None,
    cuts: int = 10,
    perturb: bool = True,
    seed: int = 0,
    backtest_options: dict[str, Any] | None = None,
) -> LookaheadReport:
    """Rerun a strategy on truncated and perturbed copies of the data; report changed decisions.

    Parameters
    ----------
    strategy : Strategy subclass
        The strategy class (load a ready one by name with ``strategies.load_strategy``; the
        engine takes classes only).
    data : DataFrame or str
        A price frame or a source for :func:`tradenn.data.load`.
    params : dict, optional
        Parameter overrides, as for ``Backtest.run``.
    cuts : int
        Number of cut points, spread evenly from the first decision (the warm-up's end) to the
        second-to-last bar.
    perturb : bool
        Also run, per cut, on a copy whose bars after the cut have random multiplicative noise
        (a random-walk drift plus per-bar noise on Open, High, Low and Close, consistent OHLC
        relations, noisy volume).
    seed : int
        Seeds the perturbations.
    backtest_options : dict, optional
        Keyword arguments for :class:`~tradenn.backtest.Backtest` (``cash``, ``commission``,
        ``trade_on_close``, ``vectorized`` ...).

    Returns
    -------
    LookaheadReport
        ``clean``, ``first_bar`` (timestamp of the earliest changed decision), the findings.

    Raises
    ------
    BacktestError
        When the check cannot run: a bad argument, or a rerun that fails for a reason other
        than reading the future (a look-ahead a rerun raises, :class:`LookAheadError`, is a
        finding).
    """
    with warnings.catch_warnings():  # truncated copies are short on purpose
        warnings.simplefilter("ignore", TooFewBarsWarning)
        warnings.simplefilter("ignore", ImplausibleResultWarning)  # what this check answers
        if isinstance(strategy, str):
            raise BacktestError(
                "check_lookahead: strategy must be a Strategy class, got the str "
                f"{strategy!r}; load one by name with strategies.load_strategy({strategy!r})"
            )
        checks.positive_int(cuts, "cuts", "check_lookahead", error=BacktestError)
        options = dict(backtest_options or {})
        params = dict(params or {})
        from tradenn.backtest.portfolio import PortfolioBacktest, PortfolioStrategy

        portfolio = isinstance(strategy, type) and issubclass(strategy, PortfolioStrategy)
        engine = (PortfolioBacktest if portfolio else Backtest)(data, strategy, **options)
        frame = engine.data
        n = len(frame)
        if n < 3:
            raise BacktestError(f"check_lookahead: need at least 3 bars, got {n}")
        label = _label(strategy, params)
        rng = np.random.default_rng(seed)
        if portfolio:
            return _check_portfolio(engine, params, label, cuts, perturb, rng)
        if engine.vectorized:
            return _check_positions(engine, params, label, cuts, perturb, rng)
        return _check_events(engine, params, label, cuts, perturb, rng)

    # ------------------------------------------------------------------------ positions()


def _check_positions(engine, params, label, cuts, perturb, rng) -> LookaheadReport:
    frame = engine.data
    n = len(frame)
    name = engine.strategy.__name__
    values = parameter_values(engine.strategy, params)
    caches: dict[str, Any] = {}
    full_instance = _instance(engine, frame, values, caches)
    full = target_array(_call_positions(full_instance, frame), n, name)
    decided = np.flatnonzero(full)
    points = _cut_points(int(decided[0]) if len(decided) else 0, n, cuts)
    report = LookaheadReport(label, "positions", n, points, 1, frame.index)
    for cut in points:
        part = target_array(_call_positions(full_instance, frame.iloc[: cut + 1]), cut + 1, name)
        report.runs += 1
        _comparetarget_array(report, "truncated", cut, full[: cut + 1], part)
        if perturb:
            shaken = _perturbed(frame, cut, rng)
            instance = _instance(engine, shaken, values, caches)
            other = target_array(_call_positions(instance, shaken), n, name)
            report.runs += 1
            _comparetarget_array(report, "perturbed", cut, full[: cut + 1], other[: cut + 1])
    return report


def _instance(engine: Backtest, frame: pd.DataFrame, values: dict, caches: dict) -> Strategy:
    """A strategy instance over ``frame`` as the runner builds one, sharing model caches."""
    instance = Runner(engine.strategy, values, engine.settings, frame).strategy
    for name in _CACHES:
        if isinstance(getattr(instance, name, None), dict):
            setattr(instance, name, caches.setdefault(name, {}))
    return instance


def _call_positions(instance: Strategy, frame: pd.DataFrame) -> Any:
    try:
        return instance.positions(frame.copy())
    except (ValueError, TypeError) as error:
        raise BacktestError(f"{type(instance).__name__}: {error}") from error


def _comparetarget_array(report, kind, cut, expected, got) -> None:
    same = np.isclose(expected, got, rtol=1e-9, atol=1e-12)
    if same.all():
        return
    bar = int(np.flatnonzero(~same)[0])
    detail = (
        f"target {expected[bar]:g} -> {got[bar]:g} when bars after {cut} are "
        f"{'removed' if kind == 'truncated' else 'perturbed'}"
    )
    report.findings.append(Finding(kind, cut, bar, report.index[bar], detail))


# -------------------------------------------------------------------------- portfolios


def _check_portfolio(engine, params, label, cuts, perturb, rng) -> LookaheadReport:
    """Portfolio strategies: the target weights of every asset at each bar <= cut."""
    from tradenn.data.panel import align, panel_assets, panel_frame

    panel = engine.data
    n = len(panel)

    def run(data: pd.DataFrame) -> np.ndarray:
        rerun = copy.copy(engine)  # the same settings over other data
        rerun.data = data
        return rerun.run(**params).target_weights.to_numpy(dtype=np.float64)

    report = LookaheadReport(label, "weights", n, [], 1, panel.index)
    try:
        full = run(panel)
    except LookAheadError as error:
        bar = _bar_in(str(error), n)
        time = None if bar is None else panel.index[bar]
        report.findings.append(Finding("engine", None, bar, time, str(error)))
        return report
    decided = np.flatnonzero(np.abs(full).sum(axis=1))
    report.cuts = _cut_points(int(decided[0]) if len(decided) else 0, n, cuts)
    for cut in report.cuts:
        copies = [("truncated", panel.iloc[: cut + 1])]
        if perturb:
            frames = {}
            for asset in panel_assets(panel):
                own = panel_frame(panel, asset)
                inside = int(own.index.searchsorted(panel.index[cut], side="right")) - 1
                frames[asset] = _perturbed(own, inside, rng) if inside >= 0 else own
            copies.append(("perturbed", align(frames).reindex(panel.index)))
        for kind, data in copies:
            report.runs += 1
            try:
                other = run(data)
            except LookAheadError as error:
                bar = _bar_in(str(error), cut + 1)
                time = None if bar is None else panel.index[bar]
                report.findings.append(Finding(kind, cut, bar, time, str(error)))
                continue
            same = np.isclose(full[: cut + 1], other[: cut + 1], rtol=1e-9, atol=1e-12)
            if not same.all():
                bar = int(np.flatnonzero(~same.all(axis=1))[0])
                detail = f"target weights changed when bars after {cut} were " + (
                    "removed" if kind == "truncated" else "perturbed"
                )
                report.findings.append(Finding(kind, cut, bar, panel.index[bar], detail))
    return report


# ----------------------------------------------------------------------------- next()


def _check_events(engine, params, label, cuts, perturb, rng) -> LookaheadReport:
    frame = engine.data
    n = len(frame)
    report = LookaheadReport(label, "next", n, [], 1, frame.index)
    try:
        full = engine.run(**params)
    except LookAheadError as error:
        bar = _bar_in(str(error), n)
        time = None if bar is None else frame.index[bar]
        report.findings.append(Finding("engine", None, bar, time, str(error)))
        return report
    orders = _order_table(full.orders, frame.index)
    first = int(orders["Bar"].min()) if len(orders) else 0
    report.cuts = _cut_points(first, n, cuts)
    for cut in report.cuts:
        copies = [("truncated", frame.iloc[: cut + 1])]
        if perturb:
            copies.append(("perturbed", _perturbed(frame, cut, rng)))
        for kind, shaken in copies:
            report.runs += 1
            try:
                other = _rerun(engine, shaken).run(**params)
            except LookAheadError as error:
                bar = _bar_in(str(error), cut + 1)
                time = None if bar is None else frame.index[bar]
                report.findings.append(Finding(kind, cut, bar, time, str(error)))
                continue
            except TradennError as error:
                raise BacktestError(
                    f"check_lookahead: the run {kind} after bar {cut} failed: {error}"
                ) from error
            _compare_runs(report, kind, cut, full, orders, other)
    return report


def _rerun(engine: Backtest, frame: pd.DataFrame) -> Backtest:
    """The engine's settings over other data; a liquidation at the cut is not a decision, and
    a short copy must annualize as the full data does."""
    rerun = copy.copy(engine)
    rerun.data = frame
    rerun.finalize_trades = False
    rerun.bars_per_year = engine.bars_per_year or 252.0
    return rerun


def _order_table(orders: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The order log with the position of the bar each order was placed on."""
    table = orders[list(_ORDER_FIELDS)].copy()
    table.insert(0, "Bar", index.get_indexer(orders["PlacedTime"]))
    return table.reset_index(drop=True)


def _compare_runs(report, kind, cut, full, full_orders, other) -> None:
    index = report.index
    mine = full_orders[full_orders["Bar"] <= cut]
    theirs = _order_table(other.orders, other.equity.index)
    theirs = theirs[theirs["Bar"] <= cut]
    bar_orders, detail_orders = _first_order_difference(mine, theirs)
    a = full.position.to_numpy()[: cut + 1]
    b = other.position.to_numpy()[: cut + 1]
    moved = np.flatnonzero(~np.isclose(a, b, rtol=1e-9, atol=1e-12))
    bar_position = int(moved[0]) if len(moved) else None
    if bar_orders is None and bar_position is None:
        return
    if bar_position is not None and (bar_orders is None or bar_position < bar_orders):
        bar = bar_position
        detail = f"position {a[bar]:g} -> {b[bar]:g} units"
    else:
        bar, detail = bar_orders, detail_orders
    verb = "removed" if kind == "truncated" else "perturbed"
    report.findings.append(
        Finding(kind, cut, bar, index[bar], f"{detail} when bars after {cut} are {verb}")
    )


def _first_order_difference(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int | None, str]:
    """The first bar whose orders differ between two order tables, and what differs."""
    rows_a = list(a.itertuples(index=False, name=None))
    rows_b = list(b.itertuples(index=False, name=None))
    for k in range(max(len(rows_a), len(rows_b))):
        ra = rows_a[k] if k < len(rows_a) else None
        rb = rows_b[k] if k < len(rows_b) else None
        if ra is not None and rb is not None and _same_order(ra, rb):
            continue
        bar = min(r[0] for r in (ra, rb) if r is not None)
        return int(bar), f"order {_describe(ra)} -> {_describe(rb)}"
    return None, ""


def _same_order(a: tuple, b: tuple) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            both_nan = math.isnan(x) and math.isnan(y)
            if not (both_nan or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)):
                return False
        elif x != y and not (_missing(x) and _missing(y)):
            return False
    return True


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _describe(row: tuple | None) -> str:
    if row is None:
        return "none"
    bar, side, size, kind, limit, stop, sl, tp, _ = row
    parts = [f"{kind} {side}", "all-in" if _missing(size) else f"size {size:g}"]
    for name, value in (("limit", limit), ("stop", stop), ("sl", sl), ("tp", tp)):
        if not _missing(value):
            parts.append(f"{name} {value:g}")
    return f"[{' '.join(parts)} at bar {bar}]"


# ---------------------------------------------------------------------------- helpers


def _label(strategy: type[Strategy], params: dict) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{strategy.__name__}({shown})"


def _cut_points(first: int, n: int, cuts: int) -> list[int]:
    """``cuts`` bar positions spread evenly over [first, n - 2] (fewer if the span is short)."""
    first = min(max(first, 0), n - 2)
    return sorted({round(x) for x in np.linspace(first, n - 2, cuts)})


def _perturbed(frame: pd.DataFrame, cut: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy whose bars after ``cut`` have multiplicative noise, OHLC relations kept."""
    out = frame.copy()
    m = len(frame) - cut - 1
    if m <= 0:
        return out
    tail = slice(cut + 1, None)
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.02, m)))
    o = frame["Open"].to_numpy(np.float64)[tail] * drift * np.exp(rng.normal(0.0, 0.01, m))
    c = frame["Close"].to_numpy(np.float64)[tail] * drift * np.exp(rng.normal(0.0, 0.01, m))
    h = frame["High"].to_numpy(np.float64)[tail] * drift * np.exp(np.abs(rng.normal(0, 0.005, m)))
    lo = frame["Low"].to_numpy(np.float64)[tail] * drift * np.exp(-np.abs(rng.normal(0, 0.005, m)))
    h = np.maximum.reduce([h, o, c])
    lo = np.minimum.reduce([lo, o, c])
    columns = {"Open": o, "High": h, "Low": lo, "Close": c}
    if "Adj Close" in frame.columns:
        ratio = frame["Adj Close"].to_numpy(np.float64)[tail] / frame["Close"].to_numpy()[tail]
        columns["Adj Close"] = c * ratio
    volume = frame["Volume"].to_numpy(np.float64)[tail] * rng.uniform(0.5, 1.5, m)
    columns["Volume"] = np.round(volume) if frame["Volume"].dtype.kind in "iu" else volume
    for name, values in columns.items():
        column = out.columns.get_loc(name)
        out.iloc[cut + 1 :, column] = values.astype(frame[name].dtype)
    return out


def _bar_in(message: str, limit: int) -> int | None:
    """The bar named in a LookAheadError's message ("... at bar 123 ..."), if any."""
    found = _BAR_IN_MESSAGE.search(message)
    if found is None:
        return None
    bar = int(found.group(1))
    return bar if 0 <= bar < limit else None


def _stamp(time: pd.Timestamp | None) -> str:
    if time is None:
        return "?"
    return str(time.date()) if time == time.normalize() else str(time)
