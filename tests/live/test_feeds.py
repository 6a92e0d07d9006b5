"""Feeds for paper trading, against fake sources, clocks and sleepers (no network, no waiting)."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pandas as pd
import pytest
import yfinance

from tradenn.data import DataError, download, gbm
from tradenn.data import load as load_data
from tradenn.live.feeds import Bar, FeedError, ReplayFeed, YahooFeed, open_feed

from .support import MINUTE, T0, bar_rows

# ---------------------------------------------------------------- replay


@pytest.fixture
def prices() -> pd.DataFrame:
    return gbm(12, seed=1)


def test_replay_yields_every_bar_in_order_and_ends(prices):
    bars = list(ReplayFeed(prices).bars(None, threading.Event()))
    assert all(isinstance(b, Bar) and isinstance(b.time, pd.Timestamp) for b in bars)
    assert [tuple(b) for b in bars] == bar_rows(prices)


def test_replay_starts_strictly_after_the_given_time(prices):
    after = prices.index[4]
    bars = list(ReplayFeed(prices).bars(after, threading.Event()))
    assert [tuple(b) for b in bars] == bar_rows(prices.iloc[5:])


@pytest.mark.parametrize(
    ("after", "expected"), [("1990-01-01", 12), ("2030-01-01", 0), ("2000-01-05 12:00", 9)]
)
def test_replay_after_before_between_and_beyond_the_data(prices, after, expected):
    bars = list(ReplayFeed(prices).bars(pd.Timestamp(after), threading.Event()))
    assert len(bars) == expected and all(b.time > pd.Timestamp(after) for b in bars)


def test_replay_paces_bars_through_the_sleeper():
    waits = []
    feed = ReplayFeed(gbm(5, seed=0), speed=4.0, sleep=lambda s, stop: waits.append(s))
    assert len(list(feed.bars(None, threading.Event()))) == 5
    assert waits == [0.25] * 4  # between bars, not before the first


def test_a_stop_set_mid_replay_ends_it_before_the_next_bar(prices):
    stop = threading.Event()
    got = []
    for bar in ReplayFeed(prices, speed=1000.0).bars(None, stop):
        got.append(bar)
        if len(got) == 3:
            stop.set()
    assert len(got) == 3


def test_a_stop_set_during_a_long_replay_pause_ends_it_promptly(prices):
    stop = threading.Event()
    got, done = [], threading.Event()

    def consume():
        for bar in ReplayFeed(prices, speed=1e-4).bars(None, stop):  # 10,000 s between bars
            got.append(bar)
        done.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    threading.Timer(0.05, stop.set).start()
    assert done.wait(30), "the replay did not notice the stop event while pausing"
    assert len(got) == 1


def test_open_feed_replays_bundled_and_csv_sources(write_csv):
    feed = open_feed("replay:SPX")
    assert feed.name == "replay:SPX" and feed.speed == 0.0
    assert len(list(feed.bars(None, threading.Event()))) == len(load_data("SPX"))
    path = write_csv(
        """
Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10.5,100
2024-01-03,10.5,12,10,11.5,200
"""
    )
    bars = list(open_feed(f"replay:{path}").bars(pd.Timestamp("2024-01-02"), threading.Event()))
    assert [tuple(b) for b in bars] == [(pd.Timestamp("2024-01-03"), 10.5, 12, 10, 11.5, 200)]


def test_replay_of_a_yahoo_source_reads_the_cache_however_old(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADENN_CACHE_DIR", str(tmp_path))
    frame = gbm(6, seed=2)
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: frame)
    download("SPY")
    meta = tmp_path / "yf" / "SPY_1d.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "fetched_at": "2000-01-01T00:00"}))
    calls = []
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: calls.append(a) or frame.iloc[:0])
    bars = list(open_feed("replay:yf:SPY").bars(None, threading.Event()))
    assert calls == [] and len(bars) == 6


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("SPX", FeedError, "unknown feed 'SPX'"),
        ("ws:SPY", FeedError, "unknown feed 'ws:SPY'"),
        ("replay:", FeedError, "names no source"),
        ("yf:  ", FeedError, "names no source"),
        ("replay:NO_SUCH_DATA", DataError, "unknown data source"),
    ],
)
def test_bad_specs_are_one_line_tradenn_errors(spec, error, message):
    with pytest.raises(error, match=message) as caught:
        open_feed(spec)
    assert "\n" not in str(caught.value)


def test_open_feed_rejects_options_that_do_not_apply():
    with pytest.raises(FeedError, match="speed applies to replay feeds only"):
        open_feed("yf:SPY", speed=2.0)
    with pytest.raises(FeedError, match="takes no option poll_seconds"):
        open_feed("replay:SPX", poll_seconds=5)
    with pytest.raises(
        FeedError, match=r"speed \(bars per second\) must be a finite number >= 0, got -1"
    ):
        open_feed("replay:SPX", speed=-1)


def test_replay_refuses_to_compare_naive_bars_with_an_aware_time(prices):
    with pytest.raises(FeedError, match="both have a time zone or both not"):
        next(ReplayFeed(prices).bars(pd.Timestamp("2000-01-05", tz="UTC"), threading.Event()))


# ---------------------------------------------------------------- yahoo


class FakeClock:
    """A clock that only moves when the feed sleeps; records every wait."""

    def __init__(self, start: pd.Timestamp, limit: int = 2000):
        self.time, self.waits, self.limit = start, [], limit
        self.on_sleep = None

    def now(self) -> pd.Timestamp:
        return self.time

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        assert len(self.waits) < self.limit, "the feed kept sleeping: runaway loop"
        self.time += pd.Timedelta(seconds=seconds)
        if self.on_sleep is not None:
            self.on_sleep(self, stop)


class FakeMarket:
    """One-minute bars from T0 up to the clock's current minute (the last one still forming).

    ``outages`` holds call numbers (from 1) that raise ConnectionError, ``empty`` those that
    return an empty frame; while ``frozen_at`` is set, no bar after it is served (a stall).
    """

    def __init__(self, clock: FakeClock, outages=(), empty=()):
        self.clock, self.outages, self.empty = clock, set(outages), set(empty)
        self.frozen_at = None
        self.calls = []

    def price(self, times: pd.DatetimeIndex) -> np.ndarray:
        return 100 + (times - T0) / MINUTE

    def __call__(self, ticker, start, interval):
        self.calls.append((ticker, start, interval))
        if len(self.calls) in self.outages:
            raise ConnectionError("connection refused")
        if len(self.calls) in self.empty:
            return pd.DataFrame()
        last = self.clock.time.floor("min")
        if self.frozen_at is not None:
            last = min(last, self.frozen_at)
        times = pd.date_range(max(T0, start or T0), last, freq="min", name="Date")
        close = self.price(times)
        return pd.DataFrame(
            {"Open": close, "High": close + 1, "Low": close - 1, "Close": close, "Volume": 10.0},
            index=times,
        )


def _feed(clock: FakeClock, market: FakeMarket, **options) -> YahooFeed:
    options = {"poll_seconds": 20, "backoff": 2, "max_backoff": 60, **options}
    return YahooFeed("SPY", "1m", fetch=market, now=clock.now, sleep=clock.sleep, **options)


def _take(feed: YahooFeed, count: int, after=None, clock: FakeClock | None = None):
    """The first ``count`` bars, each with the clock's time when it was yielded."""
    stop, got = threading.Event(), []
    for bar in feed.bars(after, stop):
        got.append((bar, None if clock is None else clock.time))
        if len(got) == count:
            stop.set()
    return got


