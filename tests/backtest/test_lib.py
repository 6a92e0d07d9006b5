"""crossover() on two series equals its definition; resample_apply() brings a higher timeframe
back to the bars causally."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.backtest import Backtest, LookAheadError, Strategy, crossover, resample_apply
from tradenn.backtest.lookahead import check_lookahead
from tradenn.backtest.series import BarSeries, Clock, check_cuts
from tradenn.features import sma
from tradenn.live import Bar, Ledger, PaperTrader, SimulatedBroker


def _by_definition(a, b, i):
    return i >= 1 and bool(a[i - 1] < b[i - 1] and a[i] > b[i])


def test_crossover_of_two_series_is_the_definition_on_every_bar():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(size=300)
    a[[5, 6, 40]] = np.nan  # NaN compares False, as in the definition
    b[100] = a[100]  # a tie is not a cross
    clock = Clock(0)
    fast, slow = BarSeries(a, clock, "fast"), BarSeries(b, clock, "slow")
    found = []
    for i in range(300):
        clock.i = i
        found.append((crossover(fast, slow), crossover(slow, fast)))
    assert found == [(_by_definition(a, b, i), _by_definition(b, a, i)) for i in range(300)]
    assert any(up for up, _ in found) and any(down for _, down in found)


def test_crossover_follows_a_moving_window():
    # The paper loop rebinds series to a window that moves with every bar: answers must
    # follow the new values, never a cache of the old ones.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(size=200)
    clock = Clock(0)
    fast, slow = BarSeries(a[:10], clock, "fast"), BarSeries(b[:10], clock, "slow")
    for i in range(10, 200):
        lo = i - 9
        fast.rebind(a[lo : i + 1].copy(), lo)
        slow.rebind(b[lo : i + 1].copy(), lo)
        clock.i = i
        assert crossover(fast, slow) == _by_definition(a, b, i)
        assert crossover(slow, fast) == _by_definition(b, a, i)
    # the same array object rebound at another offset is read afresh, not from the cache
    fast.rebind(a, 0)
    slow.rebind(b, 0)
    shifted = [
        i
        for i in range(2, 200)
        if _by_definition(a, b, i) != (a[i - 1] < b[i - 2] and a[i] > b[i - 1])
    ]
    clock.i = shifted[0]
    assert crossover(fast, slow) == _by_definition(a, b, clock.i)  # cached, aligned
    slow.rebind(b, 1)  # now slow's bar k is b[k - 1]
    expected = bool(a[clock.i - 1] < b[clock.i - 2] and a[clock.i] > b[clock.i - 1])
    assert crossover(fast, slow) == expected


# ------------------------------------------------------------------------- resample_apply

DAYS = pd.bdate_range("2024-01-01", periods=17, name="Date")  # Mon 1 Jan .. Tue 23 Jan
NAN = np.nan


def _closes(index=DAYS) -> pd.Series:
    return pd.Series(np.arange(1.0, len(index) + 1), index=index, name="Close")


def test_a_week_is_known_from_the_close_of_its_last_bar_on():
    # Weeks ending Friday: closes 1-5, 6-10, 11-15, then 16, 17 of an unfinished week.
    weekly_close = resample_apply("W-FRI", None, _closes())
    assert weekly_close.tolist() == pytest.approx(
        [NAN] * 4 + [5.0] * 5 + [10.0] * 5 + [15.0] * 3, nan_ok=True
    )
    assert weekly_close.index.equals(DAYS)


def test_a_weekly_sma_on_daily_bars_by_hand():
    # SMA(2) of the weekly closes 5, 10, 15: NaN, 7.5, 12.5, each from its week's Friday.
    weekly_sma = resample_apply("W-FRI", sma, _closes(), 2)
    assert weekly_sma.tolist() == pytest.approx([NAN] * 9 + [7.5] * 5 + [12.5] * 3, nan_ok=True)


def test_the_unfinished_last_week_gives_no_value():
    # Mon 22 and Tue 23 Jan (closes 16, 17) show the week before, however it is aggregated.
    assert resample_apply("W-FRI", None, _closes()).iloc[-2:].tolist() == [15.0, 15.0]
    assert resample_apply("W-FRI", None, _closes(), agg="max").iloc[-2:].tolist() == [15.0, 15.0]


def test_weeks_ending_sunday_on_weekday_bars_are_known_on_monday():
    # After Friday's close a Saturday or Sunday bar could still come: "W" is W-SUN.
    assert resample_apply("W", None, _closes()).tolist() == pytest.approx(
        [NAN] * 5 + [5.0] * 5 + [10.0] * 5 + [15.0] * 2, nan_ok=True
    )


def test_a_friday_holiday_makes_the_week_known_on_monday():
    days = DAYS.delete(9)  # no bar on Friday 12 Jan: Thursday could be followed by Friday
    weekly_close = resample_apply("W-FRI", None, _closes(days))
    assert weekly_close.loc["2024-01-11"] == 5.0
    assert weekly_close.loc["2024-01-15"] == 9.0  # Thursday's close, shown on Monday


def test_a_week_of_seven_day_bars_is_known_on_sunday():
    days = pd.date_range("2024-01-01", periods=15, freq="D")  # Mon 1 .. Mon 15 Jan
    weekly_close = resample_apply("W", None, _closes(days))
    assert weekly_close.tolist() == pytest.approx([NAN] * 6 + [7.0] * 7 + [14.0] * 2, nan_ok=True)


def test_ohlc_columns_are_aggregated_first_max_min_last_sum():
    frame = pd.DataFrame(
        {
            "Open": [10.0, 11, 12, 13, 14, 15, 16],
            "High": [12.0, 19, 13, 14, 15, 16, 17],
            "Low": [9.0, 10, 8, 12, 13, 14, 15],
            "Close": [11.0, 12, 13, 14, 15, 16, 17],
            "Volume": [1.0, 2, 3, 4, 5, 6, 7],
        },
        index=pd.bdate_range("2024-01-01", periods=7),
    )
    weekly = resample_apply("W-FRI", None, frame)
    assert list(weekly.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert weekly.iloc[4].tolist() == [10.0, 19.0, 8.0, 15.0, 15.0]  # Friday: Mon..Fri
    assert weekly.iloc[6].tolist() == [10.0, 19.0, 8.0, 15.0, 15.0]  # unfinished week: same
    assert weekly.iloc[:4].isna().all().all()


def test_func_receives_one_row_per_period_stamped_at_its_last_bar():
    seen = []

    def spy(weekly):
        seen.append(weekly.copy())
        return weekly

    days = DAYS.delete(9)
    resample_apply("W-FRI", spy, _closes(days))
    (weekly,) = seen
    assert weekly.tolist() == [5.0, 9.0, 14.0, 16.0]  # the last week is unfinished
    assert [str(t.date()) for t in weekly.index] == [
        "2024-01-05",
        "2024-01-11",
        "2024-01-19",
        "2024-01-23",
    ]


def test_agg_chooses_how_the_bars_of_a_series_are_combined():
    highs = pd.Series([3.0, 9, 4, 5, 6, 1, 2], index=pd.bdate_range("2024-01-01", periods=7))
    assert resample_apply("W-FRI", None, highs, agg="max").iloc[4] == 9.0
    assert resample_apply("W-FRI", None, highs.rename("High")).iloc[4] == 9.0  # by its name
    assert resample_apply("W-FRI", None, highs).iloc[4] == 6.0  # unnamed: the last


def test_agg_for_a_frame_overrides_the_columns_it_names():
    frame = pd.DataFrame(
        {"Close": [1.0, 2, 3, 4, 5], "Signal": [5.0, 1, 2, 3, 4]},
        index=pd.bdate_range("2024-01-01", periods=5),
    )
    weekly = resample_apply("W-FRI", None, frame, agg={"Signal": "mean"})
    assert weekly.iloc[-1].tolist() == [5.0, 3.0]


def test_several_outputs_come_back_one_series_each():
    def band(weekly):
        return weekly - 1, weekly + 1

    lower, upper = resample_apply("W-FRI", band, _closes())
    assert (lower.iloc[4], upper.iloc[4]) == (4.0, 6.0)


def _random_walk(index: pd.DatetimeIndex, seed: int = 0) -> pd.Series:
    steps = np.random.default_rng(seed).normal(size=len(index))
    return pd.Series(100 + steps.cumsum(), index=index, name="Close")


@pytest.mark.parametrize("rule", ["W-FRI", "BME", "QE"])
def test_on_the_bar_that_ends_each_period_the_value_is_pandas_bar_for_it(rule):
    days = pd.bdate_range("2021-01-04", periods=600)
    days = days.delete([4, 49, 50, 140, 354])  # holidays, three of them Fridays
    close = _random_walk(days)
    mine = resample_apply(rule, None, close)
    reference = close.resample(rule).last().dropna()  # stamped at each period's end
    ends = days[days.isin(reference.index)]
    assert len(ends) > 5
    assert mine.loc[ends].tolist() == reference.loc[ends].tolist()


def test_a_bar_after_its_period_was_judged_complete_is_left_out():
    # Mon, Thu, Fri: at Thursday the only spacing seen is 3 days, so the next bar could not
    # come before Sunday and the week is complete; Friday's bar proves otherwise, too late to
    # change what Thursday showed.
    days = pd.DatetimeIndex(["2024-01-01", "2024-01-04", "2024-01-05", "2024-01-08"])
    weekly_close = resample_apply("W-FRI", None, _closes(days))
    assert weekly_close.tolist() == pytest.approx([NAN, 2.0, 2.0, 2.0], nan_ok=True)


RULES = ["D", "W-FRI", "W", "ME", "MS", "4h", "3D"]


@pytest.mark.parametrize("rule", RULES)
def test_every_value_is_the_one_computable_from_the_bars_up_to_it(rule):
    # Hourly New York bars across the March daylight-saving change: recomputed on the bars up
    # to t, the value at t is the same (the definition of causal). Every 7th bar: 7 is prime to
    # 24, so the bars checked fall on every hour of the day, and on every weekday.
    hours = pd.date_range("2024-02-25", periods=24 * 40, freq="h", tz="America/New_York")
    close = _random_walk(hours[hours.day_of_week < 5])
    full = resample_apply(rule, sma, close, 2).to_numpy()
    for t in range(0, len(close), 7):
        now = resample_apply(rule, sma, close.iloc[: t + 1], 2).to_numpy()
        np.testing.assert_array_equal(now, full[: t + 1], err_msg=f"bar {t}")
    assert np.isfinite(full).any()


@pytest.mark.parametrize("rule", ["W", "W-FRI", "ME", "D"])
def test_periods_follow_the_wall_clock_of_a_tz_aware_index(rule):
    # Tokyo midnight is 15:00 UTC the day before: in UTC, Monday's bar would join the week
    # ending Sunday. A tz-aware frame gives the values of the same frame without its zone.
    naive = _random_walk(pd.bdate_range("2024-01-01", periods=80))
    aware = naive.tz_localize("Asia/Tokyo")
    assert resample_apply(rule, None, aware).tolist() == pytest.approx(
        resample_apply(rule, None, naive).tolist(), nan_ok=True
    )


def test_a_day_of_24_hourly_tz_aware_bars_is_known_at_its_last_hour():
    # London, 31 March 2024 has 23 hours (clocks go forward): each day at its 23:00 bar.
    hours = pd.date_range("2024-03-29", "2024-04-01 23:00", freq="h", tz="Europe/London")
    daily_close = resample_apply("D", None, _closes(hours))
    known = daily_close.index[daily_close.diff().ne(0) & daily_close.notna()]
    assert [t.strftime("%d %H:%M %Z") for t in known] == [
        "29 23:00 GMT",
        "30 23:00 GMT",
        "31 23:00 BST",
        "01 23:00 BST",
    ]
    assert daily_close.loc["2024-03-31 23:00"] == 24 + 24 + 23  # the 71st bar's close
    assert daily_close.index.equals(hours)


def test_a_stock_session_that_ends_before_midnight_gives_the_day_on_the_next_open():
    # 09:30 .. 15:30 half-hourly: after 15:30 another bar of the same day could come at 16:00.
    sessions = [
        pd.date_range(f"2024-01-0{d} 09:30", f"2024-01-0{d} 15:30", freq="30min") for d in (2, 3)
    ]
    bars = sessions[0].append(sessions[1])
    daily_close = resample_apply("D", None, _closes(bars))
    assert daily_close.iloc[: len(sessions[0])].isna().all()
    assert daily_close.iloc[len(sessions[0])] == len(sessions[0])  # 3 Jan 09:30: 2 Jan close


# A naive resampling fails Strategy.I's look-ahead check; resample_apply passes it.


def weekly_close_at_first_bar(times, close):
    """The textbook leak: each week's last close on every bar of that week."""
    closes = pd.Series(close, index=pd.DatetimeIndex(times))
    return closes.resample("W-FRI").last().reindex(closes.index, method="bfill")


