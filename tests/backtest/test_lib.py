"""crossover() on two series: the per-bar answers computed once equal the definition."""

from __future__ import annotations

import numpy as np

from tradenn.backtest import crossover
from tradenn.backtest.series import BarSeries, Clock


def _by_definition(a, b, i):
    return i >= 1 and bool(a[i - 1] < b[i - 1] and a[i] > b[i])


def test_crossover_of_two_series_is_the_definition_on_every_bar():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(size=300)
    a[[5, 6, 40]] = np.nan  # NaN compares False, as in the definition
    b[100] = a[100]  # a tie is not a cross
    clock = Clock(0)
    fast, slow = BarSeries(a, clock, "fast"), BarSeries(b, clock, "slow")
    found = []
    for i in range(300):
        clock.i = i
        found.append((crossover(fast, slow), crossover(slow, fast)))
    assert found == [(_by_definition(a, b, i), _by_definition(b, a, i)) for i in range(300)]
    assert any(up for up, _ in found) and any(down for _, down in found)


def test_crossover_follows_a_moving_window():
    # The paper loop rebinds series to a window that moves with every bar: answers must
    # follow the new values, never a cache of the old ones.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(size=200)
    clock = Clock(0)
    fast, slow = BarSeries(a[:10], clock, "fast"), BarSeries(b[:10], clock, "slow")
    for i in range(10, 200):
        lo = i - 9
        fast.rebind(a[lo : i + 1].copy(), lo)
        slow.rebind(b[lo : i + 1].copy(), lo)
        clock.i = i
        assert crossover(fast, slow) == _by_definition(a, b, i)
        assert crossover(slow, fast) == _by_definition(b, a, i)
    # the same array object rebound at another offset is read afresh, not from the cache
    fast.rebind(a, 0)
    slow.rebind(b, 0)
    shifted = [
        i
        for i in range(2, 200)
        if _by_definition(a, b, i) != (a[i - 1] < b[i - 2] and a[i] > b[i - 1])
    ]
    clock.i = shifted[0]
    assert crossover(fast, slow) == _by_definition(a, b, clock.i)  # cached, aligned
    slow.rebind(b, 1)  # now slow's bar k is b[k - 1]
    expected = bool(a[clock.i - 1] < b[clock.i - 2] and a[clock.i] > b[clock.i - 1])
    assert crossover(fast, slow) == expected