def test_yahoo_feed_never_yields_the_forming_bar():
    clock = FakeClock(T0 + pd.Timedelta(minutes=5, seconds=30))
    got = _take(_feed(clock, FakeMarket(clock)), 12, clock=clock)
    assert all(bar.time + MINUTE <= seen_at for bar, seen_at in got)
    # the first poll serves 6 bars, 09:35 still forming: only 5 come out before the clock moves
    assert got[4][1] == got[0][1] and got[5][1] > got[0][1]


def test_yahoo_feed_yields_each_completed_bar_once_in_order():
    clock = FakeClock(T0 + pd.Timedelta(minutes=2, seconds=5))
    market = FakeMarket(clock)
    bars = [bar for bar, _ in _take(_feed(clock, market), 30, clock=clock)]
    times = [bar.time for bar in bars]
    assert times == list(pd.date_range(T0, periods=30, freq="min"))
    assert [bar.close for bar in bars] == list(market.price(pd.DatetimeIndex(times)))
    assert len(market.calls) > 30  # bars came over many polls, each overlapping the last


def test_yahoo_feed_starts_strictly_after_the_given_time():
    clock = FakeClock(T0 + pd.Timedelta(minutes=10, seconds=1))
    market = FakeMarket(clock)
    after = T0 + pd.Timedelta(minutes=6)
    got = _take(_feed(clock, market), 3, after=after)
    assert [bar.time for bar, _ in got] == list(
        pd.date_range(after + MINUTE, periods=3, freq="min")
    )
    assert market.calls[0] == ("SPY", after, "1m")


