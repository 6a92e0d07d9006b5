"""What a strategy sees inside ``next()``: data and indicators revealed up to the current bar.

Each :class:`BarSeries` wraps the full, precomputed array and a shared clock. Indexing is relative
to *now*: ``s[-1]`` is the current bar, ``s[-2]`` the one before; a non-negative index ``s[k]``
counts from the first bar and must not pass the current bar. Slices and ``np.asarray(s)`` give
read-only views of bars ``0 .. now``. There is no public way to read a later bar: asking for one
raises :class:`LookAheadError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tradenn.data.panel import panel_assets
from tradenn.errors import TradennError


class LookAheadError(TradennError, IndexError):
    """A strategy asked for data from a bar that has not happened yet."""


CHECKED_BARS = 20_000
"""How much of the data the causality check recomputes on (see :func:`check_cuts`)."""


def check_cuts(n: int) -> list[int]:
    """The prefixes (their lengths) a rule over ``n`` bars is recomputed on to prove it causal:
    the first third and two thirds of the data, or of its first :data:`CHECKED_BARS` bars when
    it is longer, so the check costs at most about one extra run on 20,000 bars however long
    the data (``tradenn check-lookahead`` audits every bar)."""
    m = min(n, CHECKED_BARS)
    return sorted({m // 3, 2 * m // 3} - {0})


def check_causal(full: np.ndarray, early: np.ndarray, label: str) -> None:
    """Raise :class:`LookAheadError` where ``early`` (computed on a prefix) differs from the
    first values of ``full`` (computed on all the data): a causal computation gives the same."""
    same = (
        np.isclose(full, early, rtol=1e-9, atol=1e-12, equal_nan=True)
        if full.dtype != bool
        else full == early
    )
    if not same.all():
        bar = int(np.flatnonzero(~same)[0])
        raise LookAheadError(
            f"indicator {label} uses future data: its value at bar {bar} changes when later "
            f"bars are removed ({float(early[bar]):g} vs {float(full[bar]):g})"
        )


class Clock:
    """The engine's current bar index, shared by every series of one run."""

    __slots__ = ("i",)

    def __init__(self, i: int = 0) -> None:
        self.i = i


class BarSeries:
    """A column of data or an indicator, revealed bar by bar.

    ``len(s)`` is the number of bars revealed so far; ``s[-1]`` the current value; ``s[-n:]`` the
    last ``n`` values as a read-only numpy array; ``float(s)`` the current value.

    A series may hold only a trailing window of the history (the paper loop keeps the last
    bars a strategy needs): ``offset`` is the bar number of its first value. Indexing from the
    end works as always; ``s[k]`` of a bar before the window raises ``IndexError``, and slices
    and ``np.asarray(s)`` cover the window up to now.
    """

    __slots__ = ("__crossings", "__offset", "__values", "_clock", "name")

    def __init__(self, values: np.ndarray, clock: Clock, name: str, offset: int = 0) -> None:
        self._clock = clock
        self.name = name
        self.rebind(values, offset)

    def rebind(self, values: np.ndarray, offset: int = 0) -> None:
        """Point the series at ``values``, whose first element is bar ``offset`` (the runner
        does this when the paper loop's window moves; strategies never need to)."""
        values = np.asarray(values)
        values.flags.writeable = False
        self.__values = values
        self.__offset = offset
        self.__crossings: dict = {}

    def __getitem__(self, key):
        i = self._clock.i - self.__offset  # the current bar's position in the values
        if key.__class__ is int:  # the hot path: s[-1], s[-2]
            if key < 0:
                j = i + 1 + key
                if j < 0:
                    raise IndexError(
                        f"{self.name}[{key}]: only {min(i + 1, self._clock.i + 1)} bars so far"
                    )
                return self.__values[j]
            if key > self._clock.i:
                raise LookAheadError(
                    f"{self.name}[{key}] is in the future: the current bar is {self._clock.i}"
                )
            if key < self.__offset:
                raise IndexError(f"{self.name}[{key}]: bar {key} is before the {i + 1} bars kept")
            return self.__values[key - self.__offset]
        if isinstance(key, slice):
            return self.__values[: i + 1][key]
        if isinstance(key, np.integer):
            return self[int(key)]
        raise TypeError(f"{self.name}: index with an int or a slice, not {type(key).__name__}")

    def __len__(self) -> int:
        return self._clock.i + 1

    def crossed_above(self, other: BarSeries) -> bool:
        """``self[-2] < other[-2] and self[-1] > other[-1]``; False before the second bar.

        The hot path of :func:`~tradenn.backtest.lib.crossover`, which most strategies ask on
        every bar: for two series over the same bars the answer for every bar is worked out
        once, with numpy, and each call reads it (bar ``t`` compares bars ``t - 1`` and ``t``
        only, so nothing later is used). Rebinding either series starts over.
        """
        known = self.__crossings.get(other)
        j = self._clock.i - self.__offset
        if (
            known is not None
            and known[0] is other.__values
            and known[1] == other.__offset
            and 0 <= j < len(known[2])
        ):
            return known[2][j]
        k = other._clock.i - other.__offset
        if j < 1 or k < 1:
            return False
        a, b = self.__values, other.__values
        if j == k:
            m = min(len(a), len(b))
            crossed = (a[: m - 1] < b[: m - 1]) & (a[1:m] > b[1:m])
            self.__crossings[other] = (b, other.__offset, [False, *crossed.tolist()])
            if j < m:
                return bool(crossed[j - 1])
        return bool(a[j - 1] < b[k - 1] and a[j] > b[k])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        view = self.__values[: self._clock.i - self.__offset + 1]
        return view.astype(dtype) if dtype is not None else view

    def __float__(self) -> float:
        return float(self.__values[self._clock.i - self.__offset])

    def __iter__(self):
        return iter(self.__values[: self._clock.i - self.__offset + 1])

    def __repr__(self) -> str:
        return f"<BarSeries {self.name}: {len(self)} bars, now {self[-1]!r}>"

    @property
    def values(self) -> np.ndarray:
        """Read-only array of the bars revealed so far (of the window kept)."""
        return self.__values[: self._clock.i - self.__offset + 1]

    @property
    def offset(self) -> int:
        """Bar number of the first value held."""
        return self.__offset

    def full(self) -> np.ndarray:
        """Every value the series holds, revealed or not: for the engine and ``Strategy.I``
        (which compute on whole arrays), never for ``next()``."""
        return self.__values


