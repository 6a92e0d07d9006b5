"""Linear regression (OLS and ridge) with classic least-squares inference.

::

    from tradenn.models.linear import LinearRegression

    model = LinearRegression().fit(X_train, y_train)       # X (N, F) or (N, T, F), y (N,)
    model.coef_, model.intercept_, model.stderr_, model.t_values_, model.r2_
    y_hat = model.predict(X_test)
    model.save("ols.npz");  same = LinearRegression.load("ols.npz")

A window ``(N, T, F)`` is flattened to ``(N, T * F)``, so a window of ``T`` lagged returns is
an AR(T) design. The objective, with ``alpha >= 0`` and the intercept ``b`` never penalized::

    minimize over (w, b):   ||y - X w - b||^2 + alpha ||w||^2

is solved in closed form (``solver="lstsq"``) or by gradient descent on a
:class:`tradenn.nn.Dense` layer (``solver="gd"``); both give the same solution.

This module also holds the small pieces every tabular model shares (input checks and the
``.npz`` file format); :mod:`tradenn.models.knn` imports them.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tradenn import nn
from tradenn.nn.regularizers import Regularizer
from tradenn.nn.serialization import CONFIG_KEY as NETWORK_CONFIG_KEY
from tradenn.nn.serialization import ModelFileError, write_npz

__all__ = ["LinearRegression"]

# --------------------------------------------------------------------------- shared tabular pieces

FILE_FORMAT = "tradenn.models.tabular"
FILE_VERSION = 1
_CONFIG_KEY = "__tradenn_tabular__"
_FINITE_CHECK_ELEMENTS = 1 << 20  # elements per block of the NaN/inf scan (bounds its temporary)


def _as_design(
    X: Any, owner: str, n_features: int | None = None, *, copy: bool = False
) -> np.ndarray:
    """``X`` as a C-contiguous float64 matrix ``(N, F)``; ``(N, T, F)`` is flattened to
    ``(N, T * F)``. Rejects other ranks, no samples, non-numbers, NaN/inf and (when
    ``n_features`` is given) a different feature count. ``copy=True`` always returns a new
    array the caller may modify; otherwise a float64 C-contiguous input is used as is."""
    try:
        array = np.asarray(X)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{owner}: X is not a numeric array ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: X must hold numbers, got dtype {array.dtype}")
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
    _check_finite(rows, owner)
    return rows


def _check_finite(rows: np.ndarray, owner: str) -> None:
    """Raise naming the first row of ``rows`` that holds NaN or inf (scanned in blocks)."""
    step = max(1, _FINITE_CHECK_ELEMENTS // rows.shape[1])
    for start in range(0, len(rows), step):
        finite = np.isfinite(rows[start : start + step]).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            raise ValueError(f"{owner}: X contains NaN or inf (first in row {row})")


def _as_target(y: Any, n_samples: int, owner: str) -> np.ndarray:
    """``y`` as a finite float64 vector ``(N,)`` with as many samples as X."""
    try:
        values = np.asarray(y)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{owner}: y is not a numeric array ({error})") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{owner}: y must hold numbers, got dtype {values.dtype}")
    _check_target_shape(values, n_samples, owner)
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{owner}: y contains NaN or inf (first at index {np.argmin(finite)})")
    return values


def _check_target_shape(y: np.ndarray, n_samples: int, owner: str) -> None:
    if y.ndim != 1:
        raise ValueError(f"{owner}: y must be 1-D (N,), got shape {y.shape}")
    if len(y) != n_samples:
        raise ValueError(f"{owner}: X has {n_samples} samples but y has {len(y)}")


def _check_positive_int(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_number(value: Any, name: str, owner: str, *, positive: bool) -> float:
    """A finite real number, > 0 (``positive``) or >= 0."""
    bound = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}: {name} must be a number {bound}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{owner}: {name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_seed(value: Any, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{owner}: seed must be a non-negative integer or None, got {value!r}")
    return int(value)


def _check_choice(value: Any, name: str, choices: tuple[str, ...], owner: str) -> str:
    if value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{owner}: {name} must be one of {options}, got {value!r}")
    return value


def _save_npz(path: str | os.PathLike, model: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and the model's class name and ``get_config()`` (a JSON string) to
    one ``.npz`` at exactly ``path``, through a temporary file so a failed save leaves no
    half-written file."""
    document = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "class_name": type(model).__name__,
        "config": model.get_config(),
    }
    write_npz(path, {_CONFIG_KEY: np.array(json.dumps(document)), **arrays})


