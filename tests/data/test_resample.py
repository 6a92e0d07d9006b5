"""OHLCV aggregation."""

from __future__ import annotations

import pandas as pd
import pytest

from tradenn.data import DataError, load, resample


def test_weekly_bars_aggregate_ohlcv_and_are_stamped_at_their_last_day():
    daily = load("SPX", "2018-12-17", "2018-12-28")  # two weeks; Christmas Day closed
    weekly = resample(daily, "W")
    assert list(weekly.index) == [pd.Timestamp("2018-12-21"), pd.Timestamp("2018-12-28")]
    week = daily.loc["2018-12-24":"2018-12-28"]
    row = weekly.iloc[1]
    assert row.Open == week.Open.iloc[0] and row.Close == week.Close.iloc[-1]
    assert row.High == week.High.max() and row.Low == week.Low.min()
    assert row.Volume == week.Volume.sum()


def test_hourly_to_daily_drops_empty_weekend_periods():
    hourly = load("EURUSD_1H", "2017-01-06", "2017-01-10")
    daily = resample(hourly, "D")
    assert pd.Timestamp("2017-01-07").day_of_week == 5
    assert not any(ts.day_of_week == 5 for ts in daily.index)
    assert daily["Close"].iloc[-1] == hourly["Close"].iloc[-1]


def test_an_invalid_rule_is_a_data_error():
    with pytest.raises(DataError, match="invalid rule 'fortnightly-ish'"):
        resample(load("SPX", end="1999-02-01"), "fortnightly-ish")
