"""Performance statistics of a backtest: one :class:`pandas.Series`, read top to bottom.

:func:`compute_stats` turns the per-bar equity, the closed trades, the instrument's close and the
per-bar position into the numbers below. Every one is defined here exactly; nothing is smoothed,
resampled or estimated.

Notation
--------
``E_0 .. E_{n-1}``
    account equity at the close of each of the ``n`` bars.
``r_t = E_t / E_{t-1} - 1``
    per-bar simple returns of the equity, ``t = 1 .. n-1`` (``n - 1`` of them). A bar that
    follows a non-positive equity (a blown account) has no defined return and is left out of every
    return-based statistic.
``bpy``
    bars per year: the ``bars_per_year`` argument or, when it is ``None``, inferred from the index
    by :func:`tradenn.data.calendar.bars_per_year` (252 for daily equities, about 6,200 for hourly
    24x5 FX, 8,760 for hourly 24/7 crypto, 52 weekly, 12 monthly).
``rf``
    the annual risk-free rate; its per-bar value is ``rf / bpy``.
``dd_t = 1 - E_t / max(E_0 .. E_t)``
    drawdown, a fraction in ``[0, 1]`` (more if equity goes negative); see :func:`drawdown`.
``C_0 .. C_{n-1}``
    the benchmark's close: the instrument's (a portfolio passes its equal-weight buy and hold).

The statistics
--------------
Start, End, Duration
    first and last timestamp of the index (in its zone, if it has one), and ``End - Start`` in
    wall-clock time. Every duration here is measured in the index's wall-clock time
    (:func:`tradenn.data.timezones.wall_clock`), so a tz-aware index gives the same statistics as
    the same index without its zone: a daylight-saving change does not add or remove an hour.
Exposure Time [%]
    ``100 * (bars with a nonzero position) / n``.
Equity Final [$], Equity Peak [$]
    ``E_{n-1}`` and ``max E_t``.
Return [%]
    ``100 * (E_{n-1} / E_0 - 1)``.
Buy & Hold Return [%]
    ``100 * (Close_{n-1} / Close_0 - 1)``: holding one unit from the first close to the last, with
    no costs.
Return (Ann.) [%]
    geometric: ``100 * ((E_{n-1} / E_0) ** (1 / years) - 1)`` with ``years = (n - 1) / bpy``.
    A non-positive final equity gives -100.
Volatility (Ann.) [%]
    ``100 * std(r, ddof=1) * sqrt(bpy)``.
CAGR [%]
    compound annual growth rate over calendar time, as ``backtesting.py`` defines it:
    ``100 * ((E_{n-1} / E_0) ** (1 / Y) - 1)`` with ``Y = Duration / 365.25 days`` (wall-clock).
    Return (Ann.) counts years in bars (``(n - 1) / bpy``), CAGR in calendar days: they are
    close when ``bpy`` matches the calendar (252 daily bars of equities span about 365.25
    days) and apart when it does not (a ``bars_per_year`` that is not the data's, long gaps
    between bars). A non-positive final equity gives -100; a zero Duration NaN.
Sharpe Ratio
    ``mean(r - rf/bpy) / std(r, ddof=1) * sqrt(bpy)``.
Sortino Ratio
    ``mean(r - rf/bpy) / DD * sqrt(bpy)`` with the downside deviation
    ``DD = sqrt(mean(min(r - rf/bpy, 0) ** 2))``, the mean taken over all ``n - 1`` returns (the
    bars above the target count as zeros).
Calmar Ratio
    ``Return (Ann.) / |Max. Drawdown|``, both as fractions.
Alpha [%], Beta
    against the benchmark's buy and hold, as ``backtesting.py`` defines them. ``Beta`` is the
    slope of the equity's per-bar log returns ``x_t = ln(E_t / E_{t-1})`` on the benchmark's
    ``y_t = ln(C_t / C_{t-1})``: ``cov(x, y) / var(y)``, over the bars where both are defined
    (equity positive at both ends of the bar). ``Alpha`` is Jensen's alpha over the whole
    period, in total returns: ``Return [%] - R_f - Beta * (Buy & Hold Return [%] - R_f)``
    with ``R_f = 100 * ((1 + rf) ** years - 1)``, the risk-free return over the same
    ``years = (n - 1) / bpy``. With ``rf = 0`` (the default) this is ``backtesting.py``'s
    value; with a rate, ``backtesting.py`` subtracts the annual rate itself (``100 * rf``)
    from multi-year returns, which compares a year's interest with the whole period's return,
    so here it is compounded over the period instead.
Max. Drawdown [%]
    ``-100 * max dd_t``. Drawdowns are reported as negative percentages (a 20% fall from the
    peak reads -20).
Avg. Drawdown [%]
    ``-100 * mean`` over drawdown episodes of the deepest ``dd_t`` of each episode. An episode is a
    maximal run of bars with ``dd_t > 0``: it starts when equity leaves a peak and ends when it
    gets back to it (``E_t >=`` the peak) or at the last bar.
Max. Drawdown Duration, Avg. Drawdown Duration
    the longest and the mean episode length in wall-clock time, from the bar of the peak that was
    left to the bar that recovers it; an unrecovered episode runs to the last bar.

    Equity that never falls has no episodes: its drawdown depths are 0 and its durations
    ``Timedelta(0)`` (not NaN: the equity simply never fell).
# Trades
    number of closed trades. The trade statistics below use closed trades only; a position still
    open at the end counts in the equity (and so in every statistic above) but not here.
Win Rate [%]
    ``100 * (trades with PnL > 0) / # Trades``.
Best Trade [%], Worst Trade [%]
    ``100 * max ReturnPct`` and ``100 * min ReturnPct``.
Avg. Trade [%]
    geometric mean of the trade returns: ``100 * (prod(1 + ReturnPct) ** (1 / N) - 1)``. A trade
    that loses exactly everything makes it -100; one that loses more than everything (a short, or
    leverage) makes it undefined (NaN).
Max. Trade Duration, Avg. Trade Duration
    ``max`` and ``mean`` of the trades' ``Duration`` (exit time minus entry time, wall-clock).
Profit Factor
    gross profit / gross loss: ``sum(PnL where PnL > 0) / |sum(PnL where PnL < 0)|``.
Expectancy [%]
    arithmetic mean trade return, ``100 * mean(ReturnPct)``.
SQN
    System Quality Number, ``sqrt(N) * mean(PnL) / std(PnL, ddof=1)``.
Kelly Criterion
    ``W - (1 - W) / (avg win / avg loss)`` with ``W`` the win rate as a fraction, ``avg win`` the
    mean PnL of the winning trades and ``avg loss`` the mean ``|PnL|`` of the losing ones (in
    dollars, as in ``backtesting.py``).
Commissions [$]
    total commissions paid, as passed in.

Undefined values
----------------
A statistic that does not exist for the inputs is NaN (``NaT`` for a duration), never an exception
or a numpy warning: trade statistics without trades; Sharpe, Sortino and Volatility with fewer
than two returns; Sharpe with zero volatility; Sortino with no downside; Calmar with no drawdown;
Profit Factor and Kelly without both a winning and a losing trade; SQN with fewer than two trades
or identical PnLs; Beta and Alpha with fewer than two returns or a constant benchmark. Everything
is vectorized: a million bars take well under a second.

Implausible results
-------------------
:func:`implausible` names statistics no honest backtest reaches (a total return over
:data:`IMPLAUSIBLE_RETURN` percent, or over at least a quarter of a year and
:data:`MIN_RETURNS` returns a Sharpe ratio over :data:`IMPLAUSIBLE_SHARPE` or a Sortino ratio
over :data:`IMPLAUSIBLE_SORTINO`): the usual cause is a strategy that reads the future. The
engines warn with it once per run (:func:`warn_if_implausible`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tradenn.data.calendar import bars_per_year as _infer_bars_per_year
from tradenn.data.timezones import wall_clock

__all__ = [
    "IMPLAUSIBLE_RETURN",
    "IMPLAUSIBLE_SHARPE",
    "IMPLAUSIBLE_SORTINO",
    "MIN_RETURNS",
    "STAT_KEYS",
    "ImplausibleResultWarning",
    "compute_stats",
    "drawdown",
    "format_duration",
    "implausible",
    "is_count",
    "log_returns",
    "warn_if_implausible",
]

STAT_KEYS: tuple[str, ...] = (
    "Start",
    "End",
    "Duration",
    "Exposure Time [%]",
    "Equity Final [$]",
    "Equity Peak [$]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "Return (Ann.) [%]",
    "Volatility (Ann.) [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Alpha [%]",
    "Beta",
    "Max. Drawdown [%]",
    "Avg. Drawdown [%]",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Best Trade [%]",
    "Worst Trade [%]",
    "Avg. Trade [%]",
    "Max. Trade Duration",
    "Avg. Trade Duration",
    "Profit Factor",
    "Expectancy [%]",
    "SQN",
    "Kelly Criterion",
    "Commissions [$]",
)
"""The keys of :func:`compute_stats`, in order."""

_NAN = float("nan")
_JULIAN_YEAR = pd.Timedelta(days=365.25)

IMPLAUSIBLE_RETURN = 1e6
"""A total return above this many percent (a 10,000-fold gain) is implausible."""
IMPLAUSIBLE_SHARPE = 10.0
"""An annualized Sharpe ratio above this is implausible (the best funds report 2 to 3)."""
IMPLAUSIBLE_SORTINO = 20.0
"""An annualized Sortino ratio above this is implausible: avoiding nearly every losing bar,
which is what reading tomorrow's price does, lifts Sortino far more than Sharpe."""
MIN_RETURNS = 30
"""Fewest returns (and at least a quarter of a year) for the Sharpe and Sortino tests: on
shorter runs a ratio annualized from a few bars can exceed any threshold by luck."""


