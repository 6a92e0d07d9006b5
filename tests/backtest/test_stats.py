"""compute_stats: every formula against values worked out by hand on tiny series, and the edges."""

from __future__ import annotations

import itertools
import math
import statistics
import time

import numpy as np
import pandas as pd
import pytest

from tradenn.backtest.stats import STAT_KEYS, compute_stats, drawdown, format_duration
from tradenn.data.calendar import bars_per_year

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarning from numpy, ever

DAY = pd.Timedelta(days=1)
TRADE_COLUMNS = [
    "Size",
    "EntryBar",
    "ExitBar",
    "EntryPrice",
    "ExitPrice",
    "EntryTime",
    "ExitTime",
    "PnL",
    "ReturnPct",
    "Commission",
    "Duration",
]


def daily(values, start="2024-01-01") -> pd.Series:
    """Equity on consecutive calendar days (so index durations are whole days)."""
    index = pd.date_range(start, periods=len(values), freq="D", name="Date")
    return pd.Series(np.asarray(values, dtype=float), index=index)


def no_trades() -> pd.DataFrame:
    return pd.DataFrame(columns=TRADE_COLUMNS)


def make_trades(pnl, returns, durations_days, start="2024-01-01") -> pd.DataFrame:
    k = len(pnl)
    entry = pd.date_range(start, periods=k, freq="10D")
    duration = pd.to_timedelta(durations_days, unit="D")
    return pd.DataFrame(
        {
            "Size": np.ones(k),
            "EntryBar": np.arange(k) * 10,
            "ExitBar": np.arange(k) * 10 + np.asarray(durations_days),
            "EntryPrice": np.full(k, 100.0),
            "ExitPrice": 100.0 * (1 + np.asarray(returns)),
            "EntryTime": entry,
            "ExitTime": entry + duration,
            "PnL": np.asarray(pnl, dtype=float),
            "ReturnPct": np.asarray(returns, dtype=float),
            "Commission": np.zeros(k),
            "Duration": duration,
        }
    )


def stats_of(equity, trades=None, close=None, exposure=None, **kwargs) -> pd.Series:
    trades = no_trades() if trades is None else trades
    close = equity if close is None else close
    exposure = np.zeros(len(equity)) if exposure is None else exposure
    return compute_stats(equity, trades, close, exposure, **kwargs)


# E = 100, 110, 99, 121 with bars_per_year = 3, so (n - 1) / bpy = 1 year exactly.
# r = 110/100 - 1 = 0.1, 99/110 - 1 = -0.1, 121/99 - 1 = 22/99 = 2/9
# mean(r) = (0.1 - 0.1 + 2/9) / 3 = 2/27
# deviations from the mean: 0.7/27, -4.7/27, 4/27 -> squares (0.49 + 22.09 + 16) / 27^2
# std(r, ddof=1) = sqrt(38.58 / 2) / 27 = sqrt(19.29) / 27
EQUITY = [100.0, 110.0, 99.0, 121.0]
STD = math.sqrt(19.29) / 27


def test_keys_are_exactly_the_documented_ones_in_order():
    stats = stats_of(daily(EQUITY), bars_per_year=3)
    assert list(stats.index) == list(STAT_KEYS)
    assert len(STAT_KEYS) == 32  # 29 before CAGR [%], Alpha [%] and Beta
    assert STAT_KEYS[0] == "Start" and STAT_KEYS[-1] == "Commissions [$]"


