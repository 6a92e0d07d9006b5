"""make_windows and the targets: alignment, warm-up handling, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.features.windows import direction_target, make_windows, return_target


@pytest.fixture(scope="module")
def frame():
    return data.gbm(300, seed=5)


def toy_features(n=40, nan_rows=()):
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    values = np.arange(n * 2, dtype=float).reshape(n, 2)
    values[list(nan_rows)] = np.nan
    return pd.DataFrame(values, index=index, columns=["a", "b"])


def test_return_target_is_the_realized_h_bar_log_return(frame):
    close = frame["Close"].to_numpy()
    for h in (1, 3):
        target = return_target(frame, h)
        assert np.isnan(target.iloc[:h]).all()
        np.testing.assert_allclose(target.iloc[h:], np.log(close[h:] / close[:-h]), rtol=1e-13)
        assert target.index.equals(frame.index)
    direction = direction_target(frame["Close"], 2)
    np.testing.assert_array_equal(direction.iloc[2:], np.sign(np.log(close[2:] / close[:-2])))


def test_windows_pair_the_rows_up_to_t_with_the_target_h_bars_later():
    features = toy_features()
    target = pd.Series(np.arange(40, dtype=float) * 10, index=features.index)
    w = make_windows(features, target, lookback=4, horizon=2)
    assert w.X.shape == (37, 4, 2) and w.lookback == 4
    for i in (0, 5, 36):
        p = w.position[i]
        assert w.index[i] == features.index[p]
        np.testing.assert_array_equal(w.X[i], features.to_numpy()[p - 3 : p + 1])
        if p + 2 < 40:
            assert w.y[i] == target.iloc[p + 2]
            assert w.target_index[i] == features.index[p + 2]
        else:
            assert np.isnan(w.y[i]) and pd.isna(w.target_index[i])
    assert w.labeled.sum() == 35  # the last two decisions still wait for their outcome
    np.testing.assert_array_equal(w.flat()[3], w.X[3].ravel())


def test_windows_skip_any_window_that_touches_a_nan_row():
    features = toy_features(nan_rows=(0, 1, 20))
    w = make_windows(features, None, lookback=3)
    kept = set(w.position.tolist())
    assert min(kept) == 4  # rows 2, 3, 4 are the first full finite window
    assert not kept & {20, 21, 22}  # windows containing row 20
    assert {19, 23} <= kept
    assert np.isfinite(w.X).all() and np.isnan(w.y).all()


def test_subsets_keep_every_field_aligned():
    w = make_windows(toy_features(), None, lookback=2)
    part = w.take(np.array([3, 7]))
    assert part.index.equals(w.index[[3, 7]])
    np.testing.assert_array_equal(part.X, w.X[[3, 7]])
    assert len(part) == 2


def test_no_window_or_known_target_changes_when_the_future_changes(frame):
    """Perturb every bar after a cut: windows decided up to it and targets realized up to it
    stay bit-identical."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"ret": return_target(frame), "level": np.log(frame["Close"])})
    base = make_windows(features, return_target(frame, 2), lookback=5, horizon=2)
    for cut in (50, 151, 280):
        changed = frame.copy()
        factor = rng.uniform(0.5, 1.5, size=len(frame) - cut - 1)
        for col in ("Open", "High", "Low", "Close"):
            changed.iloc[cut + 1 :, changed.columns.get_loc(col)] *= factor
        f2 = pd.DataFrame({"ret": return_target(changed), "level": np.log(changed["Close"])})
        other = make_windows(f2, return_target(changed, 2), lookback=5, horizon=2)
        decided = base.index <= frame.index[cut]
        np.testing.assert_array_equal(base.X[decided], other.X[decided])
        known = base.labeled & (base.target_index <= frame.index[cut])
        np.testing.assert_array_equal(base.y[known], other.y[known])
        # and the check is not vacuous: later targets did change
        later = base.labeled & (base.target_index > frame.index[cut])
        assert not np.array_equal(base.y[later], other.y[later])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": 0}, "lookback must be a positive integer"),
        ({"lookback": 2, "horizon": 0}, "horizon must be a positive integer"),
        ({"lookback": 2.5}, "lookback must be a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_windows(toy_features(), None, **kwargs)


def test_misaligned_target_is_rejected():
    features = toy_features()
    target = pd.Series(1.0, index=features.index[::-1])
    with pytest.raises(ValueError, match="share one index"):
        make_windows(features, target, lookback=2)
    with pytest.raises(ValueError, match="positive"):
        return_target(pd.Series([1.0, 0.0, 2.0]))