def test_a_time_zone_aware_after_is_read_in_the_exchange_time_zone():
    clock = FakeClock(T0 + pd.Timedelta(minutes=10, seconds=1))
    after = (T0 + pd.Timedelta(minutes=6)).tz_localize("America/New_York").tz_convert("UTC")
    got = _take(_feed(clock, FakeMarket(clock)), 1, after=after)
    assert got[0][0].time == T0 + pd.Timedelta(minutes=7)


def test_network_errors_are_warned_and_retried_with_growing_delays(caplog):
    clock = FakeClock(T0 + pd.Timedelta(minutes=3, seconds=1))
    market = FakeMarket(clock, outages=range(1, 5), empty={5})
    with caplog.at_level(logging.WARNING, logger="tradenn.live"):
        got = _take(_feed(clock, market, backoff=2, max_backoff=60), 3)
    assert [bar.time for bar, _ in got] == list(pd.date_range(T0, periods=3, freq="min"))
    assert clock.waits[:5] == [2, 4, 8, 16, 32]
    messages = [r.getMessage() for r in caplog.records if r.name == "tradenn.live"]
    assert sum("network down? retrying in" in m for m in messages) == 5
    assert "ConnectionError: connection refused" in messages[0] and "retrying in 2s" in messages[0]
    assert "no bars came back" in messages[4]


def test_backoff_doubles_up_to_its_cap():
    clock = FakeClock(T0 + pd.Timedelta(minutes=3, seconds=1))
    market = FakeMarket(clock, outages=range(1, 8))
    _take(_feed(clock, market, backoff=1.5, max_backoff=10), 1)
    expected = [min(1.5 * 2**k, 10) for k in range(7)]
    assert clock.waits[:7] == expected and clock.waits[4:7] == [10, 10, 10]


def test_a_stop_during_backoff_ends_the_feed_without_another_poll():
    clock = FakeClock(T0)
    market = FakeMarket(clock, outages=range(1, 100))
    clock.on_sleep = lambda c, stop: len(c.waits) == 3 and stop.set()
    assert list(_feed(clock, market).bars(None, threading.Event())) == []
    assert len(market.calls) == 3 and clock.waits == [2, 4, 8]


def test_a_stop_during_a_real_backoff_wait_ends_the_feed_promptly():
    stop, done = threading.Event(), threading.Event()

    def always_down(ticker, start, interval):
        raise ConnectionError("offline")

    feed = YahooFeed("SPY", "1m", fetch=always_down, backoff=3600, max_backoff=3600)

    def consume():
        list(feed.bars(None, stop))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    threading.Timer(0.05, stop.set).start()
    assert done.wait(30), "the feed did not notice the stop event during its backoff wait"


def test_retries_bounds_the_failed_polls_in_a_row():
    clock = FakeClock(T0)
    market = FakeMarket(clock, outages=range(1, 100))
    with pytest.raises(
        FeedError, match=r"yf:SPY: giving up after 3 failed polls .*ConnectionError"
    ):
        list(_feed(clock, market, retries=2).bars(None, threading.Event()))
    assert clock.waits == [2, 4]