class ImplausibleResultWarning(UserWarning):
    """A backtest's statistics are too good to be true (see :func:`implausible`)."""


def _div(a: float, b: float) -> float:
    """``a / b`` as a float, NaN when it is undefined (b zero or either side NaN)."""
    if b == 0 or not (math.isfinite(a) and math.isfinite(b)):
        return _NAN
    return float(a / b)


def _annualized(growth: float, years: float) -> float:
    """``growth ** (1 / years) - 1``: -1 when ``growth <= 0``, inf when it overflows, NaN when
    undefined (no time, or no growth)."""
    if not (years > 0 and math.isfinite(growth)):
        return _NAN
    if growth <= 0:
        return -1.0
    log_annual = math.log(growth) / years  # overflows to inf, never raises
    return math.expm1(log_annual) if log_annual < 700 else math.inf


def log_returns(prices: np.ndarray) -> np.ndarray:
    """Per-bar log returns ``ln(p_t / p_{t-1})`` of positive prices, ``n - 1`` of them; NaN
    (or inf) where a price is not positive or missing. What Beta regresses on."""
    prices = np.asarray(prices, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = prices[1:] / prices[:-1]
        return np.log(ratio, out=ratio)


def _beta(own: np.ndarray, market: np.ndarray) -> float:
    """``cov(own, market) / var(market)`` over the bars where both log returns are finite
    (``own`` is overwritten)."""
    if len(own) != len(market):
        return _NAN
    if len(own) < 2:
        return _NAN
    own_mean, market_mean = own.mean(), market.mean()
    if not (math.isfinite(own_mean) and math.isfinite(market_mean)):  # some are not finite
        both = np.isfinite(own) & np.isfinite(market)
        own, market = own[both], market[both]
        if len(own) < 2:
            return _NAN
        own_mean, market_mean = own.mean(), market.mean()
    own -= own_mean
    market = market - market_mean
    # Sums of products by einsum: no temporary array (a fresh one per sum cost a millisecond
    # on 200,000 bars) and no BLAS threads (``@`` took 25 times as long on a busy machine).
    return _div(float(np.einsum("i,i->", own, market)), float(np.einsum("i,i->", market, market)))


def _drawdown_array(values: np.ndarray) -> np.ndarray:
    peak = np.fmax.accumulate(values) if len(values) else values  # fmax: NaN bars do not reset it
    with np.errstate(divide="ignore", invalid="ignore"):
        out = values / peak
    np.subtract(1.0, out, out=out)
    if not (len(values) and values[0] > 0):  # else the running peak is positive throughout
        out[~(peak > 0)] = np.nan
    return out


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown per bar as a fraction: ``1 - equity / running peak`` (0 at a new high).

    NaN where the running peak is not positive (no meaningful fall from it).
    """
    values = np.asarray(equity, dtype=np.float64)
    return pd.Series(_drawdown_array(values), index=equity.index, name="Drawdown")


def _episodes(dd: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and duration of each drawdown episode (maximal runs of ``dd > 0``)."""
    under = dd > 0  # NaN compares False
    if not under.any():
        return np.empty(0), np.empty(0, dtype="m8[ns]")
    edges = np.diff(under.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)  # first bar below the peak
    stops = np.flatnonzero(edges == -1)  # first bar back at the peak (n if never)
    depths = np.fmax.reduceat(np.where(under, dd, 0.0), starts)
    peak_bar = np.maximum(starts - 1, 0)
    end_bar = np.minimum(stops, len(dd) - 1)
    return depths, times[end_bar] - times[peak_bar]


def _mean_duration(durations: np.ndarray) -> pd.Timedelta:
    """The mean of timedeltas as pandas computes it (a float64 sum of the integer ticks,
    divided, truncated to a tick of the same unit), without building an index."""
    mean = durations.view("i8").sum(dtype=np.float64) / len(durations)
    return pd.Timedelta(np.int64(mean).astype(durations.dtype))


def _as_durations(values) -> np.ndarray:
    """Timedeltas (a numpy array, TimedeltaIndex or Series) as a numpy ``timedelta64`` array."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "m":
        return values
    return np.asarray(pd.to_timedelta(values))


def _trade_stats(trades: pd.DataFrame | dict) -> dict[str, object]:
    n = len(trades["PnL"]) if "PnL" in trades else 0
    out: dict[str, object] = {"# Trades": n}
    if n == 0:
        for key in STAT_KEYS[STAT_KEYS.index("Win Rate [%]") : STAT_KEYS.index("Commissions [$]")]:
            out[key] = pd.NaT if "Duration" in key else _NAN
        return out

    pnl = np.asarray(trades["PnL"], dtype=np.float64)
    ret = np.asarray(trades["ReturnPct"], dtype=np.float64)
    if "Duration" in trades:
        durations = _as_durations(trades["Duration"])
    else:
        durations = _as_durations(
            pd.to_datetime(trades["ExitTime"]) - pd.to_datetime(trades["EntryTime"])
        )
    ticks = durations.view("i8")
    known = ticks != np.iinfo(np.int64).min  # NaT
    durations = durations[known]

    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    win_rate = len(wins) / n
    growth = 1.0 + ret
    if (growth < 0).any() or np.isnan(growth).any():
        geometric = _NAN
    elif (growth == 0).any():
        geometric = -1.0
    else:
        geometric = math.expm1(float(np.mean(np.log(growth))))
    gross_loss = -float(losses.sum())
    pnl_std = float(np.std(pnl, ddof=1)) if n > 1 else _NAN
    if len(wins) and len(losses):
        kelly = win_rate - (1 - win_rate) / (float(wins.mean()) / -float(losses.mean()))
        profit_factor = _div(float(wins.sum()), gross_loss)
    else:
        kelly = profit_factor = _NAN

    out.update(
        {
            "Win Rate [%]": 100.0 * win_rate,
            "Best Trade [%]": 100.0 * float(np.max(ret)),
            "Worst Trade [%]": 100.0 * float(np.min(ret)),
            "Avg. Trade [%]": 100.0 * geometric,
            "Max. Trade Duration": pd.Timedelta(durations.max()) if len(durations) else pd.NaT,
            "Avg. Trade Duration": _mean_duration(durations) if len(durations) else pd.NaT,
            "Profit Factor": profit_factor,
            "Expectancy [%]": 100.0 * float(np.mean(ret)),
            "SQN": math.sqrt(n) * _div(float(np.mean(pnl)), pnl_std),
            "Kelly Criterion": float(kelly),
        }
    )
    return out


@functools.lru_cache(maxsize=64)
def _stats_index(keys: tuple[str, ...]) -> pd.Index:
    """One Index per set of statistic names: a sweep builds thousands of stats Series."""
    return pd.Index(keys, dtype=object)


def compute_stats(
    equity: pd.Series | np.ndarray,
    trades: pd.DataFrame | dict,
    close: pd.Series | np.ndarray,
    exposure: np.ndarray | pd.Series,
    *,
    index: pd.DatetimeIndex | None = None,
    commissions: float = 0.0,
    bars_per_year: float | None = None,
    risk_free_rate: float = 0.0,
    extra: dict[str, object] | None = None,
    clock: np.ndarray | None = None,
    market_returns: np.ndarray | None = None,
) -> pd.Series:
    """The performance statistics of a backtest, as defined in this module's docstring.

    Parameters
    ----------
    equity
        account equity per bar: a Series on the data's DatetimeIndex, or an array with
        ``index`` given.
    trades
        closed trades with columns ``Size, EntryBar, ExitBar, EntryPrice, ExitPrice, EntryTime,
        ExitTime, PnL, ReturnPct, Commission, Duration`` (may be empty): a DataFrame, or the
        same columns as a dict (:func:`~tradenn.backtest.result.trade_columns`).
    close
        the instrument's close per bar, for Buy & Hold.
    exposure
        position in units per bar (0 = flat), for Exposure Time.
    index
        the bars' times, when ``equity`` is an array.
    commissions
        total commissions paid, in dollars.
    bars_per_year
        for annualizing; ``None`` infers it from the index.
    risk_free_rate
        annual risk-free rate, for the Sharpe and Sortino ratios.
    extra
        further statistics appended after :data:`STAT_KEYS` (a backtest's ``# Orders
        Rejected``): one Series is built, not grown (growing a Series costs a millisecond).
    clock
        the index's wall-clock times (:func:`~tradenn.data.timezones.wall_clock`) as a numpy
        ``datetime64`` array, when the caller has them (a sweep computes them once).
    market_returns
        :func:`log_returns` of ``close``, when the caller has them (likewise).

    Returns
    -------
    pandas.Series
        indexed by :data:`STAT_KEYS`, in that order, then ``extra``.
    """
    index = equity.index if index is None else index
    index = index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)
    values = np.asarray(equity, dtype=np.float64)
    n = len(values)
    stats: dict[str, object] = dict.fromkeys(STAT_KEYS, _NAN)
    stats["Commissions [$]"] = float(commissions)
    stats.update(_trade_stats(trades))
    if n == 0:
        for key in ("Start", "End", "Duration", "Max. Drawdown Duration", "Avg. Drawdown Duration"):
            stats[key] = pd.NaT
        return _series({**stats, **(extra or {})})

    bpy = float(bars_per_year) if bars_per_year is not None else _infer_bars_per_year(index)
    first, last = float(values[0]), float(values[-1])
    position = np.asarray(exposure, dtype=np.float64)
    prices = np.asarray(close, dtype=np.float64)

    # Per-bar returns; a bar after non-positive equity has none.
    previous = values[:-1]
    every_bar = n > 1 and values.min() > 0  # the usual case: every bar has a return
    if every_bar:
        returns = values[1:] / previous
        returns -= 1.0
    else:
        returns = np.full(n - 1, np.nan)
        np.divide(values[1:], previous, out=returns, where=previous > 0)
        returns = returns[~np.isnan(returns)] - 1.0
    excess = returns - risk_free_rate / bpy if risk_free_rate else returns
    m = len(returns)
    std = float(np.std(returns, ddof=1)) if m > 1 else _NAN
    mean_excess = float(np.mean(excess)) if m > 1 else _NAN
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2))) if m > 1 else _NAN

    growth = _div(last, first) if first > 0 else _NAN
    years = (n - 1) / bpy
    annual = _annualized(growth, years)
    if clock is None:  # durations in wall-clock time: no DST jumps
        clock = wall_clock(index).to_numpy()
    duration = pd.Timedelta(clock[-1] - clock[0])
    cagr = _annualized(growth, duration / _JULIAN_YEAR)

    dd = _drawdown_array(values)
    depths, durations = _episodes(dd, clock)
    max_dd = float(np.fmax.reduce(dd))  # NaN bars ignored; NaN only if every bar is
    if len(depths):
        avg_dd = float(depths.mean())
        max_dd_duration = pd.Timedelta(durations.max())
        avg_dd_duration = _mean_duration(durations)
    else:
        avg_dd = 0.0 if max_dd == 0 else _NAN
        max_dd_duration = avg_dd_duration = pd.Timedelta(0) if max_dd == 0 else pd.NaT

    buy_hold = _NAN
    if len(prices) and prices[0] > 0:
        buy_hold = 100.0 * (float(prices[-1]) / float(prices[0]) - 1.0)
    if every_bar:
        own = np.log1p(returns, out=returns)  # the simple returns are not needed any more
    else:  # a blown account: only bars with positive equity at both ends have a log return
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.log(values[1:] / previous)
        own[~((previous > 0) & (values[1:] > 0))] = np.nan
    if market_returns is None:
        market_returns = log_returns(prices) if len(prices) == n else np.empty(0)
    beta = _beta(own, market_returns) if n > 2 else _NAN
    risk_free = 100.0 * math.expm1(years * math.log1p(risk_free_rate)) if risk_free_rate else 0.0
    alpha = 100.0 * (growth - 1.0) - risk_free - beta * (buy_hold - risk_free)

    stats.update(
        {
            "Start": index[0],
            "End": index[-1],
            "Duration": duration,
            "Exposure Time [%]": (
                100.0 * float(np.mean(np.abs(position) > 0)) if len(position) else _NAN
            ),
            "Equity Final [$]": last,
            "Equity Peak [$]": float(np.fmax.reduce(values)),
            "Return [%]": 100.0 * (growth - 1.0),
            "Buy & Hold Return [%]": buy_hold,
            "Return (Ann.) [%]": 100.0 * annual,
            "Volatility (Ann.) [%]": 100.0 * std * math.sqrt(bpy),
            "CAGR [%]": 100.0 * cagr,
            "Sharpe Ratio": _div(mean_excess, std) * math.sqrt(bpy),
            "Sortino Ratio": _div(mean_excess, downside) * math.sqrt(bpy),
            "Calmar Ratio": _div(annual, abs(max_dd)),
            "Alpha [%]": alpha,
            "Beta": beta,
            "Max. Drawdown [%]": -100.0 * max_dd + 0.0,  # + 0.0: no "-0.0" when flat
            "Avg. Drawdown [%]": -100.0 * avg_dd + 0.0,
            "Max. Drawdown Duration": max_dd_duration,
            "Avg. Drawdown Duration": avg_dd_duration,
            **(extra or {}),
        }
    )
    return _series(stats)


def implausible(stats: pd.Series | Mapping[str, object], bars: int) -> str | None:
    """What makes ``stats`` (of a run over ``bars`` bars) implausible, e.g. ``"a return of
    +1.0e+16 % (Sharpe 37.2)"``, or None when nothing does.

    Implausible: ``Return [%]`` above :data:`IMPLAUSIBLE_RETURN`; or, on a run of at least
    :data:`MIN_RETURNS` returns spanning at least a quarter of a year (``Duration``), a
    ``Sharpe Ratio`` above :data:`IMPLAUSIBLE_SHARPE` or a ``Sortino Ratio`` above
    :data:`IMPLAUSIBLE_SORTINO`. A quarter of a year keeps the standard error of an annualized
    Sharpe ratio (about ``1 / sqrt(years)``) at 2 or less, so 10 is five of them away from 0.
    The Calmar ratio is not tested: on a short run with a shallow drawdown it is large for
    honest strategies too.
    """

    def number(key: str) -> float:
        value = stats.get(key, _NAN)
        return float(value) if isinstance(value, int | float | np.number) else _NAN

    total, sharpe, sortino = (number(k) for k in ("Return [%]", "Sharpe Ratio", "Sortino Ratio"))
    duration = stats.get("Duration", pd.NaT)
    long_enough = (
        bars - 1 >= MIN_RETURNS
        and isinstance(duration, pd.Timedelta)
        and duration >= _JULIAN_YEAR / 4
    )
    too_sharp = long_enough and sharpe > IMPLAUSIBLE_SHARPE
    too_smooth = long_enough and sortino > IMPLAUSIBLE_SORTINO
    if not (total > IMPLAUSIBLE_RETURN or too_sharp or too_smooth):
        return None
    shown = f"{total:+.1e}" if abs(total) >= IMPLAUSIBLE_RETURN else f"{total:+,.1f}"
    ratios = [f"Sharpe {sharpe:.1f}"] if math.isfinite(sharpe) else []
    if too_smooth:
        ratios.append(f"Sortino {sortino:.1f}")
    return f"a return of {shown} %" + (f" ({', '.join(ratios)})" if ratios else "")


def warn_if_implausible(
    label: str, stats: pd.Series | Mapping[str, object], bars: int, *, stacklevel: int = 2
) -> None:
    """One :class:`ImplausibleResultWarning` when :func:`implausible` finds something, e.g.
    ``SmaCross(fast=10, slow=20): a return of +1.0e+16 % (Sharpe 37.2) is implausible; check
    for look-ahead: tradenn check-lookahead STRATEGY --data SOURCE``. ``stacklevel`` as for
    :func:`warnings.warn`, counted from the caller (2: the line that called the caller)."""
    found = implausible(stats, bars)
    if found is not None:
        warnings.warn(
            f"{label}: {found} is implausible; check for look-ahead: "
            "tradenn check-lookahead STRATEGY --data SOURCE",
            ImplausibleResultWarning,
            stacklevel=stacklevel + 1,
        )


def is_count(key: str) -> bool:
    """True for a statistic that counts things (``# Trades``, ``# Orders Rejected``,
    ``# Assets``: its name starts with ``#``), shown as an integer."""
    return str(key).startswith("#")


_DAY = pd.Timedelta(days=1)


def format_duration(value: pd.Timedelta) -> str:
    """A duration as the command line and the HTML report print it: ``7,301 days`` when it is
    whole days, else days and the time of day to the second, ``27 days 21:36:00``
    (``0 days 04:00:00`` below a day); below a second, or negative, pandas' own form."""
    value = pd.Timedelta(value)
    if value < pd.Timedelta(0) or pd.Timedelta(0) < value < pd.Timedelta(seconds=1):
        return str(value)
    days, rest = divmod(value.round("s"), _DAY)
    text = f"{days:,} day{'' if days == 1 else 's'}"
    if rest:
        hours, seconds = divmod(int(rest.total_seconds()), 3600)
        text += f" {hours:02d}:{seconds // 60:02d}:{seconds % 60:02d}"
    return text


def _series(stats: dict[str, object]) -> pd.Series:
    values = np.empty(len(stats), dtype=object)
    for i, value in enumerate(stats.values()):
        values[i] = value
    return pd.Series(values, index=_stats_index(tuple(stats)), copy=False)
