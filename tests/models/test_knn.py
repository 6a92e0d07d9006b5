"""KNNRegressor / KNNClassifier: the chunked search against a brute-force reference for
every metric, weighting and block shape; ties; probabilities; persistence; the memory
budget; input errors."""

from __future__ import annotations

import itertools
import json
import tracemalloc

import numpy as np
import pytest

from tradenn.models.knn import KNNClassifier, KNNRegressor
from tradenn.models.linear import LinearRegression
from tradenn.nn.serialization import ModelFileError

METRICS = ("euclidean", "manhattan", "cosine")


def _distance_matrix(train, queries, metric):
    """Every (query, training row) distance, straight from the definitions."""
    if metric == "euclidean":
        return np.sqrt(((queries[:, None, :] - train[None, :, :]) ** 2).sum(axis=-1))
    if metric == "manhattan":
        return np.abs(queries[:, None, :] - train[None, :, :]).sum(axis=-1)
    query_norms = np.linalg.norm(queries, axis=1)[:, None]
    train_norms = np.linalg.norm(train, axis=1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        distances = 1.0 - (queries @ train.T) / (query_norms * train_norms)
    return np.where((query_norms == 0) | (train_norms == 0), 1.0, distances)


def _brute_force(train, queries, metric, k):
    """Nearest k by (distance, training index) from the full matrix."""
    distances = _distance_matrix(train, queries, metric)
    positions = np.arange(train.shape[0])
    indices = np.array([np.lexsort((positions, row))[:k] for row in distances])
    return np.take_along_axis(distances, indices, axis=1), indices


def _standardized(train, queries):
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (queries - mean) / std


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # 203 training rows and 37 queries: every block size splits both unevenly
    train = rng.normal(size=(203, 4)) * [1.0, 5.0, 0.2, 2.0] + [0.0, 3.0, -1.0, 0.5]
    queries = rng.normal(size=(37, 4)) * [1.0, 5.0, 0.2, 2.0] + [0.0, 3.0, -1.0, 0.5]
    return train, queries, rng.normal(size=203)


# budgets in MB -> blocks (queries x training rows) for k=4, F=4: 256 -> (37, 203), one
# block; 4e-3 -> (4, 21); 1e-3 -> (1, 8); 3e-4 -> (1, 2), fewer training rows than k;
# 1e-4 -> (1, 1). For k=1, 1e-3 -> (4, 5).
BUDGETS = (256.0, 4e-3, 1e-3, 3e-4, 1e-4)


@pytest.mark.parametrize(("metric", "budget", "k"), itertools.product(METRICS, BUDGETS, (1, 4)))
def test_kneighbors_matches_brute_force(data, metric, budget, k):
    train, queries, y = data
    model = KNNRegressor(k=k, metric=metric, standardize=False, max_memory_mb=budget)
    distances, indices = model.fit(train, y).kneighbors(queries)
    expected_distances, expected_indices = _brute_force(train, queries, metric, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_standardization_uses_the_training_statistics(data, metric):
    train, queries, y = data
    model = KNNRegressor(k=5, metric=metric, max_memory_mb=1e-3).fit(train, y)
    np.testing.assert_allclose(model.mean_, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.scale_, train.std(axis=0), rtol=1e-12)
    distances, indices = model.kneighbors(queries)
    expected_distances, expected_indices = _brute_force(*_standardized(train, queries), metric, 5)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-10, atol=1e-12)
    # the scaler is not refitted on queries, and rescaling a feature changes nothing
    np.testing.assert_allclose(model.mean_, train.mean(axis=0), rtol=1e-12)
    rescaled = KNNRegressor(k=5, metric=metric).fit(train * [1, 1000, 1, 1], y)
    np.testing.assert_array_equal(rescaled.kneighbors(queries * [1, 1000, 1, 1])[1], indices)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", METRICS)
def test_regression_is_the_weighted_mean_of_the_neighbours(data, weights, metric):
    train, queries, y = data
    model = KNNRegressor(k=6, weights=weights, metric=metric, max_memory_mb=3e-4)
    predictions = model.fit(train, y).predict(queries)
    distances, indices = _brute_force(*_standardized(train, queries), metric, 6)
    w = np.ones_like(distances) if weights == "uniform" else 1.0 / distances
    np.testing.assert_allclose(predictions, (w * y[indices]).sum(1) / w.sum(1), rtol=1e-10)


def test_exact_matches_take_all_the_distance_weight(data):
    train, _, y = data
    train = np.vstack([train, train[10]])  # row 203 duplicates row 10
    y = np.append(y, 5.0)
    model = KNNRegressor(k=5, weights="distance").fit(train, y)
    queries = train[[10, 50]]
    distances, indices = model.kneighbors(queries)
    assert distances[0, 0] == distances[0, 1] == 0.0  # recomputed directly, not via GEMM
    assert list(indices[0, :2]) == [10, 203]
    assert indices[1, 0] == 50 and distances[1, 0] == 0.0
    np.testing.assert_array_equal(model.predict(queries), [(y[10] + 5.0) / 2, y[50]])


def test_a_training_set_finds_itself_at_distance_zero(data):
    train, _, y = data
    for metric in METRICS:
        distances, indices = KNNRegressor(k=3, metric=metric).fit(train, y).kneighbors(train)
        np.testing.assert_array_equal(indices[:, 0], np.arange(len(train)))
        np.testing.assert_array_equal(distances[:, 0], 0.0)


@pytest.mark.parametrize(("metric", "budget"), itertools.product(METRICS, BUDGETS))
def test_ties_go_to_the_lowest_training_index(metric, budget):
    rng = np.random.default_rng(1)
    if metric == "cosine":
        # ties only between exact duplicates: different rows at a mathematically equal
        # angle can compute one rounding error apart (see the module notes)
        distinct = rng.normal(size=(12, 3))
        queries = rng.normal(size=(25, 3))
    else:
        # small integers keep every product and sum exact: equal distances are equal
        # even between different rows
        distinct = rng.integers(-2, 3, size=(12, 3)).astype(float)
        queries = rng.integers(-2, 3, size=(25, 3)).astype(float)
    train = distinct[rng.integers(0, 12, size=90)]  # many exact duplicates
    queries[0] = 0.0  # for cosine a zero vector, at distance 1 from everything: all tied
    model = KNNRegressor(k=20, metric=metric, standardize=False, max_memory_mb=budget)
    distances, indices = model.fit(train, np.zeros(90)).kneighbors(queries)
    expected_distances, expected_indices = _brute_force(train, queries, metric, 20)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, atol=1e-12)
    tied = distances[:, 1:] == distances[:, :-1]
    assert tied.any() and np.all(indices[:, 1:][tied] > indices[:, :-1][tied])