def weekly_close_at_last_bar(times, close):
    """Subtler: each week from its last bar in the data on (tradenn.data.resample's stamps),
    which needs the next bar to tell that a bar is its week's last."""
    frame = pd.DataFrame({"Close": close}, index=pd.DatetimeIndex(times))
    return data.resample(frame, "W-FRI")["Close"].reindex(frame.index).ffill()


def _weekly_strategy(kind: str) -> type[Strategy]:
    class Weekly(Strategy):
        def init(self):
            d = self.data
            if kind == "resample_apply":
                self.weekly = self.I(resample_apply, "W-FRI", None, d.Close, index=d.index)
            else:
                naive = {"first": weekly_close_at_first_bar, "last": weekly_close_at_last_bar}
                self.weekly = self.I(naive[kind], d.index, d.Close)

    return Weekly


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    frame = data.load("SPX", start="2015-01-01", end="2015-12-31")
    # Strategy.I recomputes on the first third and two thirds: for a leak to show, they must
    # end inside a week (here on Monday 4 May and Tuesday 1 September)
    ends = [frame.index[cut - 1].day_name() for cut in check_cuts(len(frame))]
    assert ends == ["Monday", "Tuesday"]
    return frame


@pytest.mark.parametrize("kind", ["first", "last"])
def test_naive_weekly_resampling_fails_the_indicator_lookahead_check(spx, kind):
    with pytest.raises(LookAheadError, match="uses future data"):
        Backtest(spx, _weekly_strategy(kind)).run()


