"""StandardScaler and RobustScaler: numpy references, shapes, round trips, config, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradenn.features.scaling import RobustScaler, StandardScaler, scaler_from_config

SCALERS = [StandardScaler, RobustScaler]


@pytest.fixture
def X() -> np.ndarray:
    """(N, T, F) windows whose features have very different centres and spreads."""
    rng = np.random.default_rng(0)
    return rng.standard_t(3, size=(64, 10, 4)) * [1e-3, 1.0, 50.0, 2.0] + [0.0, -3.0, 1e4, 7.0]


def reference(kind: type, x2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and spread per column, written out from numpy's definitions."""
    if kind is StandardScaler:
        center = x2d.sum(axis=0) / len(x2d)
        return center, np.sqrt(((x2d - center) ** 2).sum(axis=0) / len(x2d))
    ordered = np.sort(x2d, axis=0)
    return np.median(x2d, axis=0), np.quantile(ordered, 0.75, axis=0) - np.quantile(
        ordered, 0.25, axis=0
    )


# ---------------------------------------------------------------------------- values
@pytest.mark.parametrize("kind", SCALERS)
def test_statistics_match_numpy_reference_over_all_but_the_last_axis(kind, X):
    scaler = kind().fit(X)
    center, spread = reference(kind, X.reshape(-1, 4))
    np.testing.assert_allclose(scaler.center, center, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scaler.scale, spread, rtol=1e-12)
    expected = (X - center) / spread
    np.testing.assert_allclose(scaler.transform(X), expected, rtol=1e-12, atol=1e-12)


def test_standardized_training_data_has_zero_mean_unit_std(X):
    Z = StandardScaler().fit_transform(X).reshape(-1, 4)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)


def test_robust_scaled_training_data_has_zero_median_unit_iqr(X):
    Z = RobustScaler().fit_transform(X).reshape(-1, 4)
    q25, q50, q75 = np.percentile(Z, [25, 50, 75], axis=0)
    np.testing.assert_allclose(q50, 0.0, atol=1e-12)
    np.testing.assert_allclose(q75 - q25, 1.0, rtol=1e-12)


def test_robust_scaler_ignores_an_outlier_that_moves_the_standard_scaler():
    x = np.r_[np.arange(99.0), 1e6]
    robust, standard = RobustScaler().fit(x), StandardScaler().fit(x)
    assert robust.center[0] == pytest.approx(49.5)
    assert robust.scale[0] == pytest.approx(np.percentile(x, 75) - np.percentile(x, 25))
    assert standard.center[0] > 1e4


@pytest.mark.parametrize("kind", SCALERS)
def test_transform_uses_the_training_statistics_on_new_data(kind, X):
    train, test = X[:40], X[40:] * 3.0 + 1.0
    scaler = kind().fit(train)
    center, spread = reference(kind, train.reshape(-1, 4))
    np.testing.assert_allclose(scaler.transform(test), (test - center) / spread, rtol=1e-12)


@pytest.mark.parametrize("kind", SCALERS)
def test_zero_spread_feature_gets_scale_one(kind):
    x = np.column_stack([np.full(20, 0.1), np.linspace(0, 1, 20), np.r_[np.zeros(19), 5.0]])
    scaler = kind().fit(x)
    assert scaler.scale[0] == 1.0
    Z = scaler.transform(x)
    assert np.isfinite(Z).all()
    np.testing.assert_array_equal(Z[:, 0], 0.0)
    if kind is RobustScaler:  # the IQR of a mostly-zero feature is 0 though it is not constant
        assert scaler.scale[2] == 1.0


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("kind", SCALERS)
@pytest.mark.parametrize("shape", [(50,), (50, 3), (20, 6, 3)])
def test_inverse_transform_round_trips_and_keeps_shape(kind, shape):
    x = np.random.default_rng(1).normal(5.0, 2.0, size=shape)
    scaler = kind().fit(x)
    Z = scaler.transform(x)
    assert Z.shape == shape and Z.dtype == np.float64
    np.testing.assert_allclose(scaler.inverse_transform(Z), x, rtol=1e-13)