def test_classifier_probabilities_are_the_weighted_class_shares(data):
    train, queries, _ = data
    labels = np.array(["up", "flat", "down"])[np.digitize(train[:, 0], [-0.5, 0.5])]
    for weights in ("uniform", "distance"):
        model = KNNClassifier(k=7, weights=weights, max_memory_mb=1e-3).fit(train, labels)
        assert list(model.classes_) == ["down", "flat", "up"]
        distances, indices = _brute_force(*_standardized(train, queries), "euclidean", 7)
        w = np.ones_like(distances) if weights == "uniform" else 1.0 / distances
        expected = np.stack(
            [(w * (labels[indices] == c)).sum(1) / w.sum(1) for c in model.classes_], axis=1
        )
        probabilities = model.predict_proba(queries)
        np.testing.assert_allclose(probabilities, expected, rtol=1e-12)
        np.testing.assert_array_equal(
            model.predict(queries), model.classes_[np.argmax(expected, axis=1)]
        )


def test_classifier_ties_go_to_the_smallest_class():
    train = np.array([[0.0], [2.0], [10.0]])
    model = KNNClassifier(k=2, standardize=False).fit(train, [7, 3, 3])
    np.testing.assert_array_equal(model.predict_proba([[1.0]]), [[0.5, 0.5]])
    assert model.predict([[1.0]])[0] == 3
    assert model.predict([[-5.0]])[0] == 3  # 0.5 / 0.5 again
    assert KNNClassifier(k=1, standardize=False).fit(train, [7, 3, 3]).predict([[-5.0]])[0] == 7


