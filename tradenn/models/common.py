"""Input checks, array coercion and the saving of the tabular models.

* Tabular models (:class:`~tradenn.models.linear.LinearRegression`,
  :class:`~tradenn.models.knn.KNNRegressor`, :class:`~tradenn.models.knn.KNNClassifier`):
  :func:`as_design` and :func:`as_target` turn ``X`` and ``y`` into checked float64 arrays,
  and :func:`save_npz` / :func:`load_npz` save and load them as constructor arguments plus
  fitted arrays, in tradenn's one file format (:func:`tradenn.nn.serialization.write_file`).
  Their hyperparameters are checked with :mod:`tradenn.checks`.
* Price-series forecasters (:mod:`tradenn.models.probabilistic`,
  :mod:`tradenn.models.lm_forecaster`): :func:`close_series` and :func:`as_prices` read a price
  array, Series or OHLC frame.

Every check raises ``ValueError`` with a message that starts with the calling model's name
(``owner``) where it takes one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from tradenn.checks import finite_array
from tradenn.nn import serialization

__all__ = [
    "as_design",
    "as_prices",
    "as_target",
    "check_target_shape",
    "close_series",
    "load_npz",
    "save_npz",
]


# --------------------------------------------------------------------------- tabular inputs


def as_design(
    X: Any, owner: str, n_features: int | None = None, *, copy: bool = False
) -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix ``(N, F)``, checked.

    Parameters
    ----------
    X : array_like
        ``(N, F)``, or ``(N, T, F)`` which is flattened to ``(N, T * F)``.
    owner : str
        Name of the calling model, the prefix of every error message.
    n_features : int, optional
        The feature count the model was fitted on; a different count is rejected.
    copy : bool
        Always return a new array the caller may modify; otherwise a float64 C-contiguous
        input is returned as is.

    Returns
    -------
    ndarray (N, F)
        float64, C-contiguous.

    Raises
    ------
    ValueError
        If ``X`` is not numeric, has another rank, no samples or no features, holds NaN or
        inf, or has a feature count other than ``n_features``.
    """
    array = _numeric_array(X, "X", owner)
    if array.ndim not in (2, 3):
        raise ValueError(f"{owner}: X must be 2-D (N, F) or 3-D (N, T, F), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{owner}: X holds no samples")
    rows = array.reshape(array.shape[0], -1)
    if rows.shape[1] == 0:
        raise ValueError(f"{owner}: X has no features, got shape {array.shape}")
    if n_features is not None and rows.shape[1] != n_features:
        raise ValueError(
            f"{owner}: X has {rows.shape[1]} features (after flattening {array.shape}), "
            f"the model was fitted on {n_features}"
        )
    if copy:
        rows = np.array(rows, dtype=np.float64, order="C")
    else:
        rows = np.ascontiguousarray(rows, dtype=np.float64)
    return finite_array(rows, "X", owner)


def as_target(y: Any, n_samples: int, owner: str) -> np.ndarray:
    """``y`` as a finite float64 vector ``(N,)`` with as many samples as X.

    Raises
    ------
    ValueError
        If ``y`` is not numeric or 1-D, has another length than ``n_samples`` or holds NaN
        or inf.
    """
    values = _numeric_array(y, "y", owner)
    check_target_shape(values, n_samples, owner)
    return finite_array(values.astype(np.float64), "y", owner)


def _numeric_array(value: Any, name: str, owner: str) -> np.ndarray:
    """``np.asarray(value)`` if it holds numbers (bool, int or float), else a one-line error."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{owner}: {name} is not a numeric array ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: {name} must hold numbers, got dtype {array.dtype}")
    return array


def check_target_shape(y: np.ndarray, n_samples: int, owner: str) -> None:
    """Raise unless ``y`` is 1-D with ``n_samples`` entries."""
    if y.ndim != 1:
        raise ValueError(f"{owner}: y must be 1-D (N,), got shape {y.shape}")
    if len(y) != n_samples:
        raise ValueError(f"{owner}: X has {n_samples} samples but y has {len(y)}")


# --------------------------------------------------------------------------- the .npz file


def save_npz(path: str | os.PathLike, model: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write a tabular model to one file at exactly ``path`` (:func:`write_file`).

    The file's format is the model's class (:func:`format_name`), its config
    ``model.get_config()`` (the constructor arguments) and its arrays ``arrays``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, used as given (no suffix is added).
    model : object
        The model; its class and ``get_config()`` (JSON-serializable) are stored.
    arrays : dict of str to ndarray
        The fitted arrays, read back by :func:`load_npz`.
    """
    serialization.write_file(
        path, serialization.format_name(type(model)), model.get_config(), arrays
    )


def load_npz(
    cls: type, path: str | os.PathLike, names: tuple[str, ...]
) -> tuple[Any, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_npz`.

    Parameters
    ----------
    cls : type
        The model class the file must hold; it is built from the stored config.
    path : str or os.PathLike
        The file.
    names : tuple of str
        Arrays the file must contain.

    Returns
    -------
    model : cls
        A new, unfitted ``cls(**config)``.
    arrays : dict of str to ndarray
        The arrays ``names``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        Naming the file, if it is foreign, damaged, of another format version or class, lacks
        one of ``names`` or holds an invalid config.
    """
    saved = serialization.read_file(path, serialization.format_name(cls), cls.__name__)
    missing = [name for name in names if name not in saved.arrays]
    if missing:
        raise serialization.ModelFileError(
            f"{path}: {cls.__name__} file lacks array '{missing[0]}'"
        )
    arrays = {name: saved.arrays[name] for name in names}
    serialization.check_finite(arrays, path)
    with serialization.invalid_content(path, f"{cls.__name__} config"):
        model = cls(**saved.config)
    return model, arrays


# --------------------------------------------------------------------------- price series


def close_series(prices: Any) -> pd.Series | None:
    """``prices`` as a float Series when it is a Series or a price frame (its Close), else None.

    Raises
    ------
    ValueError
        If ``prices`` is a DataFrame without a ``Close`` column.
    """
    if isinstance(prices, pd.DataFrame):
        if "Close" not in prices.columns:
            raise ValueError("prices is a DataFrame without a Close column")
        prices = prices["Close"]
    return prices.astype(np.float64) if isinstance(prices, pd.Series) else None


def as_prices(prices: Any, name: str) -> np.ndarray:
    """``prices`` as a 1-D float64 array of finite positive values (``name`` in errors).

    Raises
    ------
    ValueError
        If ``prices`` is empty, not 1-D, or holds a non-finite or non-positive value (the
        message gives the first one and its position).
    """
    if isinstance(prices, pd.Series):
        prices = prices.to_numpy(dtype=np.float64, na_value=np.nan)
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array or Series, got shape {p.shape}")
    bad = ~(np.isfinite(p) & (p > 0))
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(
            f"{name} must hold finite positive prices; got {p[position]} at position {position}"
        )
    return p