@pytest.mark.parametrize("kind", SCALERS)
def test_fit_on_windows_transforms_rows_alike(kind, X):
    scaler = kind().fit(X)
    np.testing.assert_array_equal(scaler.transform(X[:, -1, :]), scaler.transform(X)[:, -1, :])
    assert scaler.n_features == 4


def test_one_dimensional_input_is_one_feature():
    x = np.arange(10.0)
    scaler = StandardScaler().fit(x)
    assert scaler.n_features == 1
    np.testing.assert_allclose(scaler.transform(x), (x - 4.5) / np.std(x))
    np.testing.assert_allclose(scaler.transform(x[:, None])[:, 0], scaler.transform(x))


def test_nan_passes_through_transform():
    scaler = StandardScaler().fit(np.arange(6.0).reshape(3, 2))
    Z = scaler.transform([[np.nan, 1.0]])
    assert np.isnan(Z[0, 0]) and np.isfinite(Z[0, 1])


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize("kind", SCALERS)
def test_config_json_round_trip_is_bit_identical(kind, X):
    scaler = kind().fit(X * np.pi)
    config = json.loads(json.dumps(scaler.get_config()))
    assert config["class"] == kind.__name__
    assert all(type(v) is float for v in config["center"] + config["scale"])
    for restored in (kind.from_config(config), scaler_from_config(config)):
        assert type(restored) is kind
        assert restored.center.tobytes() == scaler.center.tobytes()
        assert restored.scale.tobytes() == scaler.scale.tobytes()
        assert restored.transform(X).tobytes() == scaler.transform(X).tobytes()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"class": "RobustScaler", "center": [0.0], "scale": [1.0]}, "config is for 'RobustScal"),
        ({"class": "StandardScaler", "center": [0.0]}, "must be a dict with class, center, scale"),
        ({"class": "StandardScaler", "center": [0.0, 1.0], "scale": [1.0]}, "center has 2 values"),
        ({"class": "StandardScaler", "center": [0.0], "scale": [0.0]}, "scale must be positive"),
        ({"class": "StandardScaler", "center": [], "scale": []}, "non-empty list of finite"),
        ({"class": "StandardScaler", "center": ["a"], "scale": [1.0]}, "center must be a list"),
        ({"class": "StandardScaler", "center": [float("nan")], "scale": [1.0]}, "finite numbers"),
    ],
)
def test_bad_configs_are_rejected(config, message):
    with pytest.raises(ValueError, match=f"StandardScaler.from_config: .*{message}"):
        StandardScaler.from_config(config)


def test_scaler_from_config_rejects_unknown_class():
    with pytest.raises(ValueError, match="scaler_from_config: class must be one of"):
        scaler_from_config({"class": "MinMaxScaler", "center": [0.0], "scale": [1.0]})


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kind", SCALERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_rejects_nan_and_inf(kind, bad):
    x = np.ones((5, 3))
    x[2, 1] = bad
    with pytest.raises(
        ValueError, match=f"{kind.__name__}.fit: X has NaN or inf values in feature 1"
    ):
        kind().fit(x)


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "get_config"])
def test_use_before_fit_is_rejected(method):
    args = () if method == "get_config" else (np.ones((2, 2)),)
    with pytest.raises(ValueError, match=f"RobustScaler.{method}: the scaler is not fitted"):
        getattr(RobustScaler(), method)(*args)


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
@pytest.mark.parametrize("shape", [(4, 2), (4, 5, 2), (4,)])
def test_different_feature_count_is_rejected(method, shape):
    scaler = StandardScaler().fit(np.random.default_rng(2).normal(size=(10, 3)))
    features = 1 if len(shape) == 1 else shape[-1]
    with pytest.raises(
        ValueError, match=f"StandardScaler.{method}: X has {features} features, .* fitted on 3$"
    ):
        getattr(scaler, method)(np.zeros(shape))


@pytest.mark.parametrize("X", [np.empty((0, 3)), 3.0, [["a", "b"]]])
def test_fit_rejects_empty_scalar_and_non_numeric(X):
    with pytest.raises(ValueError, match=r"StandardScaler.fit: X (is empty|must be)"):
        StandardScaler().fit(X)