@pytest.mark.parametrize(
    "labels",
    [
        np.array([-1, 0, 1, 1, 0, -1]),
        np.array([-1.0, 0.0, 1.0, 1.0, 0.0, -1.0]),
        np.array([True, False, True, True, False, True]),
        np.array(["a", "b", "c", "c", "b", "a"], dtype=object),
    ],
)
def test_classifier_label_types(labels):
    X = np.arange(6.0)[:, None]
    model = KNNClassifier(k=1, standardize=False).fit(X, labels)
    np.testing.assert_array_equal(model.predict(X), labels)
    np.testing.assert_array_equal(model.classes_, np.unique(labels))


def test_a_window_is_flattened(data):
    train, queries, y = data
    windows = train.reshape(203, 2, 2)
    flat = KNNRegressor(k=3).fit(train, y)
    model = KNNRegressor(k=3).fit(windows, y)
    np.testing.assert_array_equal(model.predict(queries.reshape(37, 2, 2)), flat.predict(queries))
    assert model.n_features_in_ == 4 and model.n_samples_ == 203


def test_kneighbors_takes_its_own_k(data):
    train, queries, y = data
    model = KNNRegressor(k=2).fit(train, y)
    distances, indices = model.kneighbors(queries, k=9)
    assert distances.shape == indices.shape == (37, 9)
    np.testing.assert_array_equal(indices[:, :2], model.kneighbors(queries)[1])


