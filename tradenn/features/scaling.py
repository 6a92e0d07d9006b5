"""Per-feature scalers for model inputs, fitted on training data only and storable as JSON.

A scaler learns one ``center`` and one ``scale`` per feature and maps ``x -> (x - center) /
scale``. Features sit on the last axis: ``X`` may be ``(N, F)`` (tabular), ``(N, T, F)`` (windows
for sequence models), any ``(..., F)``, or 1-D ``(N,)`` for a single feature; the statistics are
taken over every axis but the last.

* :class:`StandardScaler`: ``center = mean``, ``scale = std`` (population, ``ddof=0``).
* :class:`RobustScaler`: ``center = median``, ``scale = q75 - q25`` (interquartile range, linear
  interpolation between order statistics), insensitive to the fat tails of returns.

A feature with zero spread (constant in the training data, or an IQR of 0) gets ``scale = 1``:
it is centred but not divided, so nothing is divided by zero; a constant feature is centred on its
value and transforms to exactly 0.

**The contract: fit on training windows only.** A scaler fitted on data that includes the test
period leaks the future's mean and spread into every past input. Fit on ``X_train``, then apply
the same fitted scaler to everything later::

    scaler = StandardScaler().fit(X_train)      # X_train: (N_train, T, F) training windows
    model.fit(scaler.transform(X_train), y_train)
    predictions = model.predict(scaler.transform(X_test))

    metadata = {"scaler": scaler.get_config()}  # JSON-safe; embed it in the model file
    scaler = scaler_from_config(metadata["scaler"])   # the same numbers, bit for bit

Transforms compute and return float64 arrays; NaN in ``X`` passes through ``transform`` (a fit
rejects it).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

__all__ = ["RobustScaler", "StandardScaler", "scaler_from_config"]

S = TypeVar("S", bound="_Scaler")


class _Scaler:
    """Shared fit/transform/config machinery; subclasses define :meth:`_statistics`."""

    def __init__(self) -> None:
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @property
    def n_features(self) -> int | None:
        """Number of features seen by :meth:`fit` (None before fitting)."""
        return None if self.center is None else int(self.center.size)

    def _statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(center, spread)`` per column of a 2-D array ``x`` of shape (samples, F)."""
        raise NotImplementedError

    def fit(self: S, X: Any) -> S:
        """Learn ``center`` and ``scale`` per feature from training data.

        Parameters
        ----------
        X : array-like, shape (N,), (N, F) or (N, T, F)
            Finite values; statistics are over every axis but the last.

        Returns
        -------
        self
        """
        x = self._array(X, "fit")
        if x.size == 0:
            raise ValueError(f"{self._name}.fit: X is empty, shape {np.shape(X)}")
        rows = x.reshape(-1, x.shape[-1])
        finite = np.isfinite(rows)
        if not finite.all():
            feature = int(np.argmax(~finite.all(axis=0)))
            raise ValueError(f"{self._name}.fit: X has NaN or inf values in feature {feature}")
        center, spread = self._statistics(rows)
        # A constant feature's mean and spread can be off by rounding: use its value and scale 1.
        constant = (rows == rows[0]).all(axis=0)
        self.center = np.where(constant, rows[0], center).astype(np.float64)
        self.scale = np.where((spread > 0) & ~constant, spread, 1.0).astype(np.float64)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``(X - center) / scale``, per feature; same shape as ``X``, float64."""
        x = self._checked(X, "transform")
        return (x - self.center) / self.scale

    def inverse_transform(self, X: Any) -> np.ndarray:
        """``X * scale + center``: undoes :meth:`transform`; same shape as ``X``, float64."""
        x = self._checked(X, "inverse_transform")
        return x * self.scale + self.center

    def fit_transform(self, X: Any) -> np.ndarray:
        """:meth:`fit` on ``X``, then :meth:`transform` it."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The fitted scaler as a JSON-safe dict: ``{"class", "center", "scale"}``, lists of floats.

        Python floats print with the shortest repr that reads back to the same float64, so a
        JSON round trip through :meth:`from_config` is exact.
        """
        if self.center is None:
            raise ValueError(f"{self._name}.get_config: the scaler is not fitted; call fit first")
        return {
            "class": self._name,
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_config(cls: type[S], config: dict[str, Any]) -> S:
        """A fitted scaler from :meth:`get_config` output (checked: class, lengths, values)."""
        name = cls.__name__
        if not isinstance(config, dict) or {"class", "center", "scale"} - set(config):
            raise ValueError(f"{name}.from_config: config must be a dict with class, center, scale")
        if config["class"] != name:
            raise ValueError(f"{name}.from_config: config is for {config['class']!r}, not {name}")
        center = _vector(config["center"], f"{name}.from_config: center")
        scale = _vector(config["scale"], f"{name}.from_config: scale")
        if center.size != scale.size:
            raise ValueError(
                f"{name}.from_config: center has {center.size} values but scale has {scale.size}"
            )
        if not (scale > 0).all():
            raise ValueError(f"{name}.from_config: scale must be positive")
        scaler = cls()
        scaler.center, scaler.scale = center, scale
        return scaler

    # ------------------------------------------------------------------------ checks
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _array(self, X: Any, method: str) -> np.ndarray:
        """``X`` as float64 with features on the last axis (a 1-D X becomes one feature)."""
        try:
            x = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{self._name}.{method}: X must be numeric ({error})") from None
        if x.ndim == 0:
            raise ValueError(f"{self._name}.{method}: X must be an array, got a scalar")
        return x[:, None] if x.ndim == 1 else x

    def _checked(self, X: Any, method: str) -> np.ndarray:
        """``X`` as float64 for (inverse) transform, after checking the fit and feature count."""
        if self.center is None:
            raise ValueError(f"{self._name}.{method}: the scaler is not fitted; call fit first")
        x = np.asarray(X, dtype=np.float64) if np.ndim(X) == 1 else self._array(X, method)
        features = 1 if x.ndim == 1 else x.shape[-1]
        if features != self.center.size:
            raise ValueError(
                f"{self._name}.{method}: X has {features} features, the scaler was fitted on "
                f"{self.center.size}"
            )
        return x


class StandardScaler(_Scaler):
    """Standardize each feature: ``(x - mean) / std`` with the training mean and std (``ddof=0``).

    Attributes
    ----------
    center, scale : ndarray, shape (F,)
        Mean and standard deviation (1 for a constant feature); None before :meth:`fit`.

    Examples
    --------
    ::

        scaler = StandardScaler().fit(X_train)   # (N, F) or (N, T, F): training data only
        Z_test = scaler.transform(X_test)
    """

    def _statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x.mean(axis=0), x.std(axis=0)


class RobustScaler(_Scaler):
    """Centre on the median and divide by the interquartile range, per feature.

    ``(x - median) / (q75 - q25)`` with the training median and quartiles; outliers barely move
    either, unlike the mean and standard deviation.

    Attributes
    ----------
    center, scale : ndarray, shape (F,)
        Median and IQR (1 where the IQR is 0); None before :meth:`fit`.

    Examples
    --------
    ::

        scaler = RobustScaler().fit(X_train)     # training data only
        Z_test = scaler.transform(X_test)
    """

    def _statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q25, median, q75 = np.percentile(x, [25.0, 50.0, 75.0], axis=0)
        return median, q75 - q25


_SCALERS: dict[str, type[_Scaler]] = {cls.__name__: cls for cls in (StandardScaler, RobustScaler)}


def scaler_from_config(config: dict[str, Any]) -> StandardScaler | RobustScaler:
    """The scaler a :meth:`~StandardScaler.get_config` dict describes, of the class it names.

    For model files that may hold either kind of scaler.
    """
    kind = config.get("class") if isinstance(config, dict) else None
    if kind not in _SCALERS:
        raise ValueError(
            f"scaler_from_config: class must be one of {sorted(_SCALERS)}, got {kind!r}"
        )
    return _SCALERS[kind].from_config(config)


def _vector(values: Any, what: str) -> np.ndarray:
    """A non-empty 1-D list of finite numbers as float64."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a list of numbers") from None
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"{what} must be a non-empty list of finite numbers")
    return v
