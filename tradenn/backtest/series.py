"""What a strategy sees inside ``next()``: data and indicators revealed up to the current bar.

Each :class:`BarSeries` wraps the full, precomputed array and a shared clock. Indexing is relative
to *now*: ``s[-1]`` is the current bar, ``s[-2]`` the one before; a non-negative index ``s[k]``
counts from the first bar and must not pass the current bar. Slices and ``np.asarray(s)`` give
read-only views of bars ``0 .. now``. There is no public way to read a later bar: asking for one
raises :class:`LookAheadError`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradenn.errors import TradennError


class LookAheadError(TradennError, IndexError):
    """A strategy asked for data from a bar that has not happened yet."""


class Clock:
    """The engine's current bar index, shared by every series of one run."""

    __slots__ = ("i",)

    def __init__(self, i: int = 0) -> None:
        self.i = i


class BarSeries:
    """A column of data or an indicator, revealed bar by bar.

    ``len(s)`` is the number of bars revealed so far; ``s[-1]`` the current value; ``s[-n:]`` the
    last ``n`` values as a read-only numpy array; ``float(s)`` the current value.
    """

    __slots__ = ("__values", "_clock", "name")

    def __init__(self, values: np.ndarray, clock: Clock, name: str) -> None:
        values = np.asarray(values)
        values.flags.writeable = False
        self.__values = values
        self._clock = clock
        self.name = name

    def __getitem__(self, key):
        i = self._clock.i
        if key.__class__ is int:  # the hot path: s[-1], s[-2]
            if key < 0:
                j = i + 1 + key
                if j < 0:
                    raise IndexError(f"{self.name}[{key}]: only {i + 1} bars so far")
                return self.__values[j]
            if key > i:
                raise LookAheadError(f"{self.name}[{key}] is in the future: the current bar is {i}")
            return self.__values[key]
        if isinstance(key, slice):
            return self.__values[: i + 1][key]
        if isinstance(key, np.integer):
            return self[int(key)]
        raise TypeError(f"{self.name}: index with an int or a slice, not {type(key).__name__}")

    def __len__(self) -> int:
        return self._clock.i + 1

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        view = self.__values[: self._clock.i + 1]
        return view.astype(dtype) if dtype is not None else view

    def __float__(self) -> float:
        return float(self.__values[self._clock.i])

    def __iter__(self):
        return iter(self.__values[: self._clock.i + 1])

    def __repr__(self) -> str:
        return f"<BarSeries {self.name}: {len(self)} bars, now {self[-1]!r}>"

    @property
    def values(self) -> np.ndarray:
        """Read-only array of the bars revealed so far."""
        return self.__values[: self._clock.i + 1]

    def _full(self) -> np.ndarray:
        """The whole precomputed array: for the engine and ``Strategy.I``, never for ``next``."""
        return self.__values


class BarData:
    """The price frame as seen from the current bar.

    Columns are attributes (``data.Close``) or items (``data["Adj Close"]``), each a
    :class:`BarSeries`. ``data.index`` holds the timestamps and ``data.now`` the current one;
    ``data.df`` is a pandas copy of the bars so far (convenient, but slow inside ``next``).
    """

    def __init__(self, frame: pd.DataFrame, clock: Clock) -> None:
        self._clock = clock
        self._frame = frame
        self._columns = {
            str(c): BarSeries(frame[c].to_numpy(), clock, str(c)) for c in frame.columns
        }
        for name, series in self._columns.items():
            if name.isidentifier():
                setattr(self, name, series)
        self.index = BarSeries(frame.index.to_numpy(), clock, "index")

    def __getitem__(self, column: str) -> BarSeries:
        try:
            return self._columns[column]
        except KeyError:
            raise KeyError(f"no column {column!r}; columns: {', '.join(self._columns)}") from None

    def __len__(self) -> int:
        return self._clock.i + 1

    @property
    def now(self) -> pd.Timestamp:
        """Timestamp of the current bar."""
        return pd.Timestamp(self.index[-1])

    @property
    def df(self) -> pd.DataFrame:
        """A copy of the frame up to and including the current bar."""
        return self._frame.iloc[: self._clock.i + 1].copy()

    @property
    def columns(self) -> list[str]:
        return list(self._columns)
