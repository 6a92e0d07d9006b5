"""Indicators against plain-Python reference loops, plus causality, types, NaN prefixes, windows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradenn import features as ft

NAN = math.nan


# ---------------------------------------------------------------------------- reference loops
# Textbook formulas, one bar at a time, on plain lists; independent of the vectorized code.
def ref_sma(x, n):
    return [sum(x[t - n + 1 : t + 1]) / n if t >= n - 1 else NAN for t in range(len(x))]


def ref_std(x, n):
    out = []
    for t in range(len(x)):
        if t < n - 1:
            out.append(NAN)
            continue
        w = x[t - n + 1 : t + 1]
        m = sum(w) / n
        out.append(math.sqrt(sum((v - m) ** 2 for v in w) / n))
    return out


def ref_smooth(x, n, alpha):
    """Seeded with the mean of the first n values (all of x is valid), then alpha-smoothed."""
    out = [NAN] * len(x)
    if len(x) >= n:
        y = sum(x[:n]) / n
        out[n - 1] = y
        for t in range(n, len(x)):
            y = alpha * x[t] + (1 - alpha) * y
            out[t] = y
    return out


def ref_ema(x, n):
    return ref_smooth(x, n, 2 / (n + 1))


def ref_rsi(close, n):
    out = [NAN] * len(close)
    if len(close) <= n:
        return out
    gains = [max(close[t] - close[t - 1], 0.0) for t in range(1, len(close))]
    losses = [max(close[t - 1] - close[t], 0.0) for t in range(1, len(close))]
    avg_gain, avg_loss = sum(gains[:n]) / n, sum(losses[:n]) / n
    for t in range(n, len(close)):
        if t > n:
            avg_gain = (avg_gain * (n - 1) + gains[t - 1]) / n
            avg_loss = (avg_loss * (n - 1) + losses[t - 1]) / n
        out[t] = 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def ref_macd(close, fast, slow, signal):
    line = [f - s for f, s in zip(ref_ema(close, fast), ref_ema(close, slow), strict=True)]
    sig = [NAN] * (slow - 1) + ref_ema(line[slow - 1 :], signal)
    return line, sig, [m - s for m, s in zip(line, sig, strict=True)]


def ref_bollinger(close, n, k):
    mid, sd = ref_sma(close, n), ref_std(close, n)
    return (
        mid,
        [m + k * s for m, s in zip(mid, sd, strict=True)],
        [m - k * s for m, s in zip(mid, sd, strict=True)],
    )


def ref_atr(high, low, close, n):
    tr = [high[0] - low[0]]
    for t in range(1, len(close)):
        tr.append(max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1])))
    out = [NAN] * len(close)
    if len(tr) >= n:
        a = sum(tr[:n]) / n
        out[n - 1] = a
        for t in range(n, len(tr)):
            a = (a * (n - 1) + tr[t]) / n
            out[t] = a
    return out


def ref_zscore(x, n):
    mean, sd = ref_sma(x, n), ref_std(x, n)
    return [(v - m) / s if s > 0 else NAN for v, m, s in zip(x, mean, sd, strict=True)]


def ref_log_returns(x):
    return [NAN] + [math.log(x[t] / x[t - 1]) for t in range(1, len(x))]


def ref_momentum(x, n):
    return [x[t] / x[t - n] - 1 if t >= n else NAN for t in range(len(x))]


def ref_donchian(high, low, n):
    upper = [max(high[t - n + 1 : t + 1]) if t >= n - 1 else NAN for t in range(len(high))]
    lower = [min(low[t - n + 1 : t + 1]) if t >= n - 1 else NAN for t in range(len(low))]
    return upper, lower


# ---------------------------------------------------------------------------- the cases
# name -> (indicator applied to (high, low, close), reference applied to lists of the same)
CASES = {
    "sma": (lambda h, lo, c: ft.sma(c, 10), lambda h, lo, c: ref_sma(c, 10)),
    "ema": (lambda h, lo, c: ft.ema(c, 10), lambda h, lo, c: ref_ema(c, 10)),
    "rsi": (lambda h, lo, c: ft.rsi(c, 14), lambda h, lo, c: ref_rsi(c, 14)),
    "macd": (lambda h, lo, c: ft.macd(c, 12, 26, 9), lambda h, lo, c: ref_macd(c, 12, 26, 9)),
    "bollinger": (
        lambda h, lo, c: ft.bollinger(c, 20, 2.0),
        lambda h, lo, c: ref_bollinger(c, 20, 2.0),
    ),
    "atr": (lambda h, lo, c: ft.atr(h, lo, c, 14), lambda h, lo, c: ref_atr(h, lo, c, 14)),
    "rolling_zscore": (
        lambda h, lo, c: ft.rolling_zscore(c, 20),
        lambda h, lo, c: ref_zscore(c, 20),
    ),
    "rolling_std": (lambda h, lo, c: ft.rolling_std(c, 20), lambda h, lo, c: ref_std(c, 20)),
    "log_returns": (lambda h, lo, c: ft.log_returns(c), lambda h, lo, c: ref_log_returns(c)),
    "momentum": (lambda h, lo, c: ft.momentum(c, 5), lambda h, lo, c: ref_momentum(c, 5)),
    "donchian": (
        lambda h, lo, c: ft.donchian(h, lo, 20),
        lambda h, lo, c: ref_donchian(h, lo, 20),
    ),
}
ALL = pytest.mark.parametrize("name", sorted(CASES))


def outputs(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def bars(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walk high, low, close with gaps between bars (so true range uses the close)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))
    high = close * (1 + 0.01 * np.abs(rng.standard_normal(n)))
    low = close * (1 - 0.01 * np.abs(rng.standard_normal(n)))
    return high, low, close


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-10, atol=0)


# ---------------------------------------------------------------------------- values
@ALL
def test_matches_reference_loop_on_random_data(name):
    func, ref = CASES[name]
    data = bars()
    got, want = outputs(func(*data)), ref(*(a.tolist() for a in data))
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, np.ndarray) and g.dtype == np.float64
        assert not np.isnan(g[-1])
        assert_close(g, w)


def test_hand_checked_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert_close(ft.sma(x, 3), [NAN, NAN, 2, 3, 17 / 3])
    assert_close(ft.ema(x, 3), [NAN, NAN, 2, 3, 6.5])  # alpha 0.5, seeded with sma 2
    assert_close(ft.rolling_std(x[:4], 2), [NAN, 0.5, 0.5, 0.5])
    assert_close(ft.rolling_zscore(x[:3], 3), [NAN, NAN, 1 / math.sqrt(2 / 3)])
    assert_close(ft.momentum(x, 2), [NAN, NAN, 2, 1, 7 / 3])
    assert_close(ft.log_returns(np.exp([0.0, 1.0, 3.0])), [NAN, 1, 2])
    # gains 1,1,0,1 losses 0,0,1,0: averages (1,0) -> (0.5,0.5) -> (0.75,0.25)
    assert_close(ft.rsi(np.array([1.0, 2, 3, 2, 3]), 2), [NAN, NAN, 100, 50, 75])
    # true ranges 2, 2, max(1, |8-3|, |7-3|) = 5
    assert_close(
        ft.atr(np.array([3.0, 4, 8]), np.array([1.0, 2, 7]), np.array([2, 3, 7.5]), 2),
        [NAN, 2, 3.5],
    )
    mid, up, lo = ft.bollinger(np.array([1.0, 2.0, 3.0]), 3, k=2.0)
    assert_close(mid, [NAN, NAN, 2])
    assert_close(up, [NAN, NAN, 2 + 2 * math.sqrt(2 / 3)])
    assert_close(lo, [NAN, NAN, 2 - 2 * math.sqrt(2 / 3)])
    # a linear series: ema2 lags by 0.5, ema3 by 1, so macd is 0.5 throughout
    line, sig, hist = ft.macd(np.arange(1.0, 6.0), fast=2, slow=3, signal=2)
    assert_close(line, [NAN, NAN, 0.5, 0.5, 0.5])
    assert_close(sig, [NAN, NAN, NAN, 0.5, 0.5])
    assert_close(hist, [NAN, NAN, NAN, 0, 0])
    upper, lower = ft.donchian(np.array([1.0, 3, 2, 5, 4]), np.array([0.0, 2, 1, 4, 3]), 2)
    assert_close(upper, [NAN, 3, 3, 5, 5])
    assert_close(lower, [NAN, 0, 1, 1, 3])


def test_rsi_is_100_without_losses_and_zscore_nan_on_flat_windows():
    assert_close(ft.rsi(np.arange(20.0), 5)[5:], np.full(15, 100.0))
    assert_close(ft.rsi(np.ones(10), 5)[5:], np.full(5, 100.0))
    z = ft.rolling_zscore(np.array([1.0, 2, 5, 5, 5, 6]), 3)
    expected = [
        (5 - 8 / 3) / np.std([1, 2, 5]),
        1 / np.std([2, 5, 5]),
        NAN,
        (6 - 16 / 3) / np.std([5, 5, 6]),
    ]
    assert_close(z, [NAN, NAN, *expected])


# ---------------------------------------------------------------------------- causality
@ALL
def test_perturbing_the_future_leaves_the_past_unchanged(name):
    func = CASES[name][0]
    data = bars(200)
    before = outputs(func(*data))
    rng = np.random.default_rng(1)
    for t in (0, 9, 30, 120, 180):
        perturbed = [a.copy() for a in data]
        for a in perturbed:
            a[t + 1 :] *= np.exp(rng.standard_normal(a.size - t - 1))
        after = outputs(func(*perturbed))
        for b, a in zip(before, after, strict=True):
            np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
            assert not np.array_equal(a[t + 1 :], b[t + 1 :], equal_nan=True)  # not vacuous


# ---------------------------------------------------------------------------- types and NaNs
@ALL
def test_series_in_gives_series_on_the_same_index(name):
    func = CASES[name][0]
    data = bars(100)
    index = pd.date_range("2020-01-01", periods=100, freq="B", name="Date")
    from_arrays = outputs(func(*data))
    from_series = outputs(func(*(pd.Series(a, index=index) for a in data)))
    for s, a in zip(from_series, from_arrays, strict=True):
        assert isinstance(s, pd.Series) and s.index.equals(index) and s.dtype == np.float64
        np.testing.assert_array_equal(s.to_numpy(), a)


@ALL
def test_int_input_gives_writeable_float64_arrays(name):
    func = CASES[name][0]
    close = np.array([5, 6, 8, 7, 9, 12, 11, 10, 13, 15] * 6)
    ints = (close + 1, close - 1, close)
    for out, ref in zip(
        outputs(func(*ints)), outputs(func(*(a.astype(float) for a in ints))), strict=True
    ):
        assert out.dtype == np.float64 and out.flags.writeable
        np.testing.assert_array_equal(out, ref)


@ALL
def test_leading_nans_are_skipped(name):
    func = CASES[name][0]
    data = bars(150)
    k = 7
    padded = [np.concatenate((np.full(k, np.nan), a)) for a in data]
    for p, plain in zip(outputs(func(*padded)), outputs(func(*data)), strict=True):
        assert np.isnan(p[:k]).all()
        np.testing.assert_allclose(p[k:], plain, rtol=1e-12)


def test_ema_of_an_indicator_starts_after_its_warm_up():
    close = bars(100)[2]
    x = ft.ema(ft.sma(close, 10), 5)  # sma valid from bar 9, so the ema from bar 13
    assert np.isnan(x[:13]).all() and not np.isnan(x[13:]).any()
    assert_close(x[13:], ref_ema(ft.sma(close, 10)[9:].tolist(), 5)[4:])


# ---------------------------------------------------------------------------- windows and shapes
# name -> indicator with its window set to n (one entry per window parameter)
WINDOWED = {
    "sma": lambda x, n: ft.sma(x, n),
    "ema": lambda x, n: ft.ema(x, n),
    "rsi": lambda x, n: ft.rsi(x, n),
    "macd.fast": lambda x, n: ft.macd(x, fast=n, slow=26),
    "macd.slow": lambda x, n: ft.macd(x, fast=2, slow=n),
    "macd.signal": lambda x, n: ft.macd(x, signal=n),
    "bollinger": lambda x, n: ft.bollinger(x, n),
    "atr": lambda x, n: ft.atr(x + 1, x - 1, x, n),
    "rolling_zscore": lambda x, n: ft.rolling_zscore(x, n),
    "rolling_std": lambda x, n: ft.rolling_std(x, n),
    "momentum": lambda x, n: ft.momentum(x, n),
    "donchian": lambda x, n: ft.donchian(x + 1, x - 1, n),
}


@pytest.mark.parametrize("name", sorted(WINDOWED))
@pytest.mark.parametrize("bad", [0, -3, 2.5, 14.0, "14", None, True])
def test_bad_window_raises_value_error(name, bad):
    with pytest.raises(ValueError, match="must be a positive integer"):
        WINDOWED[name](np.arange(1.0, 50.0), bad)


@pytest.mark.parametrize("name", sorted(WINDOWED))
@pytest.mark.parametrize("length", [0, 1, 10])
def test_input_shorter_than_the_window_gives_all_nan(name, length):
    x = np.arange(1.0, length + 1.0)
    for out in outputs(WINDOWED[name](x, 40)):
        assert out.shape == (length,) and np.isnan(out).all()


def test_numpy_integer_window_and_window_of_one():
    x = bars(50)[2]
    np.testing.assert_array_equal(ft.sma(x, np.int64(1)), x)
    np.testing.assert_array_equal(ft.ema(x, 1), x)
    assert np.isnan(ft.log_returns(x[:1])).all() and ft.log_returns(x[:0]).shape == (0,)


def test_bad_inputs_raise_value_error():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="1-D"):
        ft.sma(np.ones((5, 2)), 2)
    with pytest.raises(ValueError, match="differ in length"):
        ft.atr(x, x, x[:-1], 3)
    a, b = pd.Series(x), pd.Series(x, index=range(1, 11))
    with pytest.raises(ValueError, match="different indexes"):
        ft.donchian(a, b, 3)