def _lookup(table: dict[str, Any], key: str, what: str) -> Any:
    """``table[key]``, or a one-line ``KeyError`` naming the missing ``what`` and those there
    are (``"no column 'x'; columns: Open, High, ..."``)."""
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"no {what} {key!r}; {what}s: {', '.join(table)}") from None


def frame_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns of ``frame`` as numpy arrays, by name (what :class:`BarData` shows)."""
    return {str(c): frame[c].to_numpy() for c in frame.columns}


class BarData:
    """The price frame as seen from the current bar.

    Columns are attributes (``data.Close``) or items (``data["Adj Close"]``), each a
    :class:`BarSeries`. ``data.index`` holds the timestamps and ``data.now`` the current one;
    ``data.df`` is a pandas copy of the bars so far (convenient, but slow inside ``next``).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        clock: Clock,
        offset: int = 0,
        *,
        live: bool = False,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._clock = clock
        self.live = live  # bars arrive one by one (paper trading): nothing later exists yet
        if arrays is None:  # ``arrays``: the frame's columns, when the caller already has them
            arrays = frame_arrays(frame)
        self._columns = {
            name: BarSeries(values, clock, name, offset) for name, values in arrays.items()
        }
        for name, series in self._columns.items():
            if name.isidentifier():
                setattr(self, name, series)
        self.index = BarSeries(frame.index.to_numpy(), clock, "index", offset)
        self._frame, self._offset, self._window = frame, offset, None

    def rebind(self, bars: pd.DataFrame | BarWindow, offset: int = 0) -> None:
        """Show ``bars`` (a frame with the same columns, or a live run's :class:`BarWindow`),
        whose first row is bar ``offset`` (the runner does this as the paper loop's window
        moves)."""
        if isinstance(bars, BarWindow):
            for name, values in bars.columns().items():
                self._columns[name].rebind(values, offset)
            self.index.rebind(bars.times(), offset)
            self._frame, self._window = None, bars  # a frame is built only if asked for
        else:
            for c in bars.columns:
                self._columns[str(c)].rebind(bars[c].to_numpy(), offset)
            self.index.rebind(bars.index.to_numpy(), offset)
            self._frame, self._window = bars, None
        self._offset = offset

    @property
    def offset(self) -> int:
        """Bar number of the first bar held (0 but in the paper loop's moving window)."""
        return self._offset

    @property
    def frame(self) -> pd.DataFrame:
        """Every bar this view holds, revealed or not: for the engine, never for ``next()``."""
        if self._frame is None:
            self._frame = self._window.frame()
        return self._frame

    def __getitem__(self, column: str) -> BarSeries:
        return _lookup(self._columns, column, "column")

    def __len__(self) -> int:
        return self._clock.i + 1

    @property
    def now(self) -> pd.Timestamp:
        """Timestamp of the current bar."""
        return pd.Timestamp(self.index[-1])

    @property
    def df(self) -> pd.DataFrame:
        """A copy of the frame up to and including the current bar."""
        return self.frame.iloc[: self._clock.i - self._offset + 1].copy()

    @property
    def columns(self) -> list[str]:
        return list(self._columns)