def test_resample_apply_passes_the_indicator_lookahead_check(spx):
    result = Backtest(spx, _weekly_strategy("resample_apply")).run()
    assert len(result.equity) == len(spx)


class WeeklyTrend(Strategy):
    """Long while the close is above the 4-week SMA, flat below."""

    weeks = 4
    naive = False

    def init(self):
        d = self.data
        if self.naive:
            weekly = self.I(weekly_close_at_first_bar, d.index, d.Close, check_lookahead=False)
            self.trend = self.I(sma, weekly, 5 * self.weeks)
        else:
            self.trend = self.I(resample_apply, "W-FRI", sma, d.Close, self.weeks, index=d.index)

    def next(self):
        above = self.data.Close[-1] > self.trend[-1]
        if above and not self.position:
            self.buy(size=0.5)
        elif not above and self.position:
            self.position.close()


def test_the_lookahead_audit_is_clean_for_resample_apply_and_flags_the_naive_leak(spx):
    assert check_lookahead(WeeklyTrend, spx).clean
    assert not check_lookahead(WeeklyTrend, spx, params={"naive": True}).clean


class Replay:
    """A feed of a frame's bars, in order."""

    name = "replay:SPX"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def bars(self, after, stop):
        frame = self.frame if after is None else self.frame[self.frame.index > after]
        for time, row in frame.iterrows():
            yield Bar(time, row.Open, row.High, row.Low, row.Close, row.Volume)