def test_returns_volatility_sharpe_sortino_calmar_by_hand():
    s = stats_of(daily(EQUITY), bars_per_year=3)
    assert s["Start"] == pd.Timestamp("2024-01-01")
    assert s["End"] == pd.Timestamp("2024-01-04")
    assert s["Duration"] == 3 * DAY
    assert s["Equity Final [$]"] == 121.0
    assert s["Equity Peak [$]"] == 121.0
    assert s["Return [%]"] == pytest.approx(21.0)  # 121 / 100 - 1
    assert s["Return (Ann.) [%]"] == pytest.approx(21.0)  # exactly one year: 1.21 ** 1 - 1
    # Volatility = std * sqrt(3) = sqrt(19.29) / 27 * sqrt(3) = 0.281749
    assert s["Volatility (Ann.) [%]"] == pytest.approx(100 * STD * math.sqrt(3))
    assert s["Volatility (Ann.) [%]"] == pytest.approx(28.1749, abs=1e-4)
    # Sharpe = (2/27) / (sqrt(19.29)/27) * sqrt(3) = 2 sqrt(3) / sqrt(19.29) = 0.788723
    assert s["Sharpe Ratio"] == pytest.approx(2 * math.sqrt(3) / math.sqrt(19.29))
    assert s["Sharpe Ratio"] == pytest.approx(0.788723, abs=1e-6)
    # downside: min(r, 0) = 0, -0.1, 0 -> DD = sqrt(0.01 / 3) = 0.1 / sqrt(3)
    # Sortino = (2/27) / (0.1/sqrt(3)) * sqrt(3) = (2/27) * 3 / 0.1 = 60/27
    assert s["Sortino Ratio"] == pytest.approx(60 / 27)
    # drawdown: peaks 100, 110, 110, 121 -> dd = 0, 0, 1 - 99/110 = 0.1, 0
    assert s["Max. Drawdown [%]"] == pytest.approx(-10.0)
    assert s["Calmar Ratio"] == pytest.approx(0.21 / 0.10)  # 2.1


def test_annualized_return_is_geometric_over_n_minus_one_bars():
    # 4 bars = 3 returns; with 252 bars a year that is 3/252 years: 1.21 ** 84 - 1
    s = stats_of(daily(EQUITY), bars_per_year=252)
    assert s["Return (Ann.) [%]"] == pytest.approx(100 * (1.21**84 - 1))
    # 6 bars = 5 returns over bpy = 10 -> half a year; 1.21 -> 1.21 ** 2 - 1 = 46.41%
    s = stats_of(daily([100, 105, 103, 110, 115, 121]), bars_per_year=10)
    assert s["Return (Ann.) [%]"] == pytest.approx(46.41)


def test_risk_free_rate_lowers_sharpe_by_rf_over_annual_volatility():
    base = stats_of(daily(EQUITY), bars_per_year=3)
    rf = stats_of(daily(EQUITY), bars_per_year=3, risk_free_rate=0.03)
    # mean(r - rf/bpy) = mean(r) - 0.01 -> Sharpe falls by 0.01 / std * sqrt(3) = 0.03 / vol_ann
    vol = STD * math.sqrt(3)
    assert rf["Sharpe Ratio"] == pytest.approx(base["Sharpe Ratio"] - 0.03 / vol)
    assert rf["Sharpe Ratio"] == pytest.approx(0.788723 - 0.106478, abs=1e-6)
    # Sortino with rf: excess = 0.09, -0.11, 2/9 - 0.01; mean = 2/27 - 0.01
    # DD = sqrt(0.11^2 / 3) -> Sortino = (2/27 - 0.01) / (0.11 / sqrt 3) * sqrt 3
    assert rf["Sortino Ratio"] == pytest.approx((2 / 27 - 0.01) * 3 / 0.11)
    assert rf["Volatility (Ann.) [%]"] == pytest.approx(base["Volatility (Ann.) [%]"])


def test_cagr_compounds_over_calendar_years_of_365_25_days():
    # Two bars 730.5 days apart (two Julian years): 100 -> 121 is 10% a year.
    start = pd.Timestamp("2020-01-01")
    index = pd.DatetimeIndex([start, start + pd.Timedelta(days=730.5)])
    s = stats_of(pd.Series([100.0, 121.0], index=index), bars_per_year=252)
    assert s["CAGR [%]"] == pytest.approx(10.0)
    # Return (Ann.) counts the same growth over bars: one return of 252 a year -> 1.21 ** 252.
    assert s["Return (Ann.) [%]"] == pytest.approx(100 * (1.21**252 - 1))
    # Three calendar days: 1.21 ** (365.25 / 3) - 1, whatever bars_per_year says.
    s = stats_of(daily(EQUITY), bars_per_year=3)
    assert s["CAGR [%]"] == pytest.approx(100 * (1.21 ** (365.25 / 3) - 1))


