"""Bundled datasets and the `load` entry point."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from tradenn.data import BUNDLED, DataError, load
from tradenn.data.calendar import bar_label, bars_per_year

EXPECTED = {  # rows, first bar, last bar: from data/README.md
    "SPX": (5031, "1999-01-04", "2018-12-31"),
    "NASDAQ": (5031, "1999-01-04", "2018-12-31"),
    "MSFT": (7983, "1986-03-13", "2017-11-10"),
    "GOOGL": (2335, "2009-05-22", "2018-08-29"),
    "EURUSD_1H": (6225, "2017-01-01 22:00", "2017-12-29 21:00"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_dataset_has_the_documented_rows_and_range(name):
    rows, first, last = EXPECTED[name]
    frame = load(name.lower())
    assert (len(frame), frame.index[0], frame.index[-1]) == (
        rows,
        pd.Timestamp(first),
        pd.Timestamp(last),
    )
    assert list(frame.columns[:4]) == ["Open", "High", "Low", "Close"] and "Volume" in frame


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_dataset_round_trips_through_csv(name, tmp_path):
    frame = load(name)
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path)
    again = load(path)
    pd.testing.assert_frame_equal(again, frame, check_index_type=False, check_freq=False)


def test_bundled_names_are_all_listed():
    assert set(BUNDLED) == set(EXPECTED)


def test_load_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(load("SPX")) == 5031


def test_start_and_end_are_inclusive_and_an_end_date_covers_its_whole_day():
    frame = load("EURUSD_1H", start="2017-06-01", end="2017-06-01")
    assert frame.index[0] == pd.Timestamp("2017-06-01 00:00")
    assert frame.index[-1] == pd.Timestamp("2017-06-01 23:00")
    assert len(load("SPX", "2018-12-24", "2018-12-31")) == 5  # Christmas Day is a holiday


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "NOPE"}, "NOPE: unknown data source"),
        ({"source": "SPX", "start": "2030-01-01"}, "SPX: no bars between 2030-01-01"),
        ({"source": "SPX", "start": "yesterday-ish"}, "start: cannot read date 'yesterday-ish'"),
        (
            {"source": "SPX", "start": "2010-01-01", "end": "2009-01-01"},
            "start 2010-01-01 is after end",
        ),
        ({"source": "SPX", "interval": "1h"}, "apply to yf: sources only"),
    ],
)
def test_load_errors_are_one_clear_line(kwargs, message):
    with pytest.raises(DataError) as caught:
        load(**kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bar_frequency_is_inferred_from_the_index():
    assert bar_label(load("SPX").index) == "daily" and bars_per_year(load("SPX").index) == 252
    hourly = load("EURUSD_1H").index
    assert bar_label(hourly) == "hourly"
    # About 24 bars a day, 5 days a week (FX closes for the weekend).
    assert 24 * 5 * 50 < bars_per_year(hourly) < 24 * 5 * 53


def test_bundled_files_ship_inside_the_package():
    for dataset in BUNDLED.values():
        assert dataset.path.is_file() and os.sep + "tradenn" + os.sep in str(dataset.path)
    assert np.isfinite(load("GOOGL")["Adj Close"]).all()


def test_bars_per_year_is_remembered_per_index_object_only():
    daily = pd.date_range("2020-01-01", periods=800, freq="B")
    hourly = pd.date_range("2020-01-01", periods=800, freq="h")
    assert bars_per_year(daily) == 252.0
    assert bars_per_year(hourly) == 8766.0  # 24 x 365.25
    assert bars_per_year(daily) == 252.0  # remembered, and not confused with the other index
    weekly = pd.DatetimeIndex(daily[::5])  # a new index: measured afresh
    assert bars_per_year(weekly) == 52.0
