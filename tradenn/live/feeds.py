"""Price feeds for paper trading: replay stored bars, or poll Yahoo Finance for new ones.

A feed hands the run loop completed bars, oldest first, strictly after the last bar the loop has
seen, so a restarted loop resumes where its ledger left off::

    feed = open_feed("replay:SPX", speed=50)          # 50 bars a second; 0 = as fast as possible
    feed = open_feed("yf:SPY", interval="1m")         # polls Yahoo; waits for each bar to close
    for bar in feed.bars(after=last_seen, stop=stop_event):
        ...

A replay feed ends when its data ends; a live feed runs until ``stop`` is set, checking it at
least once per wait, so a SIGTERM handler that sets it ends the loop promptly. Feeds log through
the ``tradenn.live`` logger: network trouble and stale data are WARNINGs, never crashes.

``feed.history(n)`` gives ``n`` bars to warm a strategy up on before it trades (``--warmup N``),
as a price frame; trading then starts strictly after its last bar::

    warm = feed.history(200)          # replay: its first 200 bars; yf: the last 200 completed
    for bar in feed.bars(after=warm.index[-1], stop=stop_event):
        ...

A replay feed's history is the start of its data; a ``yf:`` feed's comes from
:func:`tradenn.data.load` and its on-disk cache. Too few bars, or a download that fails, is a
one-line :class:`FeedError`.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import warnings
from collections import namedtuple
from collections.abc import Callable, Iterator
from datetime import timedelta

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.data import sources, yahoo
from tradenn.data.validation import OHLCV, validate
from tradenn.errors import DataError, TradennError

logger = logging.getLogger("tradenn.live")

Bar = namedtuple("Bar", "time open high low close volume")
Bar.__doc__ = "One completed price bar; ``time`` (a pd.Timestamp) is when the bar opened."

Sleeper = Callable[[float, threading.Event], object]
Fetcher = Callable[[str, "pd.Timestamp | None", str], pd.DataFrame]

# Bar lengths of the Yahoo intervals a live feed supports (months have no fixed length).
BAR_LENGTH = {
    "1m": pd.Timedelta(minutes=1),
    "2m": pd.Timedelta(minutes=2),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "60m": pd.Timedelta(hours=1),
    "90m": pd.Timedelta(minutes=90),
    "1h": pd.Timedelta(hours=1),
    "1d": pd.Timedelta(days=1),
    "1wk": pd.Timedelta(weeks=1),
}


class FeedError(TradennError, ValueError):
    """A feed that cannot be opened or cannot go on: bad spec or arguments, or too many retries."""


def _wait(seconds: float, stop: threading.Event) -> None:
    """The default sleeper: wait ``seconds`` unless ``stop`` is set first."""
    stop.wait(seconds)


def _price_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with only the float64 columns Open, High, Low, Close, Volume."""
    return frame[list(OHLCV)].astype("float64").rename_axis(columns=None)


def _bars_of(frame: pd.DataFrame) -> list[Bar]:
    """The rows of a price frame as :class:`Bar` tuples, oldest first."""
    columns = [frame[c].to_numpy(dtype="float64").tolist() for c in OHLCV]
    return [Bar(t, *values) for t, *values in zip(frame.index, *columns, strict=True)]


