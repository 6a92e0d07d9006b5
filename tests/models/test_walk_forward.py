"""walk_forward: the fold schedule, purging, no training on test data, caching, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradenn import data
from tradenn.features.windows import make_windows, return_target
from tradenn.models.walk_forward import walk_forward, walk_forward_folds


class LeastSquares:
    """A minimal OLS model (tabular) used to exercise walk_forward without other models."""

    input_kind = "tabular"

    def __init__(self, ridge=0.0):
        self.ridge = ridge
        self.fits = 0

    def get_config(self):
        return {"ridge": self.ridge}

    def fit(self, X, y):
        A = np.column_stack([np.ones(len(X)), X])
        self.w = np.linalg.lstsq(A, y, rcond=None)[0]
        self.seen = (X.copy(), y.copy())
        return self

    def predict(self, X):
        return np.column_stack([np.ones(len(X)), X]) @ self.w


class SequenceShape:
    input_kind = "sequence"

    def fit(self, X, y):
        assert X.ndim == 3
        self.mean = y.mean()
        return self

    def predict(self, X):
        assert X.ndim == 3
        return np.full(len(X), self.mean)


@pytest.fixture(scope="module")
def frame():
    return data.ornstein_uhlenbeck(700, half_life=5, seed=2)


def returns_only(frame):
    return pd.DataFrame({"ret": return_target(frame), "level": np.log(frame["Close"])})


@pytest.mark.parametrize("mode", ["expanding", "rolling"])
@pytest.mark.parametrize(("horizon", "embargo"), [(1, 0), (3, 0), (2, 5)])
def test_no_fold_ever_trains_on_a_test_timestamp(frame, mode, horizon, embargo):
    result = walk_forward(
        LeastSquares,
        frame,
        features=returns_only,
        lookback=4,
        horizon=horizon,
        train_size=200,
        test_size=90,
        mode=mode,
        embargo=embargo,
        scale=False,
    )
    bars = frame.index
    for fold, train, realized in zip(
        result.folds.itertuples(), result.train_index, result.train_target_index, strict=True
    ):
        test = result.predictions.loc[fold._5 : fold._6].index  # Test Start .. Test End
        assert not train.isin(result.predictions.index[result.predictions.index >= test[0]]).any()
        # every training target was known `embargo` bars before the first test decision
        last_known = bars[bars.get_loc(test[0]) - embargo]
        assert realized.max() <= last_known
        assert train.max() < test[0]
        if mode == "rolling":
            assert len(train) <= 200
    tested = result.predictions.index
    assert tested.is_monotonic_increasing and tested.is_unique
    assert len(result.folds) == int(np.ceil(len(tested) / 90))


def test_purging_is_exactly_the_unrealized_targets(frame):
    w = make_windows(returns_only(frame), return_target(frame, 3), lookback=2, horizon=3)
    folds = walk_forward_folds(w, train_size=100, test_size=50)
    # the first test sample is #100; samples 98 and 99 (targets 1-2 bars after it) are purged,
    # sample 97's target is realized exactly at the decision bar and may be used
    assert folds[0].train[-1] == 97 and len(folds[0].train) == 98
    assert folds[1].train[-1] == 147
    rolling = walk_forward_folds(w, train_size=100, test_size=50, mode="rolling")
    assert len(rolling[3].train) == 100 and rolling[3].train[-1] == 247


def test_predictions_equal_a_hand_run_of_each_fold(frame):
    result = walk_forward(
        LeastSquares,
        frame,
        features=returns_only,
        lookback=3,
        train_size=300,
        test_size=100,
        scale=False,
        keep_models=True,
    )
    w = make_windows(returns_only(frame), return_target(frame), lookback=3)
    for fold, model in zip(result.folds.itertuples(), result.models, strict=True):
        start = w.index.get_loc(fold._5)
        stop = w.index.get_loc(fold._6) + 1
        train = np.flatnonzero(w.labeled[:start] & (w.position[:start] + 1 <= w.position[start]))
        manual = LeastSquares().fit(w.flat()[train], w.y[train])
        np.testing.assert_array_equal(model.seen[0], w.flat()[train])
        expected = manual.predict(w.flat()[start:stop])
        np.testing.assert_allclose(result.predictions.loc[fold._5 : fold._6], expected)
        assert result.benchmark.loc[fold._5] == pytest.approx(w.y[train].mean())
    # OU prices mean-revert: a linear model of the log price level beats the zero forecast
    assert result.metrics["OOS R2 (zero)"] > 0
    assert result.metrics["N"] == result.actuals.notna().sum()
    assert result.actuals.isna().sum() == 1  # the last decision's outcome is unknown


def test_the_schedule_is_anchored_so_truncated_data_repeats_it(frame):
    cache = {}
    kwargs = dict(features=returns_only, lookback=3, train_size=250, test_size=60, scale=False)
    full = walk_forward(LeastSquares, frame, cache=cache, **kwargs)
    assert len(cache) == len(full.folds) and full.training_seconds > 0
    cut = walk_forward(LeastSquares, frame.iloc[:500], cache=cache, **kwargs)
    # same folds up to the cut, every model served from the cache
    assert cut.training_seconds == 0
    pd.testing.assert_series_equal(
        cut.predictions, full.predictions.loc[: cut.predictions.index[-1]]
    )
    changed = frame.copy()
    changed.iloc[:100, changed.columns.get_loc("Close")] *= 1.01  # different training data
    walk_forward(LeastSquares, changed, cache=cache, **kwargs)
    assert len(cache) > len(full.folds)


def test_sequence_models_get_windows_and_tabular_models_get_rows(frame):
    result = walk_forward(
        SequenceShape,
        frame,
        features=returns_only,
        lookback=5,
        train_size=300,
        test_size=200,
        scale=False,
    )
    assert result.predictions.notna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_size": 0}, "train_size must be a positive integer"),
        ({"test_size": -1}, "test_size must be a positive integer"),
        ({"mode": "anchored"}, "mode must be 'expanding' or 'rolling'"),
        ({"embargo": -2}, "embargo must be a non-negative integer"),
        ({"train_size": 5000}, "leave nothing to test"),
        ({"target": "price"}, "target must be a Series, 'return' or 'direction'"),
    ],
)
def test_bad_arguments_are_clear(frame, kwargs, message):
    settings = dict(features=returns_only, lookback=2, train_size=100, test_size=50, scale=False)
    with pytest.raises(ValueError, match=message):
        walk_forward(LeastSquares, frame, **{**settings, **kwargs})
