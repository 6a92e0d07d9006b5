"""yfinance path against a fake downloader shaped like yfinance's real output (no network)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import yfinance

from tradenn.data import DataError, download, load


def _yahoo_frame(ticker: str, start: str, periods: int, *, tz: str | None = None) -> pd.DataFrame:
    """A frame as `yfinance.download` returns it for one ticker (>= 0.2.48): columns labelled
    (Price, Ticker), alphabetical price order, index named Date."""
    index = pd.bdate_range(start, periods=periods, name="Date", tz=tz)
    close = 100 + np.arange(periods, dtype=float)
    prices = {
        "Close": close,
        "High": close + 1,
        "Low": close - 1,
        "Open": close - 0.5,
        "Volume": np.full(periods, 1000.0),
    }
    columns = pd.MultiIndex.from_tuples([(p, ticker) for p in prices], names=["Price", "Ticker"])
    return pd.DataFrame(np.column_stack(list(prices.values())), index=index, columns=columns)


class FakeYahoo:
    """Stands in for `yfinance.download`; records every call."""

    def __init__(self, frame: pd.DataFrame | None = None, error: Exception | None = None):
        self.frame, self.error, self.calls = frame, error, []

    def __call__(self, ticker, **kwargs):
        self.calls.append((ticker, kwargs))
        if self.error is not None:
            raise self.error
        return self.frame if self.frame is not None else pd.DataFrame()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADENN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "yf"


def test_download_asks_for_adjusted_full_history_and_writes_the_cache(cache, monkeypatch):
    fake = FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 10))
    monkeypatch.setattr(yfinance, "download", fake)
    frame, path = download("SPY")
    ticker, kwargs = fake.calls[0]
    assert ticker == "SPY" and kwargs["period"] == "max" and kwargs["auto_adjust"] is True
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert path == cache / "SPY_1d.csv" and path.is_file()
    assert json.loads((cache / "SPY_1d.json").read_text())["start"] is None


def test_load_serves_a_fresh_cache_without_downloading(cache, monkeypatch):
    monkeypatch.setattr(yfinance, "download", FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 10)))
    download("SPY")
    offline = FakeYahoo(error=ConnectionError("no route to host"))
    monkeypatch.setattr(yfinance, "download", offline)
    frame = load("yf:SPY", start="2024-01-03")
    assert offline.calls == [] and frame.index[0] == pd.Timestamp("2024-01-03")


def test_a_stale_cache_is_refreshed_and_new_bars_are_merged(cache, monkeypatch):
    monkeypatch.setattr(yfinance, "download", FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 5)))
    download("SPY")
    old = time.time() - 2 * 86400
    os.utime(cache / "SPY_1d.json", (old, old))
    meta = json.loads((cache / "SPY_1d.json").read_text())
    meta["fetched_at"] = "2000-01-01T00:00:00"
    (cache / "SPY_1d.json").write_text(json.dumps(meta))
    monkeypatch.setattr(yfinance, "download", FakeYahoo(_yahoo_frame("SPY", "2024-01-03", 5)))
    frame = load("yf:SPY")
    assert len(frame) == 7 and frame.index.is_monotonic_increasing


def test_offline_with_a_stale_cache_warns_and_uses_it(cache, monkeypatch):
    monkeypatch.setattr(yfinance, "download", FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 5)))
    download("SPY")
    monkeypatch.setattr(yfinance, "download", FakeYahoo(error=ConnectionError("offline")))
    with pytest.warns(UserWarning, match="using the cached copy"):
        frame = load("yf:SPY", max_age=pd.Timedelta(0))
    assert len(frame) == 5


def test_offline_with_nothing_cached_is_a_clear_error(cache, monkeypatch):
    monkeypatch.setattr(yfinance, "download", FakeYahoo())  # yfinance returns an empty frame
    with pytest.raises(
        DataError, match=r"yf:ZZZZ: Yahoo Finance returned no data .*nothing cached"
    ):
        load("yf:ZZZZ")


def test_intraday_bars_drop_the_timezone_and_request_a_start(cache, monkeypatch):
    fake = FakeYahoo(_yahoo_frame("EURUSD=X", "2024-01-01", 3, tz="Europe/London"))
    monkeypatch.setattr(yfinance, "download", fake)
    frame, path = download("EURUSD=X", interval="1h")
    assert frame.index.tz is None and "start" in fake.calls[0][1]
    assert path.name == "EURUSD%3DX_1h.csv"


def test_a_trailing_bar_in_progress_with_nan_prices_is_dropped(cache, monkeypatch):
    raw = _yahoo_frame("SPY", "2024-01-01", 4)
    raw.iloc[-1, :4] = np.nan
    monkeypatch.setattr(yfinance, "download", FakeYahoo(raw))
    frame, _ = download("SPY")
    assert len(frame) == 3


def test_an_explicit_range_is_sent_with_an_inclusive_end(cache, monkeypatch):
    fake = FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 5))
    monkeypatch.setattr(yfinance, "download", fake)
    download("SPY", start="2024-01-01", end="2024-01-05")
    assert fake.calls[0][1]["start"] == "2024-01-01" and fake.calls[0][1]["end"] == "2024-01-06"


@pytest.mark.parametrize(
    "damage", ["{}", "[1, 2]", '{"fetched_at": 5}', "not json", '{"fetched_at": "x"}']
)
def test_damaged_cache_metadata_is_refetched_not_a_traceback(cache, monkeypatch, damage):
    monkeypatch.setattr(yfinance, "download", FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 5)))
    download("SPY")
    (cache / "SPY_1d.json").write_text(damage)
    again = FakeYahoo(_yahoo_frame("SPY", "2024-01-01", 8))
    monkeypatch.setattr(yfinance, "download", again)
    frame = load("yf:SPY")
    assert len(again.calls) == 1 and len(frame) == 8  # fetched afresh, the damaged file replaced
    assert json.loads((cache / "SPY_1d.json").read_text())["fetched_at"]


def test_offline_yfinance_noise_is_held_back_behind_one_line(cache, monkeypatch, capsys):
    import logging
    import sys
    import warnings

    from tradenn.cli import main

    def noisy(ticker, **kwargs):
        logging.getLogger("yfinance").error("1 Failed download: ['SPY']: ConnectionError")
        print("\n1 Failed download:")
        print("['SPY']: ConnectionError('no route to host')", file=sys.stderr)
        warnings.warn("The default fill_method='pad' is deprecated", FutureWarning, stacklevel=1)
        return pd.DataFrame()

    monkeypatch.setattr(yfinance, "download", noisy)
    code = main(["data", "show", "yf:SPY"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tradenn: error: yf:SPY:")
    assert "Yahoo said: 1 Failed download: ['SPY']: ConnectionError" in err