class Feed:
    """Base class of feeds: a ``name``, :meth:`bars` and, if the feed has one, :meth:`history`."""

    name: str = "feed"

    def bars(self, after: pd.Timestamp | None, stop: threading.Event) -> Iterator[Bar]:
        """Yield completed bars strictly after ``after`` (all bars if None), oldest first.

        Parameters
        ----------
        after : pd.Timestamp or None
            The time of the last bar already processed.
        stop : threading.Event
            Set it to end the iteration; the feed checks it before every bar and while waiting.
        """
        raise NotImplementedError

    def history(self, n: int, stop: threading.Event | None = None) -> pd.DataFrame:
        """The ``n`` bars a strategy warms up on before trading, oldest first, as a price frame.

        Pass the last bar's time to :meth:`bars` as ``after``: trading starts strictly after it.

        Parameters
        ----------
        n : int
            How many bars, >= 1.
        stop : threading.Event, optional
            When it is already set, nothing is loaded and the frame is empty (no rows): check
            ``stop`` after the call, as after :meth:`bars`.

        Returns
        -------
        DataFrame
            ``n`` rows indexed by bar time, float64 columns Open, High, Low, Close, Volume.

        Raises
        ------
        FeedError
            ``n`` is not an int >= 1, there are too few bars, the data cannot be loaded, or (this
            base class) the feed has no history.
        """
        raise FeedError(f"{self.name}: this feed has no history to warm up on")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class ReplayFeed(Feed):
    """Replays a stored price frame bar by bar, ``speed`` bars per second (0 = no pacing).

    Parameters
    ----------
    source : str or DataFrame
        Anything :func:`tradenn.data.load` accepts (bundled name, CSV path, ``yf:TICKER``, read
        from the cache), or a price frame.
    speed : float
        Bars per second; 0 replays as fast as the consumer takes them.
    start, end : date-like, optional
        Replay only bars in this span (as in :func:`tradenn.data.load`).
    sleep : callable, optional
        ``sleep(seconds, stop)`` used for pacing; the default waits on ``stop`` so a stop set
        mid-way ends the replay at once. Tests pass a recorder.
    **load_options
        Passed to :func:`tradenn.data.load` for ``yf:`` sources (``interval``, ``cache``, ...).
        A ``yf:`` source is served from the cache however old it is, unless ``max_age`` is given.
    """

    def __init__(
        self,
        source: str | pd.DataFrame,
        speed: float = 0.0,
        *,
        start=None,
        end=None,
        sleep: Sleeper | None = None,
        **load_options,
    ) -> None:
        checks.number(speed, "speed (bars per second)", "ReplayFeed", low=0, error=FeedError)
        if isinstance(source, pd.DataFrame):
            if load_options:
                raise FeedError(
                    f"ReplayFeed: options {sorted(load_options)} apply to sources, not frames"
                )
            label = str(source.attrs.get("source", "frame"))
            validate(source, f"replay:{label}")
            frame = source.loc[start:end] if start is not None or end is not None else source
            if frame.empty:
                raise FeedError(f"replay:{label}: no bars between {start} and {end}")
        else:
            label = str(source).strip()
            if not label:
                raise FeedError("ReplayFeed: a source is required, e.g. replay:SPX")
            if label.lower().startswith("yf:"):
                load_options.setdefault("max_age", timedelta.max)
            frame = sources.load(label, start, end, **load_options)
        self.name = f"replay:{label}"
        self.speed = float(speed)
        self.frame = frame
        self._sleep = sleep or _wait

    def bars(self, after: pd.Timestamp | None, stop: threading.Event) -> Iterator[Bar]:
        """Yield the stored bars strictly after ``after``, oldest first; end with the data.

        Between bars it waits ``1 / speed`` seconds through ``sleep``; it ends as soon as
        ``stop`` is set (checked before every bar and after every wait).
        """
        frame = self.frame
        if after is not None:
            after = pd.Timestamp(after)
            if (after.tz is None) != (frame.index.tz is None):
                raise FeedError(
                    f"{self.name}: after={after} and the bar times ({frame.index[0]}) must both "
                    "have a time zone or both not"
                )
            frame = frame.iloc[frame.index.searchsorted(after, side="right") :]
        pause = 1.0 / self.speed if self.speed > 0 else 0.0
        for position, bar in enumerate(_bars_of(frame)):
            if pause and position:
                self._sleep(pause, stop)
            if stop.is_set():
                return
            yield bar

    def history(self, n: int, stop: threading.Event | None = None) -> pd.DataFrame:
        """The first ``n`` bars of the data; :meth:`bars` with ``after`` = the last one's time
        replays the rest.

        The feed is not changed: ``bars(None, ...)`` still replays every bar. Raises
        :class:`FeedError` unless the data has more than ``n`` bars, so some are left to trade.
        """
        n = checks.positive_int(n, "--warmup", error=FeedError)
        if stop is not None and stop.is_set():
            return _price_frame(self.frame.iloc[:0])
        if len(self.frame) <= n:
            raise FeedError(
                f"{self.name} has {len(self.frame)} bars; --warmup {n} leaves none to trade"
            )
        return _price_frame(self.frame.iloc[:n])


