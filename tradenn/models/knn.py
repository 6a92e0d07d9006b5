"""k-nearest-neighbour regression and classification with an exact, memory-bounded search.

::

    from tradenn.models.knn import KNNClassifier, KNNRegressor

    model = KNNRegressor(k=10, weights="distance", metric="euclidean").fit(X_train, y_train)
    y_hat = model.predict(X_test)                       # (N,)
    distances, indices = model.kneighbors(X_test)       # (N, k) each, nearest first
    clf = KNNClassifier(k=15).fit(X_train, np.sign(next_returns))
    clf.classes_, clf.predict_proba(X_test), clf.predict(X_test)

The search
----------
The training rows are the model. ``fit`` stores one float64 copy of them, standardized
in place with the training mean and standard deviation when ``standardize`` (the scaler
comes from the training data only and is applied to every query). Queries are processed
``q`` rows at a time against ``t`` training rows at a time; only the running ``k`` best
``(value, index)`` per query survive a block, so the working memory is set by
``max_memory_mb`` and not by the size of the training set::

    for each block of q queries:                      best = k x (inf, none) per query
        for each block of t training rows (in index order):
            R = ranking values of the (q, t) pairs
            candidates = entries of R below the query's current k-th best value
            if few (<= 1/8 of the block): take them (np.flatnonzero)
            else: the block's own k best per row (np.argpartition)
            merge candidates with best, order by (value, training index), keep k
        recompute the k distances directly, order by (distance, training index)

Ranking values are monotone in the distance and cheap to compute in one matrix product:

* ``euclidean``: ``|b|^2 - 2 a.b`` (``|a - b|^2`` minus the per-query constant ``|a|^2``),
  float64 GEMM with precomputed ``|b|^2``. The returned distances of the chosen ``k`` are
  recomputed as ``sqrt(sum (a - b)^2)``, so they do not suffer the cancellation of the
  expanded form (an exact duplicate is at distance exactly 0).
* ``cosine``: ``-a.b / (|a| |b|)``; distance ``1 - cos``, returned as ``|a/|a| - b/|b||^2 / 2``
  (accurate for nearly parallel vectors). A zero vector is at distance 1 from everything.
* ``manhattan``: the distance itself, accumulated one feature at a time over a few query
  rows at a time (a cache-sized temporary rather than a (q, t, F) broadcast).

Ties: neighbours at equal distance are ordered by training index, lowest first, including
at the k-th place (a block whose k-th value is tied is re-ranked with a stable sort).
Distances are floating-point numbers: candidates are ranked by the expanded euclidean and
cosine forms and the chosen k are ordered by their directly recomputed distances, so two
different points at mathematically equal distance may compute one rounding error (about
1e-16 relative) apart and be ordered by that. Exact duplicates of a training row always tie.

Memory: besides the stored training copy (``8 N F`` bytes, plus ``8 N`` for the norms of the
euclidean and cosine metrics; manhattan keeps none), the
(n_queries, k) outputs and a float64 copy of queries given in another dtype, a search
allocates about ``max_memory_mb`` at most:

* a block holds ``q t <= budget / 48 B`` pairs, with at most 25 B per pair live at once
  (value block 8, mask 1, then the larger of a dense block's argpartition and tie re-ranking
  temporaries, 16, and a sparse block's candidates, at most ``q t / 8`` at about 80 B):
  about half the budget;
* the cosine (rescaled) or manhattan (transposed) copy of a block's training rows takes
  ``8 F`` bytes per row, ``t <= budget / (32 F) B``;
* the running best and its merges take about 64 B per entry, ``q k <= budget / 256 B``;
* once the scan is done its block is freed and the final recompute gathers
  ``q k (F + 8)`` float64 values, ``<= budget``.

A block has at least one query and one training row, so a budget below a few kilobytes is
exceeded by that much.

Weights: ``"uniform"`` averages the ``k`` neighbours; ``"distance"`` weights them by
``1 / distance``, except that when some neighbours are at distance exactly 0 those exact
matches share all the weight equally (the others get none).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tradenn import checks
from tradenn.nn.serialization import ModelFileError

from .common import (
    as_design,
    as_target,
    check_target_shape,
    load_npz,
    save_npz,
)

__all__ = ["KNNClassifier", "KNNRegressor"]

_METRICS = ("euclidean", "manhattan", "cosine")
_WEIGHTS = ("uniform", "distance")
# memory per (query, training row) pair of a block and per running-best entry of a query;
# see "Memory" in the module notes
_BYTES_PER_PAIR = 48
_BYTES_PER_BEST = 256
_MAX_QUERY_ROWS = 1024  # enough rows for an efficient matrix product, few enough for long t
_SPARSE_SHARE = 8  # take the candidates directly when at most 1/8 of a block qualifies
_CACHE_BYTES = 1 << 20  # working set of one manhattan pass (two (rows, t) float64 arrays)


class _KNNBase:
    """Shared by :class:`KNNRegressor` and :class:`KNNClassifier`: storage, the search,
    weights, persistence. Subclasses encode targets and aggregate neighbours."""

    input_kind = "tabular"
    _target_arrays: tuple[str, ...] = ("targets",)

    def __init__(
        self,
        k: int = 5,
        weights: str = "uniform",
        metric: str = "euclidean",
        standardize: bool = True,
        max_memory_mb: float = 256.0,
        seed: int | None = 0,
    ) -> None:
        owner = type(self).__name__
        self.k = checks.positive_int(k, "k", owner)
        self.weights = checks.choice(weights, "weights", _WEIGHTS, owner)
        self.metric = checks.choice(metric, "metric", _METRICS, owner)
        if not isinstance(standardize, (bool, np.bool_)):
            raise ValueError(f"{owner}: standardize must be True or False, got {standardize!r}")
        self.standardize = bool(standardize)
        self.max_memory_mb = checks.positive_number(max_memory_mb, "max_memory_mb", owner)
        self.seed = checks.seed(seed, owner)
        self._train: np.ndarray | None = None
        self._targets: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any) -> _KNNBase:
        """Store the (standardized) training rows ``X`` (N, F) or (N, T, F) and targets ``y``
        (N,); returns ``self``. Makes one float64 copy of ``X``."""
        owner = type(self).__name__
        train = as_design(X, owner, copy=True)
        targets = self._encode_targets(y, len(train))
        if self.k > len(train):
            raise ValueError(f"{owner}: k={self.k} exceeds the {len(train)} training samples")
        features = train.shape[1]
        self.mean_, self.scale_ = np.zeros(features), np.ones(features)
        if self.standardize:
            # in place, so that the copy above is the only training-sized allocation
            self.mean_ = train.mean(axis=0)
            train -= self.mean_
            scale = np.sqrt(np.einsum("ij,ij->j", train, train) / len(train))
            self.scale_ = np.where(scale > 0, scale, 1.0)  # constant columns stay 0
            train /= self.scale_
        self._train, self._targets = train, targets
        self._prepare_search()
        return self

    def _encode_targets(self, y: Any, n_samples: int) -> np.ndarray:
        raise NotImplementedError

    def _prepare_search(self) -> None:
        """Per-training-row norms the ranking values need."""
        self._squared_norms = self._inverse_norms = None
        if self.metric == "manhattan":
            return
        squared = np.einsum("ij,ij->i", self._train, self._train)
        if self.metric == "euclidean":
            self._squared_norms = squared
        else:
            norms = np.sqrt(squared)
            self._inverse_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)

    # ------------------------------------------------------------------ neighbours

    @property
    def n_samples_(self) -> int:
        """Number of stored training rows."""
        self._check_fitted("n_samples_")
        return len(self._train)

    @property
    def n_features_in_(self) -> int:
        """Number of (flattened) features seen in ``fit``."""
        self._check_fitted("n_features_in_")
        return self._train.shape[1]

    def kneighbors(self, X: Any, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` (default: the model's) nearest training rows of each row of ``X``.

        Returns
        -------
        distances : ndarray (N, k)
            In the model's metric, on standardized features when ``standardize``; ascending.
        indices : ndarray (N, k)
            Positions in the training data; equal distances in increasing index order.
        """
        owner = type(self).__name__
        self._check_fitted("kneighbors")
        k = self.k if k is None else checks.positive_int(k, "k", owner)
        if k > len(self._train):
            raise ValueError(f"{owner}: k={k} exceeds the {len(self._train)} training samples")
        queries = as_design(X, owner, self._train.shape[1])
        n_queries = len(queries)
        query_rows, train_rows = self._block_shape(n_queries, k)
        distances = np.empty((n_queries, k))
        indices = np.empty((n_queries, k), dtype=np.intp)
        for start in range(0, n_queries, query_rows):
            block = (queries[start : start + query_rows] - self.mean_) / self.scale_
            stop = start + len(block)
            distances[start:stop], indices[start:stop] = self._search(block, k, train_rows)
        return distances, indices

    def _block_shape(self, n_queries: int, k: int) -> tuple[int, int]:
        """Rows ``(q, t)`` of a search block within the memory budget (module notes)."""
        budget = self.max_memory_mb * 2**20
        pairs = max(1, int(budget // _BYTES_PER_PAIR))
        features = self._train.shape[1]
        per_query = max(_BYTES_PER_BEST * k, 8 * k * (features + 8))
        query_rows = min(n_queries, _MAX_QUERY_ROWS, math.isqrt(pairs), int(budget // per_query))
        query_rows = max(1, query_rows)
        # a block's rescaled (cosine) or transposed (manhattan) copy: 8 F bytes per row
        train_rows = min(len(self._train), pairs // query_rows, int(budget // (32 * features)))
        return query_rows, max(1, train_rows)

    def _search(
        self, queries: np.ndarray, k: int, train_rows: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact k nearest training rows of the standardized ``queries`` (q, F)."""
        best_values, best_indices = self._scan(self._ranking_queries(queries), k, train_rows)
        distances = self._distances(queries, best_indices, best_values)
        order = np.lexsort((best_indices, distances), axis=-1)
        return (
            np.take_along_axis(distances, order, axis=1),
            np.take_along_axis(best_indices, order, axis=1),
        )

    def _scan(
        self, ranking_queries: np.ndarray, k: int, train_rows: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k smallest ranking values (q, k) of each query and their training indices,
        ``train_rows`` training rows at a time (its block buffers die with the call)."""
        n_train = len(self._train)
        q = len(ranking_queries)
        best_values = np.full((q, k), np.inf)
        best_indices = np.full((q, k), n_train, dtype=np.intp)  # sentinel sorts last
        block_buffer = np.empty(q * min(train_rows, n_train))
        mask_buffer = np.empty(len(block_buffer), dtype=bool)
        for low in range(0, n_train, train_rows):
            high = min(low + train_rows, n_train)
            t = high - low
            values = block_buffer[: q * t].reshape(q, t)
            self._ranking_values(ranking_queries, low, high, out=values)
            below = mask_buffer[: q * t].reshape(q, t)
            np.less(values, best_values[:, -1:], out=below)
            count = np.count_nonzero(below)
            if count == 0:
                continue
            if count * _SPARSE_SHARE <= q * t:
                flat = np.flatnonzero(below)
                rows, columns = np.divmod(flat, t)
                candidates = values.ravel()[flat]
            else:
                rows, columns, candidates = _block_k_best(values, k)
            _merge(best_values, best_indices, rows, columns + low, candidates)
        return best_values, best_indices

    def _ranking_queries(self, queries: np.ndarray) -> np.ndarray:
        """Queries prepared so one product gives the ranking values (see the module notes)."""
        if self.metric == "euclidean":
            return -2.0 * queries
        if self.metric == "cosine":
            return -_unit_rows(queries)
        return queries

    def _ranking_values(self, queries: np.ndarray, low: int, high: int, out: np.ndarray) -> None:
        """Ranking values of every (query, training row ``low:high``) pair into ``out``."""
        train = self._train[low:high]
        if self.metric == "euclidean":
            np.matmul(queries, train.T, out=out)  # -2 a.b
            out += self._squared_norms[low:high]
        elif self.metric == "cosine":
            unit = train * self._inverse_norms[low:high, None]
            np.matmul(queries, unit.T, out=out)  # -cos(a, b)
        else:
            columns = np.ascontiguousarray(train.T)  # (F, t): each feature contiguous
            step = max(1, _CACHE_BYTES // (16 * (high - low)))
            difference = np.empty((min(step, len(queries)), high - low))
            # a few query rows at a time, so that their accumulator and the temporary stay
            # in cache over the F passes (4x faster than whole-block passes)
            for start in range(0, len(queries), step):
                rows, accumulator = queries[start : start + step], out[start : start + step]
                temporary = difference[: len(rows)]
                accumulator.fill(0.0)
                for feature, values in enumerate(columns):
                    np.subtract.outer(rows[:, feature], values, out=temporary)
                    np.abs(temporary, out=temporary)
                    accumulator += temporary

    def _distances(
        self, queries: np.ndarray, indices: np.ndarray, values: np.ndarray
    ) -> np.ndarray:
        """Distances of the chosen neighbours (q, k), computed directly from the rows."""
        if self.metric == "manhattan":
            return values
        neighbours = self._train[indices]  # (q, k, F)
        if self.metric == "euclidean":
            neighbours -= queries[:, None, :]
            return np.sqrt(np.einsum("qkf,qkf->qk", neighbours, neighbours))
        neighbours *= self._inverse_norms[indices][..., None]
        neighbours -= _unit_rows(queries)[:, None, :]
        distances = 0.5 * np.einsum("qkf,qkf->qk", neighbours, neighbours)
        zero = (self._inverse_norms[indices] == 0) | ~np.any(queries, axis=1)[:, None]
        return np.where(zero, 1.0, np.minimum(distances, 2.0))

    def _neighbour_weights(self, distances: np.ndarray) -> np.ndarray:
        """Weights (N, k): ones, or ``1 / d`` with exact matches taking all the weight."""
        if self.weights == "uniform":
            return np.ones_like(distances)
        exact = distances == 0
        with np.errstate(divide="ignore"):
            weights = 1.0 / distances
        matched = exact.any(axis=1)
        weights[matched] = exact[matched]
        return weights

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {
            "k": self.k,
            "weights": self.weights,
            "metric": self.metric,
            "standardize": self.standardize,
            "max_memory_mb": self.max_memory_mb,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write hyperparameters, scaler and the stored training data (the model) to one
        ``.npz`` (no pickle)."""
        self._check_fitted("save")
        arrays = {"train": self._train, "mean": self.mean_, "scale": self.scale_}
        save_npz(path, self, {**arrays, **self._saved_targets()})

    def _saved_targets(self) -> dict[str, np.ndarray]:
        return {"targets": self._targets}

    @classmethod
    def load(cls, path: str | os.PathLike) -> _KNNBase:
        """Read a model written by :meth:`save`."""
        names = ("train", "mean", "scale", *cls._target_arrays)
        model, arrays = load_npz(cls, path, names)
        train = arrays["train"]
        if (
            train.ndim != 2
            or train.dtype != np.float64
            or arrays["mean"].shape != (train.shape[1],)
            or arrays["scale"].shape != (train.shape[1],)
            or arrays["targets"].shape != (train.shape[0],)
            or model.k > len(train)
        ):
            raise ModelFileError(f"{path}: the {cls.__name__} arrays do not fit together")
        model._train = np.ascontiguousarray(train)
        model.mean_, model.scale_ = arrays["mean"], arrays["scale"]
        model._restore_targets(arrays, path)
        model._prepare_search()
        return model

    def _restore_targets(self, arrays: dict[str, np.ndarray], path: Any) -> None:
        self._targets = arrays["targets"]

    def _check_fitted(self, what: str) -> None:
        if self._train is None:
            raise ValueError(f"{type(self).__name__}: call fit(X, y) before {what}")

    def __repr__(self) -> str:
        state = f"{len(self._train)} training rows" if self._train is not None else "not fitted"
        return (
            f"{type(self).__name__}(k={self.k}, weights={self.weights!r}, "
            f"metric={self.metric!r}, {state})"
        )


class KNNRegressor(_KNNBase):
    """k-nearest-neighbour regression: the (weighted) mean target of the ``k`` nearest rows.

    On rows standardized with the training mean and (population) standard deviation,
    ``x~ = (x - mean_) / scale_``, with ``N_k(a)`` the ``k`` training rows nearest to the
    query ``a`` (ties in distance to the lowest training index)::

        d(a, x) = |a - x|_2,  sum_j |a_j - x_j|  or  1 - a'x / (|a| |x|)
        w_j     = 1  or  1 / d_j    (if some d_j = 0: w_j = [d_j = 0])
        y_hat   = sum_{j in N_k(a)} w_j y_j / sum_{j in N_k(a)} w_j

    The search is exact and blocked, ``Theta(n_queries n_train F)`` arithmetic within
    ``max_memory_mb`` of working memory (module notes). See docs/forecasting.md, section
    "KNN: the maths".

    Parameters
    ----------
    k : int
        Neighbours per prediction (at most the number of training rows).
    weights : {"uniform", "distance"}
        Equal weights, or ``1 / distance`` (exact matches at distance 0 take all the weight).
    metric : {"euclidean", "manhattan", "cosine"}
        Distance between (standardized) feature vectors.
    standardize : bool
        Scale every feature to zero mean and unit variance with training statistics
        (``mean_``, ``scale_``; a constant feature keeps scale 1).
    max_memory_mb : float
        Working memory of a search, beyond the stored training rows (see the module notes).
    seed : int, optional
        Accepted for the common model interface; the search is deterministic.

    Attributes
    ----------
    mean_, scale_ : ndarray (F,)
        The scaler (zeros and ones when ``standardize=False``).
    n_samples_, n_features_in_ : int
        Stored training rows and (flattened) features.
    """

    def _encode_targets(self, y: Any, n_samples: int) -> np.ndarray:
        return as_target(y, n_samples, type(self).__name__)

    def predict(self, X: Any) -> np.ndarray:
        """Weighted mean target of the ``k`` nearest training rows, (N,)."""
        distances, indices = self.kneighbors(X)
        weights = self._neighbour_weights(distances)
        return (weights * self._targets[indices]).sum(axis=1) / weights.sum(axis=1)


class KNNClassifier(_KNNBase):
    """k-nearest-neighbour classification: the class with the largest (weighted) share
    among the ``k`` nearest rows.

    Labels may be integers, booleans, finite floats (e.g. ``np.sign`` of returns) or
    strings; ``classes_`` holds them sorted, and :meth:`predict` gives a tie between the
    probabilities of :meth:`predict_proba` to the smallest class. With the neighbours
    ``N_k(a)`` and weights ``w_j`` of :class:`KNNRegressor`::

        p_c(a)  = sum_{j in N_k(a)} w_j [y_j = c] / sum_{j in N_k(a)} w_j
        predict = classes_[argmax_c p_c(a)]      (first maximum: the smallest class)

    See docs/forecasting.md, section "KNN: the maths". Parameters as for
    :class:`KNNRegressor`.

    Attributes
    ----------
    classes_ : ndarray (C,)
        The distinct training labels, sorted; the columns of :meth:`predict_proba`.
    mean_, scale_, n_samples_, n_features_in_
        As for :class:`KNNRegressor`.
    """

    _target_arrays = ("targets", "classes")

    def _encode_targets(self, y: Any, n_samples: int) -> np.ndarray:
        owner = type(self).__name__
        labels = np.asarray(y)
        if labels.dtype.kind == "O" and all(isinstance(label, str) for label in labels.flat):
            labels = labels.astype(str)
        if labels.dtype.kind not in "biufUS":
            raise ValueError(
                f"{owner}: y must hold integer, boolean, float or string labels, "
                f"got dtype {labels.dtype}"
            )
        check_target_shape(labels, n_samples, owner)
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise ValueError(f"{owner}: y contains NaN or inf labels")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        return codes.astype(np.intp)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Share of (weighted) neighbours in each class, (N, C) in ``classes_`` order."""
        distances, indices = self.kneighbors(X)
        weights = self._neighbour_weights(distances)
        n, n_classes = len(distances), len(self.classes_)
        cells = np.arange(n)[:, None] * n_classes + self._targets[indices]
        totals = np.bincount(cells.ravel(), weights=weights.ravel(), minlength=n * n_classes)
        totals = totals.reshape(n, n_classes)
        return totals / totals.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most likely class of each row, (N,); ties go to the smallest class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _saved_targets(self) -> dict[str, np.ndarray]:
        return {"targets": self._targets, "classes": self.classes_}

    def _restore_targets(self, arrays: dict[str, np.ndarray], path: Any) -> None:
        codes, classes = arrays["targets"], arrays["classes"]
        if (
            codes.dtype.kind not in "iu"
            or classes.ndim != 1
            or (len(codes) and not 0 <= codes.min() <= codes.max() < len(classes))
        ):
            raise ModelFileError(f"{path}: the {type(self).__name__} labels are damaged")
        self._targets, self.classes_ = codes.astype(np.intp), classes


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return rows * np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)[:, None]


def _block_k_best(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``min(k, t)`` smallest entries of each row of ``values`` (q, t) as flat
    ``(rows, columns, values)``; ties at the k-th value go to the lowest columns."""
    q, t = values.shape
    keep = min(k, t)
    if keep == t:
        columns = np.broadcast_to(np.arange(t), (q, t))
    else:
        columns = np.argpartition(values, keep - 1, axis=1)[:, :keep].copy()
        kth = np.take_along_axis(values, columns, axis=1).max(axis=1)
        # argpartition picks arbitrarily among entries equal to the k-th: re-rank those rows
        tied = np.flatnonzero(np.count_nonzero(values <= kth[:, None], axis=1) > keep)
        if tied.size:
            columns[tied] = np.argsort(values[tied], axis=1, kind="stable")[:, :keep]
    rows = np.repeat(np.arange(q), keep)
    return rows, columns.ravel(), np.take_along_axis(values, columns, axis=1).ravel()


def _merge(
    best_values: np.ndarray,
    best_indices: np.ndarray,
    rows: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
) -> None:
    """Merge candidates (sorted by row) into the running best (q, k), in place: per row,
    keep the k smallest by (value, training index)."""
    k = best_values.shape[1]
    first = np.empty(len(rows), dtype=bool)
    first[0] = True
    np.not_equal(rows[1:], rows[:-1], out=first[1:])
    touched = rows[first]
    local = np.cumsum(first) - 1  # row -> position among the touched rows
    m = len(touched)
    all_rows = np.concatenate([np.repeat(np.arange(m), k), local])
    all_values = np.concatenate([best_values[touched].ravel(), values])
    all_indices = np.concatenate([best_indices[touched].ravel(), indices])
    order = np.lexsort((all_indices, all_values, all_rows))
    counts = np.bincount(all_rows, minlength=m)
    starts = np.cumsum(counts) - counts  # every touched row has at least k entries
    take = order[starts[:, None] + np.arange(k)]
    best_values[touched] = all_values[take]
    best_indices[touched] = all_indices[take]