def test_a_paper_run_with_resample_apply_trades_as_the_backtest(spx, tmp_path):
    # The paper loop recomputes indicators on a window of the last 60 bars that moves with
    # every bar: index=self.data.index moves with it.
    class Windowed(WeeklyTrend):
        history_bars = 60

    backtest = Backtest(spx, Windowed, cash=10_000.0).run()
    with Ledger(tmp_path / "paper.db") as ledger:
        trader = PaperTrader(Windowed, lambda: SimulatedBroker(10_000.0), ledger, Replay(spx))
        summary = trader.run(None)
        equity = ledger.equity()["equity"].tolist()
    assert len(backtest.trades) > 3
    assert equity == backtest.equity.tolist()
    assert summary.equity == backtest.stats["Equity Final [$]"]


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: resample_apply("fortnight", None, _closes()), "not a pandas offset"),
        (lambda: resample_apply("2W", None, _closes()), "one calendar period"),
        (lambda: resample_apply("0h", None, _closes()), "positive length"),
        (lambda: resample_apply("W", None, _closes().to_numpy()), "index=self.data.index"),
        (lambda: resample_apply("W", None, _closes(), index=DAYS), "only with an array"),
        (lambda: resample_apply("W", None, _closes().reset_index(drop=True)), "DatetimeIndex"),
        (lambda: resample_apply("W", None, _closes().iloc[::-1]), "increasing"),
        (lambda: resample_apply("W", None, np.ones(3), index=DAYS), "17 timestamps for 3"),
        (lambda: resample_apply("W", lambda w: w.iloc[1:], _closes()), "one value per period"),
        (lambda: resample_apply("W", None, _closes().iloc[:0]), "no bars"),
    ],
)
def test_bad_inputs_are_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_the_guide_shows_the_output_of_its_example(capsys):
    guide = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
    section = guide.read_text().split("## 8. Position sizing and higher timeframes")[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.DOTALL).group(1)
    exec(compile(code, str(guide), "exec"), {"__name__": "guide_example"})
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert printed == shown.splitlines()  # pandas pads lines with spaces; the guide does not
