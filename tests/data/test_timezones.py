"""The time-zone rule of the data layer: CSV offsets (constant, changing with DST, invalid), the
DST fall-back, mixed-zone indexes, the zone of a panel, and the helpers the engine uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.cli import main
from tradenn.data.calendar import bar_seconds, bars_per_year
from tradenn.data.timezones import (
    bar_times,
    parse_timestamp_texts,
    same_zone,
    timestamp_text,
    wall_clock,
)
from tradenn.errors import DataError

NEW_YORK = "America/New_York"


@pytest.fixture(scope="module")
def spx_2017() -> pd.DataFrame:
    return data.load("SPX", start="2017-01-01", end="2017-12-31")


def _in_zone(frame: pd.DataFrame, zone: str) -> pd.DataFrame:
    out = frame.copy()
    out.index = out.index.tz_localize(zone)
    return out


def _around_the_clock(start_utc: str, periods: int, freq: str, zone: str) -> pd.DataFrame:
    """A 24/7 intraday frame (crypto-like) whose bars are stamped in ``zone``."""
    index = pd.date_range(start_utc, periods=periods, freq=freq, tz="UTC").tz_convert(zone)
    close = 100.0 + np.arange(periods)
    return pd.DataFrame(
        {"Open": close, "High": close + 1, "Low": close - 1, "Close": close, "Volume": 1.0},
        index=pd.DatetimeIndex(index, name="Date"),
    )


# ----------------------------------------------------------------------------- CSV offsets


def test_a_csv_written_from_a_new_york_index_loads_with_wall_clock_times(spx_2017, tmp_path):
    path = tmp_path / "ny.csv"
    _in_zone(spx_2017, NEW_YORK).to_csv(path)
    text = path.read_text()
    assert "-05:00" in text and "-04:00" in text  # the offset changes twice in 2017
    frame = data.load(path)
    assert frame.index.tz is None
    assert frame.index.equals(spx_2017.index)  # midnight wall-clock, not shifted to UTC
    pd.testing.assert_frame_equal(frame[list(data.OHLCV)], spx_2017[list(data.OHLCV)])


def test_a_csv_with_one_constant_offset_loads_with_wall_clock_times(tmp_path):
    frame = _around_the_clock("2017-07-03 13:30", 5, "h", "UTC-05:00")
    path = tmp_path / "fixed.csv"
    frame.to_csv(path)
    loaded = data.load(path)
    assert loaded.index.tz is None
    assert list(loaded.index.strftime("%H:%M")) == ["08:30", "09:30", "10:30", "11:30", "12:30"]


def test_values_with_and_without_an_offset_all_keep_their_wall_clock_time(write_csv):
    path = write_csv(
        "Date,Open,High,Low,Close\n"
        "2020-03-06 09:30,1,1,1,1\n"
        "2020-03-09 09:30-04:00,1,1,1,1\n"
        "2020-03-10 09:30Z,1,1,1,1\n"
    )
    with pytest.warns(
        UserWarning, match=r"offsets -04:00 \(line 3\) and Z \(line 4\) and some none"
    ):
        index = data.load(path).index
    assert list(index.strftime("%d %H:%M")) == ["06 09:30", "09 09:30", "10 09:30"]


def test_a_dst_fall_back_repeating_an_hour_is_an_error_naming_file_and_line(tmp_path):
    frame = _around_the_clock("2017-11-05 02:00", 8, "h", NEW_YORK)
    path = tmp_path / "hourly.csv"
    frame.to_csv(path)
    wall = wall_clock(frame.index)
    line = int(np.flatnonzero(wall.duplicated())[0]) + 2  # header is line 1
    with pytest.raises(DataError) as caught:
        data.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: duplicate timestamp at line {line} ")
    assert "daylight-saving fall-back" in message
    assert "\n" not in message


def test_a_dst_fall_back_that_goes_back_in_time_is_an_error_naming_the_line(tmp_path):
    frame = _around_the_clock("2017-11-05 04:00", 8, "30min", NEW_YORK)
    path = tmp_path / "half_hourly.csv"
    frame.to_csv(path)
    steps = np.diff(wall_clock(frame.index).asi8)
    line = int(np.flatnonzero(steps < 0)[0]) + 3  # the later row of the first backward step
    with pytest.raises(DataError, match=rf"timestamps out of order at line {line} "):
        data.load(path)


def test_an_invalid_utc_offset_is_an_error_naming_file_and_line(spx_2017, tmp_path):
    path = tmp_path / "bad.csv"
    _in_zone(spx_2017, NEW_YORK).to_csv(path)
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace("-05:00", "+25:00", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"^{path}: invalid UTC offset '\+25:00' .* at line 7$"):
        data.load(path)


def test_cli_data_validate_reads_a_new_york_csv(spx_2017, tmp_path, capsys):
    path = tmp_path / "ny.csv"
    _in_zone(spx_2017, NEW_YORK).to_csv(path)
    assert main(["data", "validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: OK, {len(spx_2017)} bars")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("-05:00", "+25:00", "invalid UTC offset '+25:00'"),
        ("-04:00", "-4:0x", "cannot read date"),
    ],
)
def test_cli_data_validate_on_bad_offsets_exits_2_naming_the_file(
    spx_2017, tmp_path, capsys, old, new, message
):
    path = tmp_path / "bad.csv"
    _in_zone(spx_2017, NEW_YORK).to_csv(path)
    text = path.read_text()
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :])
    assert main(["data", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tradenn: error: {path}: ") and message in err
    assert err.count("\n") == 1


# ------------------------------------------------------------------------ frames in memory


def test_validate_names_an_index_that_mixes_utc_offsets():
    frame = _around_the_clock("2017-11-05 04:00", 3, "h", NEW_YORK)
    # what pandas leaves of times parsed one by one: each with its own fixed offset
    frame.index = pd.Index([pd.Timestamp(t.isoformat()) for t in frame.index])
    assert not isinstance(frame.index, pd.DatetimeIndex)
    with pytest.raises(DataError, match=r"^feed: the index mixes time zones or UTC offsets"):
        data.validate(frame, "feed")


def test_a_tz_aware_frame_is_valid_and_loads_unchanged(spx_2017):
    frame = _in_zone(spx_2017, NEW_YORK)
    data.validate(frame, "ny")
    assert data.resample(frame, "W").index.tz == frame.index.tz


def test_align_converts_other_zones_to_the_first_assets_zone(spx_2017):
    ny = _in_zone(spx_2017, NEW_YORK)
    utc = ny.copy()
    utc.index = utc.index.tz_convert("UTC")  # the same bars, labelled in UTC
    panel = data.align({"A": ny, "B": utc})
    assert str(panel.index.tz) == NEW_YORK
    assert panel.index.equals(ny.index)  # same instants: every bar lines up, none is added
    np.testing.assert_array_equal(panel["Close", "B"].to_numpy(), ny["Close"].to_numpy())
    assert str(data.align({"B": utc, "A": ny}).index.tz) == "UTC"  # the first asset decides


def test_align_refuses_a_naive_frame_mixed_with_tz_aware_ones(spx_2017):
    with pytest.raises(DataError, match=r"^align: .*SPX has no time zone but NY is in"):
        data.align({"NY": _in_zone(spx_2017, NEW_YORK), "SPX": spx_2017})


# ------------------------------------------------------------------------------- helpers


def test_bar_times_keep_the_zone_and_give_nat_for_missing_bars():
    index = pd.date_range("2017-03-10", periods=4, freq="B", tz=NEW_YORK)
    times = bar_times(index, [0, None, 3, -1, 9])
    assert times.tz == index.tz
    assert times[0] == index[0] and times[2] == index[3]
    assert times[[1, 3, 4]].isna().all()


def test_wall_clock_durations_ignore_the_dst_jump():
    index = pd.DatetimeIndex(["2017-03-10", "2017-03-13"]).tz_localize(NEW_YORK)
    assert index[1] - index[0] == pd.Timedelta(days=3) - pd.Timedelta(hours=1)
    wall = wall_clock(index)
    assert wall[1] - wall[0] == pd.Timedelta(days=3)
    series = pd.Series(index)
    assert wall_clock(series).dt.tz is None


def test_timestamp_text_round_trips_a_named_zone_across_dst():
    index = pd.date_range("2017-03-09", periods=5, freq="D", tz=NEW_YORK)  # DST starts 03-12
    texts = [timestamp_text(t) for t in index]
    assert texts[0] == "2017-03-09T00:00:00-05:00[America/New_York]"
    assert texts[-1] == "2017-03-13T00:00:00-04:00[America/New_York]"
    back = parse_timestamp_texts(texts)
    assert back.equals(index) and str(back.tz) == NEW_YORK
    naive = pd.date_range("2017-03-09", periods=2, freq="D")
    assert parse_timestamp_texts([timestamp_text(t) for t in naive]).equals(naive)
    mixed = [t.isoformat() for t in index]  # offsets without the zone: the instants, in UTC
    assert parse_timestamp_texts(mixed).equals(index.tz_convert("UTC"))


def test_same_zone_leaves_naive_frames_alone(spx_2017):
    frames = {"A": spx_2017, "B": spx_2017}
    assert all(out is spx_2017 for out in same_zone(frames).values())


def test_bars_per_year_and_bar_spacing_are_the_same_with_a_zone():
    aware = pd.date_range("2017-01-01", "2017-07-01", freq="h", tz=NEW_YORK)  # 24/7, hourly
    naive = wall_clock(aware)  # skips 02:00 on 2017-03-12
    assert (aware[-1] - aware[0]) == (naive[-1] - naive[0]) - pd.Timedelta(hours=1)
    assert bars_per_year(aware) == bars_per_year(naive)
    assert bar_seconds(aware) == bar_seconds(naive) == 3600.0