def _default_fetch(ticker: str, start: pd.Timestamp | None, interval: str) -> pd.DataFrame:
    """Recent bars from Yahoo through :func:`tradenn.data.yahoo.fetch` (no cache)."""
    limit = yahoo._INTRADAY_LIMIT.get(interval)
    if start is not None and limit is not None and start < pd.Timestamp.now() - limit:
        start = None  # older than Yahoo serves at this interval: ask for all it has
    return yahoo.fetch(ticker, start, interval=interval)


class YahooFeed(Feed):
    """Polls Yahoo Finance for new bars and yields each completed bar once, oldest first.

    A bar is completed when its end (open time + bar length) is at or before ``now()``; the bar
    still forming is never yielded. Network errors and empty answers are logged as WARNINGs and
    retried after ``backoff``, ``2 * backoff``, ``4 * backoff``, ... seconds, at most
    ``max_backoff``. When no new completed bar has come for ``stale_after`` seconds, one WARNING
    is logged for that stale spell.

    Parameters
    ----------
    ticker : str
        Yahoo symbol, e.g. ``"SPY"``, ``"EURUSD=X"``.
    interval : str
        Bar length: one of ``1m 2m 5m 15m 30m 60m 90m 1h 1d 1wk``.
    poll_seconds : float, optional
        Seconds between polls; default a quarter of a bar, between 5 s and 5 min.
    retries : int, optional
        Give up with :class:`FeedError` after this many failed polls in a row; None (default)
        retries for ever, so the run loop waits out a network outage.
    backoff, max_backoff : float
        First retry delay and its cap, in seconds.
    stale_after : float, optional
        Seconds without a new completed bar before the stale WARNING; default four bars, at least
        15 minutes.
    timezone : str
        The time zone Yahoo writes the bar times in (the exchange's): the default clock reads
        the wall time there, since :mod:`tradenn.data.yahoo` gives naive exchange-local times.
    fetch : callable, optional
        ``fetch(ticker, start, interval) -> DataFrame`` of bars from ``start`` on (earlier ones
        are allowed); default :func:`tradenn.data.yahoo.fetch`. Tests pass a fake source.
    now : callable, optional
        Returns the current naive time in ``timezone``; tests pass a fake clock.
    sleep : callable, optional
        ``sleep(seconds, stop)``; the default waits on ``stop``, so setting it ends a wait at once.
    cache : str or path, optional
        Folder of the price cache :meth:`history` loads through (as in :func:`tradenn.data.load`);
        default ``$TRADENN_CACHE_DIR`` or ``~/.cache/tradenn``.
    """

    def __init__(
        self,
        ticker: str,
        interval: str = "1d",
        *,
        poll_seconds: float | None = None,
        retries: int | None = None,
        backoff: float = 2.0,
        max_backoff: float = 300.0,
        stale_after: float | None = None,
        timezone: str = "America/New_York",
        fetch: Fetcher | None = None,
        now: Callable[[], pd.Timestamp] | None = None,
        sleep: Sleeper | None = None,
        cache: str | os.PathLike | None = None,
    ) -> None:
        ticker = str(ticker).strip()
        if not ticker:
            raise FeedError("YahooFeed: a ticker is required, e.g. yf:SPY")
        if interval not in BAR_LENGTH:
            raise FeedError(
                f"YahooFeed: interval must be one of {', '.join(BAR_LENGTH)}, got {interval!r}"
            )
        bar = BAR_LENGTH[interval]
        if poll_seconds is None:
            poll_seconds = min(max(bar.total_seconds() / 4, 5.0), 300.0)
        if stale_after is None:
            stale_after = max(4 * bar.total_seconds(), 900.0)
        for name, value in (
            ("poll_seconds", poll_seconds),
            ("backoff", backoff),
            ("max_backoff", max_backoff),
            ("stale_after", stale_after),
        ):
            checks.positive_number(value, name, "YahooFeed", error=FeedError)
        if max_backoff < backoff:
            raise FeedError(
                f"YahooFeed: max_backoff ({max_backoff}) must be at least backoff ({backoff})"
            )
        checks.non_negative_int(retries, "retries", "YahooFeed", allow_none=True, error=FeedError)
        try:
            pd.Timestamp.now(tz=timezone)
        except Exception:
            raise FeedError(f"YahooFeed: unknown time zone {timezone!r}") from None
        self.name = f"yf:{ticker}"
        self.ticker, self.interval, self.bar_length = ticker, interval, bar
        self.poll_seconds, self.retries = float(poll_seconds), retries
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.stale_after = pd.Timedelta(seconds=stale_after)
        self.timezone = timezone
        self._fetch = fetch or _default_fetch
        self._now = now or (lambda: pd.Timestamp.now(tz=timezone).tz_localize(None))
        self._sleep = sleep or _wait
        self.cache = cache

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed polls in a row: exponential, capped."""
        return min(self.backoff * 2.0 ** min(failures - 1, 64), self.max_backoff)

    def _poll(self, start: pd.Timestamp | None) -> pd.DataFrame:
        """One fetch, checked; raises DataError or OSError when there is nothing usable."""
        frame = self._fetch(self.ticker, start, self.interval)
        if frame is None or len(frame) == 0:
            raise DataError(f"{self.name}: no bars came back")
        validate(frame, self.name)
        return frame

    def _completed(self, times: pd.DatetimeIndex, now: pd.Timestamp) -> np.ndarray:
        """Which of the bars opened at ``times`` are completed at ``now``: those whose end (open
        time + bar length) is at or before it. :meth:`bars` and :meth:`history` both ask this."""
        return np.asarray(times + self.bar_length <= now)

    def _after(self, after) -> pd.Timestamp | None:
        if after is None:
            return None
        after = pd.Timestamp(after)
        if after.tz is not None:  # bar times are naive exchange-local times
            after = after.tz_convert(self.timezone).tz_localize(None)
        return after

    def bars(self, after: pd.Timestamp | None, stop: threading.Event) -> Iterator[Bar]:
        """Yield each completed bar strictly after ``after`` once, oldest first, until ``stop``.

        With ``after=None`` the first poll's completed bars come first: what Yahoo serves at this
        interval (7 days of 1m bars, ..., the whole history of daily bars).
        """
        last = self._after(after)
        failures = 0
        progress_at = self._now()
        stale_warned = False
        while not stop.is_set():
            try:
                frame = self._poll(last)
            except (DataError, OSError) as error:
                failures += 1
                if self.retries is not None and failures > self.retries:
                    raise FeedError(
                        f"{self.name}: giving up after {failures} failed polls in a row "
                        f"(last: {type(error).__name__}: {error})"
                    ) from None
                delay = self.retry_delay(failures)
                logger.warning(
                    "%s: poll failed (%s: %s); network down? retrying in %gs",
                    self.name,
                    type(error).__name__,
                    error,
                    delay,
                )
                stale_warned = self._warn_if_stale(progress_at, last, stale_warned)
                self._sleep(delay, stop)
                continue
            if failures:
                logger.info("%s: data again after %d failed polls", self.name, failures)
                failures = 0
            now = self._now()
            index = frame.index
            keep = self._completed(index, now)
            if last is not None:
                keep &= index > last
            fresh = _bars_of(frame[keep])
            for bar in fresh:
                if stop.is_set():
                    return
                yield bar
                last = bar.time
            if fresh:
                progress_at, stale_warned = now, False
            else:
                stale_warned = self._warn_if_stale(progress_at, last, stale_warned)
            self._sleep(self.poll_seconds, stop)

    def history(self, n: int, stop: threading.Event | None = None) -> pd.DataFrame:
        """The last ``n`` completed bars (the forming one never), through :func:`tradenn.data.load`.

        The ``yf:TICKER`` source is loaded at the feed's interval (adjusted, as :meth:`bars`
        polls it) from the price cache when the cache was fetched after the last bar could have
        ended (within the current minute for intraday bars, today for daily and weekly ones), so
        a bar still forming when it was cached is never handed out as completed; otherwise Yahoo
        is asked and the cache refreshed. ``fetch`` is not used.

        Raises :class:`FeedError` (one line, naming the ticker) when fewer than ``n`` completed
        bars are available, or when the download fails, even if an older cached copy exists.
        """
        n = checks.positive_int(n, "--warmup", error=FeedError)
        if stop is not None and stop.is_set():
            return _price_frame(pd.DataFrame(columns=list(OHLCV), index=pd.DatetimeIndex([])))
        now = self._now()
        # The cache must have been fetched after ``since`` (no bar that has completed by now ends
        # later); tradenn.data measures the cache's age as a duration, so max_age is one too.
        since = now.normalize() if self.bar_length >= BAR_LENGTH["1d"] else now.floor("min")
        try:
            with warnings.catch_warnings():
                # tradenn.data falls back to a stale cache with this warning when Yahoo fails;
                # its last bar may have been forming when cached, so here that is a failure.
                warnings.filterwarnings("error", message=r".*; using the cached copy from ")
                frame = sources.load(
                    self.name,
                    interval=self.interval,
                    cache=self.cache,
                    max_age=(now - since).to_pytimedelta(),
                )
        except (UserWarning, DataError, OSError) as error:
            raise FeedError(
                f"{self.name}: cannot load {n} bars of history ({_reason(error)})"
            ) from None
        completed = frame[self._completed(frame.index, now)]
        if len(completed) < n:
            raise FeedError(
                f"{self.name} has {len(completed)} completed {self.interval} bars, "
                f"fewer than --warmup {n}"
            )
        return _price_frame(completed.iloc[-n:])

    def _warn_if_stale(
        self, progress_at: pd.Timestamp, last: pd.Timestamp | None, warned: bool
    ) -> bool:
        """Log the stale WARNING once per spell; return whether it has been logged."""
        waited = self._now() - progress_at
        if warned or waited < self.stale_after:
            return warned
        logger.warning(
            "%s: no new completed %s bar for %s (last bar: %s); market closed or data stalled?",
            self.name,
            self.interval,
            _duration(waited),
            "none yet" if last is None else last,
        )
        return True


def _reason(error: Exception) -> str:
    """Why a history download failed, on one line."""
    if isinstance(error, UserWarning):  # tradenn.data's fallback to a stale cached copy
        text = str(error).partition("; using the cached copy")[0]
        text += "; the cached copy is older than the last bar"
    elif isinstance(error, DataError):  # its message names the source already
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def _duration(span: pd.Timedelta) -> str:
    """``span`` for a log line: ``45s``, ``12 min``, ``3.5 h`` or ``4.0 days``."""
    seconds = span.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


_FEED_KINDS = {"replay": ReplayFeed, "yf": YahooFeed}


def _check_options(cls: type, options: dict, spec: str) -> None:
    parameters = inspect.signature(cls).parameters.values()
    known = {p.name for p in parameters if p.kind is not p.VAR_KEYWORD} - {"source", "ticker"}
    known -= {"speed", "interval"}  # open_feed's own arguments
    if cls is ReplayFeed:
        known |= {"cache", "adjusted", "max_age"}  # tradenn.data.load's options for yf: sources
    unknown = sorted(set(options) - known)
    if unknown:
        raise FeedError(
            f"open_feed: {spec} takes no option {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )


def open_feed(spec: str, *, speed: float = 0.0, interval: str = "1d", **options) -> Feed:
    """Open a feed from its spec: ``"replay:SOURCE"`` or ``"yf:TICKER"``.

    Parameters
    ----------
    spec : str
        ``replay:SOURCE`` replays any :func:`tradenn.data.load` source (bundled name, CSV path,
        ``yf:TICKER`` from the cache); ``yf:TICKER`` polls Yahoo Finance.
    speed : float
        Replay pace in bars per second (0 = as fast as possible); replay feeds only.
    interval : str
        Bar length of a ``yf:`` feed or of a replayed ``yf:`` source; other sources replay
        their own bars.
    **options
        Passed to :class:`ReplayFeed` or :class:`YahooFeed`.

    Raises
    ------
    FeedError
        An unknown kind of feed, an empty source, or options that do not apply.
    DataError
        A replay source that cannot be loaded.
    """
    text = str(spec).strip()
    kind, colon, rest = text.partition(":")
    kind, rest = kind.lower(), rest.strip()
    if not colon or kind not in _FEED_KINDS:
        raise FeedError(
            f"open_feed: unknown feed {spec!r} (use replay:SOURCE, e.g. replay:SPX, or yf:TICKER)"
        )
    if not rest:
        example = "replay:SPX" if kind == "replay" else "yf:SPY"
        raise FeedError(f"open_feed: {spec!r} names no source, e.g. {example}")
    cls = _FEED_KINDS[kind]
    _check_options(cls, options, text)
    if kind == "replay":
        if rest.lower().startswith("yf:"):
            options.setdefault("interval", interval)
        return ReplayFeed(rest, speed, **options)
    if speed:
        raise FeedError(f"open_feed: speed applies to replay feeds only, not {text}")
    return YahooFeed(rest, interval, **options)