def test_a_stall_warns_once_then_new_bars_flow_exactly_once(caplog):
    clock = FakeClock(T0 + pd.Timedelta(minutes=4, seconds=1))
    market = FakeMarket(clock)
    market.frozen_at = T0 + pd.Timedelta(minutes=4)  # serves 09:30..09:34, 09:34 forming

    def thaw(c, stop):
        if c.time >= T0 + pd.Timedelta(minutes=40):
            market.frozen_at = None

    clock.on_sleep = thaw
    feed = _feed(clock, market, poll_seconds=30, stale_after=600)
    with caplog.at_level(logging.WARNING, logger="tradenn.live"):
        got = _take(feed, 12, clock=clock)
    stale = [r for r in caplog.records if "no new completed 1m bar" in r.getMessage()]
    assert len(stale) == 1 and stale[0].levelno == logging.WARNING
    assert "last bar: 2024-03-04 09:34:00" in stale[0].getMessage()
    times = [bar.time for bar, _ in got]
    assert times == list(pd.date_range(T0, periods=12, freq="min"))
    assert all(seen_at >= T0 + pd.Timedelta(minutes=40) for _, seen_at in got[5:])


def test_each_stale_spell_gets_its_own_warning(caplog):
    clock = FakeClock(T0 + pd.Timedelta(minutes=1, seconds=1))
    market = FakeMarket(clock)

    def script(c, stop):  # stalls 09:31-09:50 and 10:30-11:00; bars flow in between and after
        minutes = (c.time - T0) / MINUTE
        if minutes < 20:
            market.frozen_at = T0 + MINUTE
        elif 60 <= minutes < 90:
            market.frozen_at = T0 + 60 * MINUTE
        else:
            market.frozen_at = None

    clock.on_sleep = script
    script(clock, None)
    feed = _feed(clock, market, poll_seconds=30, stale_after=600)
    with caplog.at_level(logging.WARNING, logger="tradenn.live"):
        got = _take(feed, 70)
    assert [bar.time for bar, _ in got] == list(pd.date_range(T0, periods=70, freq="min"))
    stale = [r for r in caplog.records if "no new completed 1m bar" in r.getMessage()]
    assert len(stale) == 2


def test_the_default_fetch_goes_through_tradenn_data_yahoo(monkeypatch):
    days = pd.bdate_range("2024-01-01", periods=5, name="Date")
    close = np.linspace(100, 104, 5)
    raw = pd.DataFrame(
        {"Close": close, "High": close + 1, "Low": close - 1, "Open": close, "Volume": 1e6},
        index=days,
    )
    calls = []
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: calls.append((a, k)) or raw)
    clock = FakeClock(pd.Timestamp("2024-01-05 15:00"))  # Friday's bar is still forming
    got = _take(YahooFeed("SPY", "1d", now=clock.now, sleep=clock.sleep), 4)
    assert [bar.time for bar, _ in got] == list(days[:4])
    assert calls[0][0] == ("SPY",) and calls[0][1]["interval"] == "1d"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": "1mo"}, "interval must be one of 1m, 2m"),
        ({"poll_seconds": 0}, "poll_seconds must be a finite number > 0, got 0"),
        ({"backoff": 10, "max_backoff": 5}, r"max_backoff \(5\) must be at least backoff"),
        ({"retries": -1}, "retries must be a non-negative integer or None, got -1"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_yahoo_feed_arguments_are_one_line_errors(options, message):
    with pytest.raises(FeedError, match=message):
        YahooFeed("SPY", **options)


def test_intervals_set_poll_and_stale_defaults():
    minute, day = YahooFeed("SPY", "1m"), YahooFeed("SPY", "1d")
    assert minute.poll_seconds == 15 and day.poll_seconds == 300
    assert minute.stale_after == pd.Timedelta(minutes=15) and day.stale_after == pd.Timedelta(
        days=4
    )
    assert open_feed("yf:EURUSD=X", interval="1h").name == "yf:EURUSD=X"
