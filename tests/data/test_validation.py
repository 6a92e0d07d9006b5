"""Every rule of the price-frame contract, each broken once in a small CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn.data import DataError, validate
from tradenn.data.files import read_csv

GOOD = """
Date,Open,High,Low,Close,Volume
2020-01-02,10,11,9,10.5,100
2020-01-03,10.5,12,10,11,200
2020-01-06,11,11.5,10.2,10.8,150
"""


def _broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_a_valid_file_reads_as_a_float_price_frame(write_csv):
    frame = read_csv(write_csv(GOOD))
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert frame.index.name == "Date" and isinstance(frame.index, pd.DatetimeIndex)
    assert (frame.dtypes == np.float64).all()
    assert frame.loc["2020-01-03", "High"] == 12.0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("Close,Volume", "Last_,Volume", "missing column Close"),
        ("Date,Open,High", "Date,Start,High", "missing column Open"),
        ("10.5,12,10", "10.5,abc,10", "non-numeric High 'abc' at line 3 (2020-01-03)"),
        ("10.5,12,10,11,200", "10.5,12,10,,200", "missing value (NaN) in Close at line 3"),
        ("2020-01-02,10,11,9", "2020-01-02,-10,11,9", "non-positive Open -10 at line 2"),
        ("2020-01-02,10,11,9", "2020-01-02,10,11,0", "non-positive Low 0 at line 2"),
        ("10.8,150", "10.8,-5", "negative Volume -5 at line 4"),
        ("2020-01-06,11,11.5", "2020-01-06,11,10.9", "High 10.9 is below max(Open, Close) = 11"),
        (
            "2020-01-03,10.5,12,10,",
            "2020-01-03,10.5,12,10.6,",
            "Low 10.6 is above min(Open, Close)",
        ),
        ("2020-01-06", "2020-01-03", "duplicate timestamp at line 4 (2020-01-03)"),
        ("2020-01-06", "2020-01-01", "timestamps out of order at line 4 (2020-01-01)"),
        ("2020-01-06", "2020-13-45", "cannot read date '2020-13-45' in column 'Date' at line 4"),
    ],
)
def test_each_broken_rule_is_named_with_its_line(write_csv, old, new, message):
    path = write_csv(_broken(old, new))
    with pytest.raises(DataError) as caught:
        read_csv(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_an_empty_file_and_a_header_only_file_are_errors(write_csv):
    with pytest.raises(DataError, match="the file is empty"):
        read_csv(write_csv("", "empty.csv"))
    with pytest.raises(DataError, match="no rows of data"):
        read_csv(write_csv("Date,Open,High,Low,Close,Volume\n", "header.csv"))


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: no such file"):
        read_csv(tmp_path / "nowhere.csv")


def test_validate_on_a_frame_names_the_row_and_source():
    frame = read_csv_frame()
    frame.iloc[1, frame.columns.get_loc("Close")] = np.nan
    with pytest.raises(
        DataError, match=r"^mine: missing value \(NaN\) in Close at row 2 \(2020-01-03\)"
    ):
        validate(frame, "mine")


def test_validate_rejects_a_non_datetime_index():
    frame = read_csv_frame().reset_index(drop=True)
    with pytest.raises(DataError, match="index must be a DatetimeIndex"):
        validate(frame, "mine")


def test_validate_checks_adj_close_when_present():
    frame = read_csv_frame()
    frame["Adj Close"] = [1.0, 0.0, 2.0]
    with pytest.raises(DataError, match="non-positive Adj Close 0 at row 2"):
        validate(frame, "mine")


def read_csv_frame() -> pd.DataFrame:
    index = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"], name="Date")
    return pd.DataFrame(
        {
            "Open": [10, 10.5, 11],
            "High": [11, 12, 11.5],
            "Low": [9, 10, 10.2],
            "Close": [10.5, 11, 10.8],
            "Volume": [100, 200, 150],
        },
        index=index,
    ).astype(float)