def _load_npz(
    cls: type, path: str | os.PathLike, names: tuple[str, ...]
) -> tuple[Any, dict[str, np.ndarray]]:
    """A new ``cls`` built from the config of a file written by :func:`_save_npz`, and the
    file's arrays ``names``; :class:`ModelFileError` naming the file if it is foreign, damaged,
    of another class or holds an invalid config."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{cls.__name__}: no model file at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path} is not a {cls.__name__} file (a single .npy array)")
        with archive:
            if _CONFIG_KEY not in archive.files:
                if NETWORK_CONFIG_KEY in archive.files:
                    raise ModelFileError(f"{path} holds a tradenn.nn network, not a {cls.__name__}")
                raise ModelFileError(f"{path} is not a tradenn tabular model file (no config)")
            document = json.loads(archive[_CONFIG_KEY].item())
            if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
                raise ModelFileError(f"{path} is not a tradenn tabular model file (wrong format)")
            if document.get("version") != FILE_VERSION:
                raise ModelFileError(
                    f"{path} has tabular model file version {document.get('version')}; "
                    f"this tradenn reads {FILE_VERSION}"
                )
            if document.get("class_name") != cls.__name__:
                raise ModelFileError(
                    f"{path} holds a {document.get('class_name')}, not a {cls.__name__}"
                )
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise ModelFileError(f"{path}: {cls.__name__} file lacks array '{missing[0]}'")
            arrays = {name: archive[name] for name in names}
            config = dict(document["config"])
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, EOFError, OSError, zipfile.BadZipFile) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelFileError(f"{path} is not a readable {cls.__name__} file ({message})") from None
    try:
        model = cls(**config)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path} holds an invalid {cls.__name__} config ({error})") from None
    return model, arrays


# --------------------------------------------------------------------------- linear regression

_SOLVERS = ("lstsq", "gd")
_OPTIMIZERS = ("adam", "sgd")
_ESTIMABLE_TOLERANCE = 1e-8  # squared share of a direction outside the design's row space
_FITTED = (
    "coef_",
    "intercept_",
    "stderr_",
    "intercept_stderr_",
    "sigma2_",
    "r2_",
    "rank_",
    "df_resid_",
    "n_samples_",
    "loss_history_",
)


class LinearRegression:
    """Ordinary least squares or ridge regression, with coefficient standard errors.

    Solves, with ``alpha >= 0`` and the intercept ``b`` never penalized::

        minimize over (w, b):   ||y - X w - b||^2 + alpha ||w||^2

    by centring ``X`` and ``y`` (when ``fit_intercept``), solving for ``w`` on the centred
    data and recovering ``b = mean(y) - mean(X) w``.

    **Closed form** (``solver="lstsq"``), from the thin SVD of the centred design
    ``Xc = U diag(s) V'``::

        OLS    w = V_r diag(1 / s_r) U_r' yc       (r: singular values above the rank
                                                     tolerance max(N, F) * eps * s_max)
        ridge  w = V diag(s / (s^2 + alpha)) U' yc

    The SVD is the best-conditioned of the direct solvers (it is what ``numpy.linalg.lstsq``
    uses); a rank-deficient design gets the minimum-norm least-squares solution. It is taken
    of the R factor of a Householder QR of ``[Xc | yc]``, which also yields ``U' yc``, so no
    (N, F) matrix ``U`` is formed.

    **Gradient descent** (``solver="gd"``): one ``nn.Dense(1)`` in an ``nn.Sequential``,
    float64, zero-initialized, trained on standardized data ``z_j = xc_j / s_j``,
    ``t = yc / s_y`` (``s`` the column root-mean-squares of the centred data) with the MSE
    loss, ``Adam`` (or ``SGD`` with momentum 0.9) and a cosine-decayed learning rate. The
    Dense kernel ``v`` maps back as ``w_j = s_y v_j / s_j``. The network minimizes::

        mean_i (t_i - z_i v - c)^2 + sum_j l2_j v_j^2

    and dividing the closed-form objective by ``N s_y^2`` and substituting ``w`` gives the
    same function when ``l2_j = alpha / (N s_j^2)`` (``s_y`` cancels). Those factors go in
    as the Dense ``kernel_regularizer`` (one factor per feature: with per-feature
    standardization a single ``nn.regularizers.L2(l2)`` would penalize ``sum s_j^2 w_j^2``
    instead; when all ``s_j`` are equal it is ``L2(alpha / (N s^2))``). The minimizer is
    the closed-form solution; on a rank-deficient design gradient descent from zero
    reaches the minimum-norm solution in the standardized coordinates.

    **Inference.** With ``RSS`` the residual sum of squares, ``sigma2_ = RSS / df_resid_``:

    * OLS: ``df_resid_ = N - rank - fit_intercept``; ``Cov(w) = sigma^2 (Xc' Xc)^+`` (the
      classic ``sigma^2 (X'X)^{-1}`` of the slope block), ``Var(b) = sigma^2 / N +
      mean(X)' Cov(w) mean(X)``. A coefficient whose direction ``e_j`` is not in the row
      space of ``Xc`` (collinear features, ``F > N``) is not identified: its ``stderr_`` is
      NaN (likewise the intercept's when ``mean(X)`` is not in the row space).
    * ridge: the sandwich ``Cov(w) = sigma^2 (Xc'Xc + alpha I)^{-1} Xc'Xc (Xc'Xc + alpha I)^{-1}``
      (the spread of the ridge estimator around its own, shrunken, expectation; the bias
      is not included), with ``df_resid_ = N - tr(H) - fit_intercept``, ``tr(H) = sum s^2 /
      (s^2 + alpha)`` the effective number of parameters.

    With ``df_resid_ <= 0`` sigma is undefined and every standard error is NaN.

    Parameters
    ----------
    alpha : float
        Ridge penalty (0: ordinary least squares).
    fit_intercept : bool
        Fit an unpenalized intercept; otherwise the model goes through the origin.
    solver : {"lstsq", "gd"}
        Closed form or gradient descent on ``tradenn.nn``.
    optimizer : {"adam", "sgd"}
        Gradient-descent optimizer (``solver="gd"`` only).
    learning_rate : float
        Initial learning rate of the cosine decay to zero (``solver="gd"``).
    epochs : int
        Passes over the data (``solver="gd"``).
    batch_size : int, optional
        Mini-batch size; None trains full-batch (``solver="gd"``).
    seed : int, optional
        Reseeds the ``tradenn.nn`` generator before gradient descent (mini-batch order);
        the closed form uses no randomness.

    Attributes
    ----------
    coef_ : ndarray (F,)
        Coefficients ``w``.
    intercept_ : float
        Intercept ``b`` (0.0 without ``fit_intercept``).
    stderr_ : ndarray (F,)
        Standard errors of ``coef_`` (NaN where not identified).
    intercept_stderr_ : float
        Standard error of ``intercept_`` (NaN without ``fit_intercept``).
    t_values_ : ndarray (F,)
        ``coef_ / stderr_``.
    sigma2_ : float
        Residual variance estimate ``RSS / df_resid_``.
    r2_ : float
        In-sample ``R^2 = 1 - RSS / sum (y - mean(y))^2`` (NaN if y is constant).
    rank_ : int
        Numerical rank of the centred design.
    df_resid_ : float
        Residual degrees of freedom.
    n_samples_, n_features_in_ : int
        Training samples and (flattened) features.
    loss_history_ : ndarray
        ``solver="gd"``: the objective ``(RSS + alpha ||w||^2) / N`` per epoch (mean over
        the epoch's batches); empty for the closed form.
    """

    input_kind = "tabular"

    def __init__(
        self,
        alpha: float = 0.0,
        fit_intercept: bool = True,
        solver: str = "lstsq",
        optimizer: str = "adam",
        learning_rate: float = 0.05,
        epochs: int = 1000,
        batch_size: int | None = None,
        seed: int | None = 0,
    ) -> None:
        owner = type(self).__name__
        alpha = _check_number(alpha, "alpha", owner, positive=False)
        learning_rate = _check_number(learning_rate, "learning_rate", owner, positive=True)
        if not isinstance(fit_intercept, (bool, np.bool_)):
            raise ValueError(f"{owner}: fit_intercept must be True or False, got {fit_intercept!r}")
        self.alpha = alpha
        self.fit_intercept = bool(fit_intercept)
        self.solver = _check_choice(solver, "solver", _SOLVERS, owner)
        self.optimizer = _check_choice(optimizer, "optimizer", _OPTIMIZERS, owner)
        self.learning_rate = learning_rate
        self.epochs = _check_positive_int(epochs, "epochs", owner)
        self.batch_size = (
            None if batch_size is None else _check_positive_int(batch_size, "batch_size", owner)
        )
        self.seed = _check_seed(seed, owner)
        self.coef_: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any) -> LinearRegression:
        """Fit on ``X`` (N, F) or (N, T, F) and ``y`` (N,); returns ``self``."""
        owner = type(self).__name__
        X = _as_design(X, owner)
        y = _as_target(y, len(X), owner)
        n = len(X)
        if self.fit_intercept:
            x_mean, y_mean = X.mean(axis=0), float(y.mean())
            centred_x, centred_y = X - x_mean, y - y_mean
        else:
            x_mean, y_mean = np.zeros(X.shape[1]), 0.0
            centred_x, centred_y = X, y
        s, vt, projected = _svd_with_projection(centred_x, centred_y)
        tolerance = s[0] * max(centred_x.shape) * np.finfo(np.float64).eps if s.size else 0.0
        kept = s > tolerance
        offset = 0.0
        if self.solver == "gd":
            coef, offset, history = self._gradient_descent(centred_x, centred_y)
        elif self.alpha > 0:
            coef = vt.T @ (s / (s * s + self.alpha) * projected)
            history = np.empty(0)
        else:
            coef = vt[kept].T @ (projected[kept] / s[kept])
            history = np.empty(0)
        intercept = y_mean + offset - float(x_mean @ coef) if self.fit_intercept else 0.0

        residuals = y - (X @ coef + intercept)
        rss = float(residuals @ residuals)
        self.coef_, self.intercept_ = coef, float(intercept)
        self._inference(s, vt, kept, x_mean, rss, n)
        total = float(((y - y.mean()) ** 2).sum())
        self.r2_ = 1.0 - rss / total if total > 0 else math.nan
        self.rank_ = int(kept.sum())
        self.n_samples_ = n
        self.loss_history_ = history
        return self

    def _inference(
        self,
        s: np.ndarray,
        vt: np.ndarray,
        kept: np.ndarray,
        x_mean: np.ndarray,
        rss: float,
        n: int,
    ) -> None:
        """Standard errors from the SVD of the centred design (see the class docstring).

        ``Cov(w) = sigma^2 V diag(f) V'`` with ``f = 1 / s^2`` over the kept singular values
        (OLS) or ``f = s^2 / (s^2 + alpha)^2`` over all of them (ridge).
        """
        if self.alpha > 0:
            directions, factors = vt.T, s * s / (s * s + self.alpha) ** 2
            df_model = float((s * s / (s * s + self.alpha)).sum())
            identified = np.ones(len(self.coef_), dtype=bool)
        else:
            directions, factors = vt[kept].T, 1.0 / s[kept] ** 2
            df_model = float(kept.sum())
            # e_j lies in the row space iff its projection on V_r keeps all of its length
            identified = 1.0 - (directions**2).sum(axis=1) <= _ESTIMABLE_TOLERANCE
        df_resid = n - df_model - (1.0 if self.fit_intercept else 0.0)
        sigma2 = rss / df_resid if df_resid > 0 else math.nan
        variances = sigma2 * ((directions**2) @ factors)
        self.stderr_ = np.where(identified, np.sqrt(variances), np.nan)
        self.sigma2_, self.df_resid_ = float(sigma2), float(df_resid)
        self.intercept_stderr_ = math.nan
        if self.fit_intercept:
            along = directions.T @ x_mean  # mean(X) in the V basis
            outside = float(x_mean @ x_mean) - float(along @ along)
            variance = sigma2 * (1.0 / n + float((factors * along * along).sum()))
            if self.alpha > 0 or outside <= _ESTIMABLE_TOLERANCE * float(x_mean @ x_mean):
                self.intercept_stderr_ = math.sqrt(variance) if variance >= 0 else math.nan

    def _gradient_descent(
        self, centred_x: np.ndarray, centred_y: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """Minimize the same objective with one Dense unit; returns ``(w, intercept offset,
        objective per epoch)`` in the original units (see the class docstring for the
        standardization and the penalty constant)."""
        n = len(centred_x)
        x_scale = np.sqrt((centred_x * centred_x).mean(axis=0))
        x_scale[x_scale == 0] = 1.0  # a constant column stays at its zero initialization
        y_scale = math.sqrt(float(centred_y @ centred_y) / n) or 1.0
        z, t = centred_x / x_scale, (centred_y / y_scale)[:, None]
        penalty = _FeatureL2(self.alpha / (n * x_scale**2)) if self.alpha > 0 else None
        dense = nn.Dense(
            1,
            use_bias=self.fit_intercept,
            kernel_initializer="zeros",
            kernel_regularizer=penalty,
            dtype=np.float64,
        )
        network = nn.Sequential([dense], dtype=np.float64)
        batch_size = n if self.batch_size is None else min(self.batch_size, n)
        steps = self.epochs * math.ceil(n / batch_size)
        schedule = nn.CosineDecay(self.learning_rate, steps)
        optimizer = nn.Adam(schedule) if self.optimizer == "adam" else nn.SGD(schedule, 0.9)
        history = network.fit(
            z,
            t,
            loss="mse",
            optimizer=optimizer,
            epochs=self.epochs,
            batch_size=batch_size,
            shuffle=batch_size < n,
            verbose=0,
            seed=self.seed,
        )
        kernel = dense.params["kernel"][:, 0]
        coef = kernel * y_scale / x_scale
        offset = float(dense.params["bias"][0]) * y_scale if self.fit_intercept else 0.0
        losses = np.asarray(history.history["loss"], dtype=np.float64) * y_scale**2
        return coef, offset, losses

    # ------------------------------------------------------------------ using the fit

    @property
    def n_features_in_(self) -> int:
        """Number of (flattened) features seen in ``fit``."""
        self._check_fitted("n_features_in_")
        return len(self.coef_)

    @property
    def t_values_(self) -> np.ndarray:
        """``coef_ / stderr_`` (NaN where the standard error is)."""
        self._check_fitted("t_values_")
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.coef_ / self.stderr_

    def predict(self, X: Any) -> np.ndarray:
        """``X w + b`` for ``X`` (N, F) or (N, T, F); returns (N,)."""
        self._check_fitted("predict")
        X = _as_design(X, type(self).__name__, len(self.coef_))
        return X @ self.coef_ + self.intercept_

    def score(self, X: Any, y: Any) -> float:
        """``R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean(y))^2`` on ``(X, y)`` (NaN if y is
        constant)."""
        predictions = self.predict(X)
        y = _as_target(y, len(predictions), type(self).__name__)
        residual = float(((y - predictions) ** 2).sum())
        total = float(((y - y.mean()) ** 2).sum())
        return 1.0 - residual / total if total > 0 else math.nan

    # ------------------------------------------------------------------ persistence

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        return {
            "alpha": self.alpha,
            "fit_intercept": self.fit_intercept,
            "solver": self.solver,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write hyperparameters and the fitted coefficients to one ``.npz`` (no pickle)."""
        self._check_fitted("save")
        _save_npz(path, self, {name: np.asarray(getattr(self, name)) for name in _FITTED})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearRegression:
        """Read a model written by :meth:`save`."""
        model, arrays = _load_npz(cls, path, _FITTED)
        coef, stderr = arrays["coef_"], arrays["stderr_"]
        if coef.ndim != 1 or coef.dtype != np.float64 or stderr.shape != coef.shape:
            raise ModelFileError(f"{path}: {cls.__name__} coefficients have the wrong shape")
        model.coef_, model.stderr_ = coef, stderr
        model.loss_history_ = arrays["loss_history_"]
        for name in ("intercept_", "intercept_stderr_", "sigma2_", "r2_", "df_resid_"):
            setattr(model, name, float(arrays[name]))
        model.rank_, model.n_samples_ = int(arrays["rank_"]), int(arrays["n_samples_"])
        return model

    def _check_fitted(self, what: str) -> None:
        if self.coef_ is None:
            raise ValueError(f"{type(self).__name__}: call fit(X, y) before {what}")

    def __repr__(self) -> str:
        state = "fitted" if self.coef_ is not None else "not fitted"
        return (
            f"{type(self).__name__}(alpha={self.alpha}, fit_intercept={self.fit_intercept}, "
            f"solver={self.solver!r}, {state})"
        )


def _svd_with_projection(
    centred_x: np.ndarray, centred_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(s, V', U' yc)`` of the thin SVD ``Xc = U diag(s) V'``, without forming the (N, F)
    matrix ``U``.

    The R factor of ``[Xc | yc] = Q R`` holds ``R_x`` (its first F columns) and ``Q' yc``
    (its last column); with ``R_x = U_r diag(s) V'``, ``Xc = (Q U_r) diag(s) V'`` and
    ``U' yc = U_r' Q' yc``. Householder QR is backward stable, so this is as accurate as an
    SVD of ``Xc`` and needs one (N, F + 1) working copy instead of two (N, F) arrays.
    """
    n, features = centred_x.shape
    r = np.linalg.qr(np.column_stack([centred_x, centred_y]), mode="r")
    m = min(n, features)
    u_r, s, vt = np.linalg.svd(r[:m, :features], full_matrices=False)
    return s, vt, u_r.T @ r[:m, features]


class _FeatureL2(Regularizer):
    """``R(W) = sum_j factors_j sum_u W_ju^2``: an L2 penalty with its own factor for each
    input feature (row of a Dense kernel); ``dR/dW = 2 factors W``."""

    def __init__(self, factors: np.ndarray) -> None:
        self.factors = np.asarray(factors, dtype=np.float64)[:, None]

    def __call__(self, w: np.ndarray) -> float:
        return float((self.factors * w * w).sum())

    def add_gradient(self, w: np.ndarray, grad: np.ndarray) -> None:
        grad += 2.0 * self.factors * w

    def get_config(self) -> dict[str, Any]:
        return {"factors": self.factors[:, 0].tolist()}