def test_cagr_of_a_lost_account_and_of_no_time():
    assert stats_of(daily([100, 50, -10]))["CAGR [%]"] == -100.0
    assert np.isnan(stats_of(daily([100.0]))["CAGR [%]"])  # Duration 0


def test_beta_is_the_slope_of_log_returns_and_alpha_jensens_over_the_period():
    # Equity = close ** 2 / 100: every log return of the equity is twice the close's.
    close = daily([100.0, 110.0, 99.0, 121.0])
    equity = close**2 / 100  # 100, 121, 98.01, 146.41
    s = stats_of(equity, close=close, bars_per_year=3)
    assert s["Beta"] == pytest.approx(2.0, rel=1e-12)
    # Alpha = Return - Beta x Buy & Hold = 46.41 - 2 x 21 = 4.41
    assert s["Return [%]"] == pytest.approx(46.41)
    assert s["Buy & Hold Return [%]"] == pytest.approx(21.0)
    assert s["Alpha [%]"] == pytest.approx(4.41)


def test_beta_against_an_independent_covariance():
    equity = [100.0, 103.0, 101.0, 106.0, 104.0, 108.0]
    close = [50.0, 51.0, 50.5, 52.0, 53.0, 52.5]
    x = [math.log(b / a) for a, b in itertools.pairwise(equity)]
    y = [math.log(b / a) for a, b in itertools.pairwise(close)]
    beta = statistics.covariance(x, y) / statistics.variance(y)
    s = stats_of(daily(equity), close=daily(close), bars_per_year=252)
    assert s["Beta"] == pytest.approx(beta, rel=1e-12)
    assert s["Alpha [%]"] == pytest.approx(8.0 - beta * 5.0)  # 108 / 100, 52.5 / 50


def test_alpha_subtracts_the_risk_free_return_over_the_period():
    # bars_per_year = 3 and four bars: one year, so R_f = 5% (not 5% per year of the period).
    close = daily([100.0, 110.0, 99.0, 121.0])
    s = stats_of(close**2 / 100, close=close, bars_per_year=3, risk_free_rate=0.05)
    assert s["Alpha [%]"] == pytest.approx(46.41 - 5 - 2 * (21 - 5))  # 9.41
    # Over half a year (bars_per_year = 6) the risk-free return is 1.05 ** 0.5 - 1.
    s = stats_of(close**2 / 100, close=close, bars_per_year=6, risk_free_rate=0.05)
    rf = 100 * (math.sqrt(1.05) - 1)
    assert s["Alpha [%]"] == pytest.approx(46.41 - rf - 2 * (21 - rf))


