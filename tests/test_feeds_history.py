"""Feed.history(n): the bars a paper run warms up on (``--warmup N``), against fake sources and
clocks; yfinance is replaced by a fake downloader (no network)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yfinance

from tradenn.data import OHLCV, gbm
from tradenn.data import load as load_data
from tradenn.live.feeds import Feed, FeedError, ReplayFeed, YahooFeed, open_feed

from .live.support import MINUTE, T0, bar_rows


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- replay


@pytest.fixture
def prices() -> pd.DataFrame:
    """Twelve bars with an extra column and an integer volume, which history leaves out/casts."""
    frame = gbm(12, seed=1)
    frame["Adj Close"] = frame["Close"] * 0.9
    frame["Volume"] = np.arange(100, 112)
    return frame


def test_replay_history_is_the_first_n_rows_and_bars_after_it_are_the_rest(prices):
    feed = ReplayFeed(prices)
    history = feed.history(5)
    expected = prices[list(OHLCV)].iloc[:5].astype("float64")
    pd.testing.assert_frame_equal(history, expected)
    assert list(history.columns) == list(OHLCV)
    assert (history.dtypes == "float64").all()
    rest = list(feed.bars(history.index[-1], threading.Event()))
    assert [tuple(b) for b in rest] == bar_rows(prices.iloc[5:])
    # history changed nothing: from the start, bars() still replays every bar
    assert [tuple(b) for b in feed.bars(None, threading.Event())] == bar_rows(prices)


def test_replay_history_of_a_bundled_source_within_a_span():
    spx = load_data("SPX", "2015-01-01", "2015-12-31")
    feed = open_feed("replay:SPX", start="2015-01-01", end="2015-12-31")
    history = feed.history(20)
    pd.testing.assert_frame_equal(history, spx[list(OHLCV)].iloc[:20])
    rest = list(feed.bars(history.index[-1], threading.Event()))
    assert [b.time for b in rest] == list(spx.index[20:])


@pytest.mark.parametrize("n", [12, 13, 500])
def test_replay_history_that_leaves_no_bar_to_trade_is_a_one_line_error(prices, n):
    with pytest.raises(FeedError) as caught:
        ReplayFeed(prices).history(n)
    assert _one_line(caught) == f"replay:frame has 12 bars; --warmup {n} leaves none to trade"


def test_replay_history_may_leave_a_single_bar_to_trade(prices):
    feed = ReplayFeed(prices)
    history = feed.history(11)
    assert len(history) == 11
    assert [b.time for b in feed.bars(history.index[-1], threading.Event())] == [prices.index[-1]]


def test_the_error_names_the_replayed_source():
    bars = len(load_data("SPX", "2018-01-01", "2018-03-31"))
    feed = open_feed("replay:SPX", start="2018-01-01", end="2018-03-31")
    with pytest.raises(FeedError) as caught:
        feed.history(bars)
    assert _one_line(caught) == f"replay:SPX has {bars} bars; --warmup {bars} leaves none to trade"


# ---------------------------------------------------------------- yahoo


class Clock:
    """A fake exchange-local clock that only moves when told to."""

    def __init__(self, time: pd.Timestamp):
        self.time = time

    def now(self) -> pd.Timestamp:
        return self.time


class FakeYahoo:
    """Stands in for `yfinance.download`: bars from T0 up to the clock's current bar, shaped as
    yfinance (>= 0.2.48) returns them; the last one is still forming, with ``forming_close``
    as its close so far. Records every call; ``error`` makes a call raise it."""

    def __init__(self, clock: Clock, interval: str = "1m"):
        self.clock, self.interval = clock, interval
        self.forming_close = 999.0
        self.error: Exception | None = None
        self.calls: list[tuple] = []

    def close(self, times: pd.DatetimeIndex) -> np.ndarray:
        return 100 + np.arange(len(times), dtype=float)

    def __call__(self, ticker, **kwargs):
        self.calls.append((ticker, kwargs))
        if self.error is not None:
            raise self.error
        if self.interval == "1d":
            times = pd.bdate_range(T0.normalize(), self.clock.time.normalize(), name="Date")
        else:
            times = pd.date_range(T0, self.clock.time.floor("min"), freq="min", name="Date")
        close = self.close(times)
        close[-1] = self.forming_close
        prices = {
            "Close": close,
            "High": close + 1,
            "Low": close - 1,
            "Open": close - 0.5,
            "Volume": np.full(len(times), 1000.0),
        }
        columns = pd.MultiIndex.from_tuples(
            [(p, ticker) for p in prices], names=["Price", "Ticker"]
        )
        return pd.DataFrame(np.column_stack(list(prices.values())), index=times, columns=columns)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADENN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "yf"


def _yahoo(monkeypatch, time: pd.Timestamp, interval: str = "1m", **options):
    clock = Clock(time)
    fake = FakeYahoo(clock, interval)
    monkeypatch.setattr(yfinance, "download", fake)

    def no_polling(ticker, start, interval):
        raise AssertionError("history must load through tradenn.data, not the poll fetcher")

    feed = YahooFeed("SPY", interval, now=clock.now, fetch=no_polling, **options)
    return feed, clock, fake


def _backdate(cache_folder, stem: str, age: timedelta) -> None:
    """Make the cached copy look fetched ``age`` ago (by the machine's clock, as tradenn.data)."""
    meta = cache_folder / f"{stem}.json"
    fetched_at = (datetime.now() - age).isoformat(timespec="seconds")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "fetched_at": fetched_at}))


