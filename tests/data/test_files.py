"""CSV auto-detection: date columns, date formats and column spellings seen in real exports."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from tradenn.data import load
from tradenn.data.files import read_csv

ROWS = "{d1},10,11,9,10.5,100\n{d2},10.5,12,10,11,200\n"


@pytest.mark.parametrize(
    ("d1", "d2", "expected"),
    [
        ("2004-08-19", "2004-08-20", ["2004-08-19", "2004-08-20"]),
        ("1/4/1999", "1/5/1999", ["1999-01-04", "1999-01-05"]),
        ("13/04/1999", "14/04/1999", ["1999-04-13", "1999-04-14"]),
        (
            "01.01.2017 22:00:00.000",
            "01.01.2017 23:00:00.000",
            ["2017-01-01 22:00", "2017-01-01 23:00"],
        ),
        (
            "2020-03-02 09:30:00-05:00",
            "2020-03-02 09:31:00-05:00",
            ["2020-03-02 09:30", "2020-03-02 09:31"],
        ),
        ("20200302", "20200303", ["2020-03-02", "2020-03-03"]),
    ],
)
def test_common_date_formats_are_detected(write_csv, d1, d2, expected):
    path = write_csv("Date,Open,High,Low,Close,Volume\n" + ROWS.format(d1=d1, d2=d2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = read_csv(path).index
    assert list(index) == [pd.Timestamp(e) for e in expected]
    # 1/4/1999, 1/5/1999 read day-first too (a month apart): the one ambiguity, said in a warning
    assert [str(w.message).split(":")[1].split("(")[0] for w in caught] == (
        [" dates like '1/5/1999' read month-first "] if d1 == "1/4/1999" else []
    )


def test_column_names_match_case_insensitively_and_by_alias(write_csv):
    path = write_csv(
        "timestamp, open, HIGH, low, Last, adj_close, vol\n"
        + ROWS.replace("10.5,100", "10.5,10.4,100")
        .replace("11,200", "11,10.9,200")
        .format(d1="2020-01-02", d2="2020-01-03")
    )
    frame = read_csv(path)
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert frame["Adj Close"].tolist() == [10.4, 10.9]


def test_date_column_is_the_first_column_when_unnamed(write_csv):
    path = write_csv(
        ",Open,High,Low,Close,Volume\n" + ROWS.format(d1="2020-01-02", d2="2020-01-03")
    )
    assert read_csv(path).index[0] == pd.Timestamp("2020-01-02")


def test_a_file_without_volume_gets_zero_volume(write_csv):
    path = write_csv("Date,Open,High,Low,Close\n2020-01-02,1.1,1.2,1.0,1.15\n")
    assert read_csv(path)["Volume"].tolist() == [0.0]


def test_load_reads_a_csv_path_and_slices_inclusive_dates(write_csv):
    path = write_csv(
        "Date,Open,High,Low,Close,Volume\n" + ROWS.format(d1="2020-01-02", d2="2020-01-03")
    )
    assert len(load(str(path), start="2020-01-03")) == 1
    assert len(load(path, end="2020-01-02")) == 1


def test_a_dataframe_is_accepted_as_the_csv_reader_accepts_a_file(write_csv):
    from tradenn.backtest import Backtest, PortfolioBacktest
    from tradenn.data import price_frame
    from tradenn.rl import MarketEnv

    spx = load("SPX").iloc[:300]
    loose = spx.drop(columns="Volume").rename(columns=str.lower).reset_index()  # date column
    loose = loose.rename(columns={"close": "Last", "Date": "date"})
    frame = price_frame(loose, "loose")
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert (frame["Volume"] == 0).all() and frame.index.equals(spx.index.rename("Date"))
    assert price_frame(spx) is spx  # a frame that keeps the contract is used as it is

    from strategies.sma_cross import SmaCross

    strict = Backtest(spx.assign(Volume=0.0), SmaCross).run()
    relaxed = Backtest(loose, SmaCross).run()
    pd.testing.assert_series_equal(relaxed.stats, strict.stats)
    equal = _equal_weight_strategy()
    both = PortfolioBacktest({"A": loose, "B": spx}, equal).run()
    pd.testing.assert_series_equal(
        both.stats, PortfolioBacktest({"A": spx, "B": spx}, equal).run().stats
    )
    assert MarketEnv(loose, window=5).reset(seed=0)[0] is not None


def test_a_dataframe_with_a_doubled_column_or_unreadable_dates_is_one_line():
    from tradenn.data import DataError, price_frame

    spx = load("SPX").iloc[:5]
    with pytest.raises(DataError, match=r"^frame: column 'Close' appears more than once$"):
        price_frame(spx.assign(close=1.0), "frame")
    dated = spx.reset_index().assign(Date=["2020-01-01", "soon", "x", "y", "z"])
    with pytest.raises(DataError, match=r"^frame: cannot read the dates in column 'Date'"):
        price_frame(dated, "frame")


def _equal_weight_strategy():
    from tradenn.backtest import PortfolioStrategy

    class EqualWeight(PortfolioStrategy):
        def weights(self, panel):
            assets = panel.columns.get_level_values("asset").unique()
            return pd.DataFrame(1.0 / len(assets), index=panel.index, columns=assets)

    return EqualWeight