def test_beta_uses_only_bars_with_positive_equity_at_both_ends():
    equity = daily([100.0, 50.0, -10.0, -20.0, 30.0, 60.0])
    close = daily([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    s = stats_of(equity, close=close, bars_per_year=252)
    # Two pairs left, 100 -> 50 and 30 -> 60: the slope through two points.
    slope = (math.log(2) - math.log(0.5)) / (math.log(15 / 14) - math.log(1.1))
    assert s["Beta"] == pytest.approx(slope)


def test_beta_and_alpha_are_nan_against_a_flat_benchmark_or_too_few_returns():
    s = stats_of(daily(EQUITY), close=daily([50.0] * 4), bars_per_year=3)
    assert np.isnan(s["Beta"]) and np.isnan(s["Alpha [%]"])
    s = stats_of(daily([100.0, 101.0]), bars_per_year=252)  # one return
    assert np.isnan(s["Beta"]) and np.isnan(s["Alpha [%]"])


def test_drawdown_depths_and_durations_over_several_episodes():
    # E:     100  90 100 120  90  60 120 110   (one bar per calendar day)
    # peak:  100 100 100 120 120 120 120 120
    # dd:      0 .10   0   0 .25 .50   0 1/12
    # episodes: bar 1 (deepest .10), peak bar 0 -> recovered bar 2: 2 days
    #           bars 4-5 (deepest .50), peak bar 3 -> recovered bar 6: 3 days
    #           bar 7 (deepest 1/12), peak bar 6 -> unrecovered, runs to bar 7: 1 day
    equity = daily([100, 90, 100, 120, 90, 60, 120, 110])
    s = stats_of(equity, bars_per_year=252)
    assert s["Max. Drawdown [%]"] == pytest.approx(-50.0)
    assert s["Avg. Drawdown [%]"] == pytest.approx(-100 * (0.10 + 0.50 + 1 / 12) / 3)  # -22.78
    assert s["Max. Drawdown Duration"] == 3 * DAY
    assert s["Avg. Drawdown Duration"] == 2 * DAY  # (2 + 3 + 1) / 3
    expected = [0, 0.1, 0, 0, 0.25, 0.5, 0, 1 / 12]
    np.testing.assert_allclose(drawdown(equity).to_numpy(), expected)
    assert drawdown(equity).index.equals(equity.index)


def test_unrecovered_drawdown_runs_to_the_last_bar():
    # E: 100 120 90 100 105 -> peak 120 at bar 1 never regained; dd bars 2-4: .25, 1/6, .125
    s = stats_of(daily([100, 120, 90, 100, 105]), bars_per_year=252)
    assert s["Max. Drawdown [%]"] == pytest.approx(-25.0)
    assert s["Avg. Drawdown [%]"] == pytest.approx(-25.0)  # a single episode
    assert s["Max. Drawdown Duration"] == 3 * DAY  # bar 1 -> bar 4
    assert s["Avg. Drawdown Duration"] == 3 * DAY


def test_durations_follow_index_time_not_bar_counts():
    # Business days: Fri 2024-01-05 peak, Mon dips, Tue recovers -> 4 calendar days, 2 bars.
    index = pd.DatetimeIndex(["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"])
    s = stats_of(pd.Series([100.0, 110.0, 100.0, 111.0], index=index), bars_per_year=252)
    assert s["Max. Drawdown Duration"] == 4 * DAY


def test_trade_statistics_by_hand():
    # PnL 10, -5, 20, -10; ReturnPct .10, -.05, .20, -.10; durations 1, 2, 3, 6 days
    trades = make_trades([10, -5, 20, -10], [0.10, -0.05, 0.20, -0.10], [1, 2, 3, 6])
    equity = daily(np.linspace(100, 115, 40))
    s = stats_of(equity, trades, bars_per_year=252, commissions=1.5)
    assert s["# Trades"] == 4
    assert s["Win Rate [%]"] == pytest.approx(50.0)  # 2 of 4 with PnL > 0
    assert s["Best Trade [%]"] == pytest.approx(20.0)
    assert s["Worst Trade [%]"] == pytest.approx(-10.0)
    # geometric: 1.1 * 0.95 * 1.2 * 0.9 = 1.1286 -> 1.1286 ** (1/4) - 1 = 3.0706%
    assert s["Avg. Trade [%]"] == pytest.approx(100 * (1.1286**0.25 - 1))
    assert s["Avg. Trade [%]"] == pytest.approx(3.0706, abs=1e-4)
    assert s["Max. Trade Duration"] == 6 * DAY
    assert s["Avg. Trade Duration"] == 3 * DAY  # (1 + 2 + 3 + 6) / 4
    assert s["Profit Factor"] == pytest.approx(2.0)  # (10 + 20) / |-5 - 10|
    assert s["Expectancy [%]"] == pytest.approx(3.75)  # (.10 - .05 + .20 - .10) / 4
    # mean PnL 3.75; deviations 6.25, -8.75, 16.25, -13.75; squares sum 568.75
    # std = sqrt(568.75 / 3) = 13.76893; SQN = sqrt(4) * 3.75 / 13.76893 = 0.544705
    assert s["SQN"] == pytest.approx(2 * 3.75 / math.sqrt(568.75 / 3))
    assert s["SQN"] == pytest.approx(0.544705, abs=1e-6)
    # Kelly: W = .5, avg win 15, avg loss 7.5 -> .5 - .5 / 2 = .25
    assert s["Kelly Criterion"] == pytest.approx(0.25)
    assert s["Commissions [$]"] == 1.5


def test_exposure_and_buy_and_hold():
    equity = daily([100, 100, 101, 102, 102])
    close = daily([50, 51, 52, 54, 55])
    position = np.array([0, 1, 1, 0, -2])  # 3 of 5 bars in the market
    s = stats_of(equity, close=close, exposure=position, bars_per_year=252)
    assert s["Exposure Time [%]"] == pytest.approx(60.0)
    assert s["Buy & Hold Return [%]"] == pytest.approx(10.0)  # 55 / 50 - 1
    s = stats_of(equity, close=close, exposure=pd.Series(position, index=equity.index))
    assert s["Exposure Time [%]"] == pytest.approx(60.0)


def test_no_trades_gives_nan_trade_statistics_and_zero_count():
    s = stats_of(daily(EQUITY), bars_per_year=3)
    assert s["# Trades"] == 0
    for key in STAT_KEYS[STAT_KEYS.index("Win Rate [%]") : STAT_KEYS.index("Commissions [$]")]:
        assert pd.isna(s[key]), key
    assert s["Max. Trade Duration"] is pd.NaT
    assert s["Commissions [$]"] == 0.0
    # A frame without even the columns works too.
    s = compute_stats(daily(EQUITY), pd.DataFrame(), daily(EQUITY), np.zeros(4))
    assert s["# Trades"] == 0 and np.isnan(s["SQN"])


def test_constant_equity_has_zero_risk_and_undefined_ratios():
    s = stats_of(daily([1000.0] * 30))
    assert s["Return [%]"] == 0.0
    assert s["Return (Ann.) [%]"] == 0.0
    assert s["Volatility (Ann.) [%]"] == 0.0
    assert np.isnan(s["Sharpe Ratio"])
    assert np.isnan(s["Sortino Ratio"])
    assert np.isnan(s["Calmar Ratio"])
    assert s["Max. Drawdown [%]"] == 0.0 and math.copysign(1, s["Max. Drawdown [%]"]) == 1
    assert s["Avg. Drawdown [%]"] == 0.0
    assert s["Max. Drawdown Duration"] == pd.Timedelta(0)


def test_monotonic_rising_equity_has_no_drawdown():
    s = stats_of(daily([100, 101, 103, 104, 110]), bars_per_year=252)
    assert s["Max. Drawdown [%]"] == 0.0
    assert s["Avg. Drawdown [%]"] == 0.0
    assert s["Max. Drawdown Duration"] == pd.Timedelta(0)
    assert s["Avg. Drawdown Duration"] == pd.Timedelta(0)
    assert np.isnan(s["Calmar Ratio"])  # no drawdown to divide by
    assert np.isnan(s["Sortino Ratio"])  # no downside
    assert s["Sharpe Ratio"] > 0


def test_undefined_trade_ratios_are_nan_without_winners_or_losers():
    only_wins = make_trades([5, 10], [0.05, 0.10], [1, 1])
    s = stats_of(daily(EQUITY), only_wins)
    assert s["Win Rate [%]"] == 100.0
    assert np.isnan(s["Profit Factor"]) and np.isnan(s["Kelly Criterion"])
    one_loss = make_trades([-5], [-0.05], [2])
    s = stats_of(daily(EQUITY), one_loss)
    assert s["Win Rate [%]"] == 0.0
    assert np.isnan(s["SQN"]) and np.isnan(s["Profit Factor"]) and np.isnan(s["Kelly Criterion"])
    assert s["Avg. Trade [%]"] == pytest.approx(-5.0)
    same_pnl = make_trades([5, 5], [0.05, 0.05], [1, 1])
    assert np.isnan(stats_of(daily(EQUITY), same_pnl)["SQN"])  # std(PnL) = 0


def test_geometric_mean_trade_at_and_beyond_total_loss():
    wiped = make_trades([10, -100], [0.10, -1.0], [1, 1])  # 1.1 * 0 = 0 -> -100%
    assert stats_of(daily(EQUITY), wiped)["Avg. Trade [%]"] == -100.0
    beyond = make_trades([10, -150], [0.10, -1.5], [1, 1])  # a short losing 150%: undefined
    assert np.isnan(stats_of(daily(EQUITY), beyond)["Avg. Trade [%]"])


def test_blown_account_does_not_raise_or_warn():
    s = stats_of(daily([100, 50, 0, 0, -10]), bars_per_year=252)
    assert s["Return [%]"] == pytest.approx(-110.0)
    assert s["Return (Ann.) [%]"] == -100.0
    assert s["Max. Drawdown [%]"] == pytest.approx(-110.0)
    # returns exist only after positive equity: 50/100 - 1, 0/50 - 1
    # std(-0.5, -1.0; ddof=1) = 0.25 sqrt(2) = 0.353553 -> x sqrt(252) = 5.6125 -> 561.25%
    assert s["Volatility (Ann.) [%]"] == pytest.approx(100 * 0.25 * math.sqrt(2) * math.sqrt(252))


def test_tiny_inputs():
    s = stats_of(daily([100.0]))
    assert s["Return [%]"] == 0.0 and s["Duration"] == pd.Timedelta(0)
    assert np.isnan(s["Return (Ann.) [%]"]) and np.isnan(s["Volatility (Ann.) [%]"])
    s = stats_of(daily([]))
    assert list(s.index) == list(STAT_KEYS) and s["Start"] is pd.NaT and s["# Trades"] == 0


def test_hourly_24x5_data_is_annualized_with_inferred_bars_per_year():
    hours = pd.date_range("2023-01-02", "2024-12-31", freq="h")
    index = hours[hours.day_of_week < 5]  # 24 hours x 5 days, like FX
    bpy = bars_per_year(index)
    assert 6_000 < bpy < 6_400  # 24 * 5 * 52.18 = 6,261
    rng = np.random.default_rng(0)
    equity = pd.Series(1e4 * np.cumprod(1 + rng.normal(0, 1e-3, len(index))), index=index)
    inferred = stats_of(equity)
    explicit = stats_of(equity, bars_per_year=bpy)
    daily_bpy = stats_of(equity, bars_per_year=252)
    for key in ("Volatility (Ann.) [%]", "Sharpe Ratio", "Return (Ann.) [%]"):
        assert inferred[key] == pytest.approx(explicit[key]), key
    r = equity.pct_change().dropna()
    assert inferred["Volatility (Ann.) [%]"] == pytest.approx(100 * r.std() * math.sqrt(bpy))
    # Mis-annualizing as daily would understate the volatility by sqrt(6261/252) ~ 5x.
    ratio = inferred["Volatility (Ann.) [%]"] / daily_bpy["Volatility (Ann.) [%]"]
    assert ratio == pytest.approx(math.sqrt(bpy / 252))


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (pd.Timedelta(days=7301), "7,301 days"),
        (pd.Timedelta(days=1), "1 day"),
        (pd.Timedelta(0), "0 days"),
        (pd.Timedelta("27 days 20:40:37.4"), "27 days 20:40:37"),
        (pd.Timedelta("1 days 23:59:59.6"), "2 days"),
        (pd.Timedelta(hours=4), "0 days 04:00:00"),
        (pd.Timedelta(milliseconds=500), "0 days 00:00:00.500000"),
    ],
)
def test_format_duration(duration, text):
    assert format_duration(duration) == text


def test_a_million_bars_is_fast():
    n = 1_000_000
    index = pd.date_range("2000-01-01", periods=n, freq="min")
    rng = np.random.default_rng(1)
    equity = pd.Series(1e4 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))), index=index)
    position = rng.integers(-1, 2, n)
    trades = make_trades(rng.normal(1, 10, 10_000), rng.normal(0, 0.01, 10_000), np.ones(10_000))
    compute_stats(equity, trades, equity, position)  # warm up
    start = time.perf_counter()
    s = compute_stats(equity, trades, equity, position)
    assert time.perf_counter() - start < 1.0
    assert s["# Trades"] == 10_000 and s["Max. Drawdown [%]"] < 0