def test_yahoo_history_is_the_last_n_completed_bars_never_the_forming_one(cache, monkeypatch):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    history = feed.history(4)  # served 09:30 .. 09:40, 09:40 still forming
    times = pd.date_range(T0 + 6 * MINUTE, periods=4, freq="min")
    close = 106 + np.arange(4, dtype=float)
    expected = pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close, "Volume": 1e3},
        index=pd.DatetimeIndex(times, name="Date"),
    )
    pd.testing.assert_frame_equal(history, expected, check_freq=False)
    assert len(fake.calls) == 1 and fake.calls[0][0] == "SPY"
    assert fake.calls[0][1]["interval"] == "1m" and fake.calls[0][1]["auto_adjust"] is True
    assert (cache / "SPY_1m.csv").is_file()  # downloaded into the cache
    all_completed = feed.history(10)
    assert list(all_completed.index) == list(pd.date_range(T0, periods=10, freq="min"))
    assert 999.0 not in all_completed["Close"].to_numpy()


def test_a_second_history_call_reads_the_cache(cache, monkeypatch):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    first = feed.history(5)
    fake.error = ConnectionError("the cache should have served this")
    second = feed.history(5)
    assert len(fake.calls) == 1
    pd.testing.assert_frame_equal(first, second, check_freq=False)


def test_a_cached_bar_that_was_still_forming_is_fetched_again(cache, monkeypatch):
    feed, clock, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    feed.history(3)  # caches 09:40 with its close so far (999)
    clock.time = T0 + 11 * MINUTE + pd.Timedelta(seconds=10)  # 40 s later 09:40 has closed
    _backdate(cache, "SPY_1m", timedelta(seconds=40))
    fake.forming_close = 555.0  # now the forming bar is 09:41; 09:40 has its final close, 110
    history = feed.history(3)
    assert len(fake.calls) == 2
    assert list(history.index) == list(pd.date_range(T0 + 8 * MINUTE, periods=3, freq="min"))
    assert list(history["Close"]) == [108.0, 109.0, 110.0]


@pytest.mark.parametrize(("fetched_hours_ago", "downloads"), [(14, 1), (16, 2)])
def test_daily_history_uses_a_cache_fetched_today_only(
    cache, monkeypatch, fetched_hours_ago, downloads
):
    friday_3pm = pd.Timestamp("2024-03-08 15:00")  # Friday's bar is still forming
    feed, _, fake = _yahoo(monkeypatch, friday_3pm, "1d")
    history = feed.history(4)
    assert list(history.index) == list(pd.bdate_range("2024-03-04", periods=4))  # Mon .. Thu
    _backdate(cache, "SPY_1d", timedelta(hours=fetched_hours_ago))  # today from 00:00 is 15 h
    assert feed.history(4).equals(history)
    assert len(fake.calls) == downloads