def _peak_allocation(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("metric", METRICS)
def test_search_allocations_stay_within_the_memory_budget(metric):
    rng = np.random.default_rng(2)
    train = rng.normal(size=(6_000, 8))
    queries = rng.normal(size=(600, 8))
    budget = 0.25  # MB; the stored training copy is allocated in fit, before tracing
    model = KNNRegressor(k=5, metric=metric, max_memory_mb=budget).fit(train, np.zeros(6_000))
    for k in (5, 100):  # with a large k the running best and the final gather dominate
        outputs = 2 * len(queries) * k * 8  # the (N, k) distances and indices
        peak = _peak_allocation(lambda k=k: model.kneighbors(queries, k=k))
        assert peak - outputs <= budget * 2**20
    small = _peak_allocation(lambda: model.kneighbors(queries))
    model.max_memory_mb = 16.0  # a larger budget gets used: the bound is the budget's doing
    assert _peak_allocation(lambda: model.kneighbors(queries)) > 10 * small


# ----------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path, data):
    train, queries, y = data
    regressor = KNNRegressor(k=4, weights="distance", metric="manhattan", max_memory_mb=2.0)
    regressor.fit(train, y).save(tmp_path / "regressor.npz")
    loaded = KNNRegressor.load(tmp_path / "regressor.npz")
    np.testing.assert_array_equal(loaded.predict(queries), regressor.predict(queries))
    assert loaded.get_config() == regressor.get_config()

    labels = np.where(y > 0, "up", "down")
    classifier = KNNClassifier(k=5, metric="cosine").fit(train, labels)
    classifier.save(tmp_path / "classifier.npz")
    loaded = KNNClassifier.load(tmp_path / "classifier.npz")
    np.testing.assert_array_equal(loaded.predict_proba(queries), classifier.predict_proba(queries))
    np.testing.assert_array_equal(loaded.predict(queries), classifier.predict(queries))
    np.testing.assert_array_equal(loaded.classes_, classifier.classes_)
    with np.load(tmp_path / "classifier.npz", allow_pickle=False) as archive:
        assert archive["train"].shape == train.shape  # the training data is the model
        assert all(archive[name].dtype != object for name in archive.files)


def test_load_rejects_files_of_other_classes_naming_them(tmp_path, data):
    train, _, y = data
    KNNRegressor(k=3).fit(train, y).save(tmp_path / "regressor.npz")
    LinearRegression().fit(train, y).save(tmp_path / "linear.npz")
    with pytest.raises(
        ModelFileError, match=r"regressor\.npz is a tradenn\.models\.KNNRegressor file, not a KNNC"
    ):
        KNNClassifier.load(tmp_path / "regressor.npz")
    with pytest.raises(
        ModelFileError, match=r"linear\.npz is a tradenn\.models\.LinearRegression file, not a KNNR"
    ):
        KNNRegressor.load(tmp_path / "linear.npz")
    with pytest.raises(
        ModelFileError,
        match=r"regressor\.npz is a tradenn\.models\.KNNRegressor file, not a Linear",
    ):
        LinearRegression.load(tmp_path / "regressor.npz")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((tmp_path / "regressor.npz").read_bytes()[:200])
    with pytest.raises(ModelFileError, match=r"damaged\.npz"):
        KNNRegressor.load(damaged)


def test_get_config_recreates_the_model_and_is_json():
    model = KNNClassifier(k=3, weights="distance", metric="cosine", standardize=False, seed=None)
    config = json.loads(json.dumps(model.get_config()))
    assert KNNClassifier(**config).get_config() == model.get_config()
    assert KNNRegressor.input_kind == KNNClassifier.input_kind == "tabular"


# ----------------------------------------------------------------------------- errors


def _one_line_error(call, match, owner="KNNRegressor"):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert "\n" not in str(error.value) and owner in str(error.value)


def test_bad_data_is_rejected_with_one_line_errors(data):
    train, queries, y = data
    model = KNNRegressor(k=3)
    bad = train.copy()
    bad[5, 2] = np.nan
    _one_line_error(lambda: model.fit(bad, y), r"X contains NaN or inf .*index \(5, ")
    _one_line_error(lambda: model.fit(train, np.where(y > 1, np.inf, y)), "y contains NaN")
    _one_line_error(lambda: model.fit(train, y[:-3]), "203 samples but y has 200")
    _one_line_error(lambda: model.fit(train[:, 0], y), "2-D .* or 3-D")
    _one_line_error(lambda: model.fit(train, y[:, None]), "y must be 1-D")
    _one_line_error(lambda: model.fit(train[:2], y[:2]), "k=3 exceeds the 2 training samples")
    _one_line_error(lambda: model.predict(queries), r"call fit\(X, y\) before kneighbors")
    _one_line_error(lambda: model.save("never.npz"), r"call fit\(X, y\) before save")
    model.fit(train, y)
    _one_line_error(lambda: model.predict(queries[:, :3]), "3 features .* fitted on 4")
    _one_line_error(lambda: model.predict(np.full((2, 4), np.inf)), "NaN or inf")
    _one_line_error(lambda: model.kneighbors(queries, k=0), "k must be a positive integer")
    _one_line_error(lambda: model.kneighbors(queries, k=204), "k=204 exceeds")
    classifier = KNNClassifier(k=1)
    _one_line_error(
        lambda: classifier.fit(train, np.where(y > 0, np.nan, 1.0)), "NaN or inf labels", "KNNC"
    )
    mixed = np.array(["a", 1] * 101 + ["a"], dtype=object)
    _one_line_error(
        lambda: classifier.fit(train, mixed), "integer, boolean, float or string", "KNNC"
    )


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"k": 0}, "k must be a positive integer, got 0"),
        ({"k": 2.0}, "k must be a positive integer"),
        ({"weights": "gaussian"}, "weights must be one of 'uniform', 'distance'"),
        ({"metric": "minkowski"}, "metric must be one of 'euclidean', 'manhattan', 'cosine'"),
        ({"standardize": 1}, "standardize must be True or False"),
        ({"max_memory_mb": 0}, "max_memory_mb must be a finite number > 0"),
        ({"max_memory_mb": np.inf}, "max_memory_mb must be a finite number > 0"),
        ({"seed": "x"}, "seed must be a non-negative integer or None"),
    ],
)
def test_bad_hyperparameters_are_rejected(arguments, match):
    _one_line_error(lambda: KNNRegressor(**arguments), match)