class BarWindow:
    """The last bars of a live run in preallocated arrays: appending a bar is O(1) (amortized)
    and dropping the oldest is free, so a paper run's per-bar cost does not grow with its
    length.

    Columns are ``Open, High, Low, Close, Volume``; ``keep`` (None: everything) is the most bars
    held. Arrays handed out stay valid: when the storage moves, it moves to new arrays.
    """

    COLUMNS = ("Open", "High", "Low", "Close", "Volume")

    def __init__(self, frame: pd.DataFrame) -> None:
        n = len(frame)
        capacity = max(64, 2 * n)
        self._values = np.empty((len(self.COLUMNS), capacity))
        self._values[:, :n] = frame[list(self.COLUMNS)].to_numpy(dtype=np.float64).T
        aware = getattr(frame.index, "tz", None) is not None
        self._times = np.empty(capacity, dtype=object if aware else "datetime64[ns]")
        self._times[:n] = frame.index.to_numpy() if n else []
        self._start, self._end = 0, n

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, time: pd.Timestamp, values: tuple, keep: int | None = None) -> None:
        """Add one bar; then hold at most ``keep`` bars."""
        if self._end == self._values.shape[1]:
            n = len(self)
            capacity = self._values.shape[1] * (2 if 2 * n > self._values.shape[1] else 1)
            values_, times = (
                np.empty((len(self.COLUMNS), capacity)),
                np.empty(capacity, dtype=self._times.dtype),
            )
            values_[:, :n] = self._values[:, self._start : self._end]
            times[:n] = self._times[self._start : self._end]
            self._values, self._times, self._start, self._end = values_, times, 0, n
        time = pd.Timestamp(time)
        if self._end == 0 and self._times.dtype != object and time.tz is not None:
            self._times = np.empty(self._values.shape[1], dtype=object)
        self._values[:, self._end] = values
        self._times[self._end] = time if self._times.dtype == object else time.to_datetime64()
        self._end += 1
        if keep is not None and len(self) > keep:
            self._start = self._end - keep

    def columns(self) -> dict[str, np.ndarray]:
        """Each column's values, oldest first (views)."""
        rows = self._values[:, self._start : self._end]
        return dict(zip(self.COLUMNS, rows, strict=True))

    def times(self) -> np.ndarray:
        """The bars' timestamps, oldest first."""
        return self._times[self._start : self._end]

    def frame(self) -> pd.DataFrame:
        """The bars held as a price frame (a copy)."""
        index = pd.DatetimeIndex(
            list(self.times()) if self._times.dtype == object else self.times()
        )
        return pd.DataFrame(
            {name: values.copy() for name, values in self.columns().items()}, index=index
        )


class PanelData:
    """What a portfolio strategy sees in ``next()``: each asset's bars up to the current one.

    ``data[asset]`` is that asset's :class:`BarData` over its own bars (``data["SPX"].Close[-1]``
    is its latest close, which is today's only if :meth:`tradable`); ``data.assets``,
    ``data.now`` (the current timestamp), ``len(data)`` (bars of the union calendar so far),
    ``data.df`` (a copy of the panel up to now; slow).
    """

    def __init__(self, panel: pd.DataFrame, clock: Clock) -> None:
        self._panel = panel
        self._clock = clock
        self.assets = panel_assets(panel)
        has_bar = panel["Close"].notna().to_numpy()
        # Asset clock at union bar i: the index of the asset's latest bar so far (-1 before any).
        self._counts = np.cumsum(has_bar, axis=0) - 1
        self._has_bar = has_bar
        self._clocks = [Clock(-1) for _ in self.assets]
        self._views = {}
        for a, name in enumerate(self.assets):
            frame = panel.xs(name, axis=1, level=1)[has_bar[:, a]]
            frame.columns.name = None
            self._views[name] = BarData(frame, self._clocks[a])
        self.index = BarSeries(panel.index.to_numpy(), clock, "index")

    def sync(self, i: int) -> None:
        """Move every asset's view to union bar ``i`` (the engine calls this each bar)."""
        for clock, count in zip(self._clocks, self._counts[i].tolist(), strict=True):
            clock.i = count

    def __getitem__(self, asset: str) -> BarData:
        return _lookup(self._views, asset, "asset")

    def __len__(self) -> int:
        return self._clock.i + 1

    def tradable(self, asset: str) -> bool:
        """True when ``asset`` has a bar at the current timestamp."""
        return bool(self._has_bar[self._clock.i, self.assets.index(asset)])

    @property
    def now(self) -> pd.Timestamp:
        """Timestamp of the current bar."""
        return pd.Timestamp(self.index[-1])

    @property
    def df(self) -> pd.DataFrame:
        """A copy of the panel up to and including the current bar."""
        return self._panel.iloc[: self._clock.i + 1].copy()