def test_history_then_bars_continue_strictly_after_its_last_bar(cache, monkeypatch):
    feed, clock, _ = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    history = feed.history(10)
    served = []

    def market(ticker, start, interval):
        served.append(start)
        times = pd.date_range(T0, clock.time.floor("min"), freq="min", name="Date")
        return pd.DataFrame(
            {"Open": 100.0, "High": 101.0, "Low": 99.0, "Close": 100.0, "Volume": 1.0},
            index=times,
        )

    stop = threading.Event()

    def sleep(seconds, stop):
        clock.time += pd.Timedelta(seconds=seconds)

    live = YahooFeed("SPY", "1m", now=clock.now, fetch=market, sleep=sleep, poll_seconds=20)
    got = []
    for bar in live.bars(history.index[-1], stop):
        got.append(bar.time)
        if len(got) == 3:
            stop.set()
    assert served[0] == history.index[-1]
    assert got == list(pd.date_range(T0 + 10 * MINUTE, periods=3, freq="min"))


def test_too_few_completed_bars_is_a_one_line_error(cache, monkeypatch):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    with pytest.raises(FeedError) as caught:
        feed.history(11)  # 11 bars served, the last one forming
    assert _one_line(caught) == "yf:SPY has 10 completed 1m bars, fewer than --warmup 11"
    assert len(fake.calls) == 1


def test_a_failed_download_with_nothing_cached_is_a_one_line_error(cache, monkeypatch):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    fake.error = ConnectionError("no route to host\n(errno 113)")
    with pytest.raises(FeedError) as caught:
        feed.history(3)
    message = _one_line(caught)
    assert message.startswith("yf:SPY: cannot load 3 bars of history (yf:SPY: download failed")
    assert "ConnectionError: no route to host (errno 113)" in message
    assert "nothing cached" in message


def test_an_empty_answer_from_yahoo_is_a_one_line_error(cache, monkeypatch):
    feed, _, _ = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    with pytest.raises(FeedError, match=r"^yf:SPY: cannot load 3 bars .*returned no data"):
        feed.history(3)


def test_a_failed_refresh_does_not_fall_back_to_an_outdated_cache(cache, monkeypatch, recwarn):
    feed, clock, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    feed.history(3)
    clock.time += 2 * MINUTE
    _backdate(cache, "SPY_1m", timedelta(minutes=2))
    fake.error = ConnectionError("offline")
    with pytest.raises(FeedError) as caught:
        feed.history(3)
    message = _one_line(caught)
    assert message.startswith("yf:SPY: cannot load 3 bars of history (yf:SPY: download failed")
    assert message.endswith("the cached copy is older than the last bar)")
    assert len(fake.calls) == 2 and len(recwarn) == 0


def test_history_uses_the_cache_folder_given_to_the_feed(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADENN_CACHE_DIR", str(tmp_path / "elsewhere"))
    folder = tmp_path / "mine"
    feed, _, _ = _yahoo(monkeypatch, T0 + 5 * MINUTE + pd.Timedelta(seconds=1), cache=folder)
    assert len(feed.history(2)) == 2
    assert (folder / "yf" / "SPY_1m.csv").is_file()
    assert not (tmp_path / "elsewhere").exists()
    assert open_feed("yf:SPY", interval="1m", cache=folder).cache == folder


def test_a_set_stop_loads_nothing_and_gives_an_empty_frame(cache, monkeypatch, prices):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    stop = threading.Event()
    stop.set()
    for history in (feed.history(3, stop), ReplayFeed(prices).history(3, stop)):
        assert history.empty and list(history.columns) == list(OHLCV)
        assert (history.dtypes == "float64").all()
    assert fake.calls == []


# ---------------------------------------------------------------- n, and feeds without history


@pytest.mark.parametrize("n", [0, -3, True, False, 2.5, "3", None])
def test_a_bad_n_is_refused_before_loading_anything(cache, monkeypatch, prices, n):
    feed, _, fake = _yahoo(monkeypatch, T0 + 10 * MINUTE + pd.Timedelta(seconds=30))
    for each in (ReplayFeed(prices), feed):
        with pytest.raises(FeedError) as caught:
            each.history(n)
        assert _one_line(caught) == f"--warmup must be a positive integer, got {n!r}"
    assert fake.calls == []


def test_a_numpy_integer_n_is_accepted(prices):
    assert len(ReplayFeed(prices).history(np.int64(4))) == 4


def test_a_feed_without_history_says_so_in_one_line():
    class Ticks(Feed):
        name = "ticks:X"

    with pytest.raises(FeedError) as caught:
        Ticks().history(5)
    assert _one_line(caught) == "ticks:X: this feed has no history to warm up on"
