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

Input checks and the ``.npz`` file format, shared with :mod:`tradenn.models.knn`, live in
:mod:`tradenn.models.common`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tradenn import checks, nn
from tradenn.nn.regularizers import Regularizer
from tradenn.nn.serialization import ModelFileError

from .common import (
    as_design,
    as_target,
    load_npz,
    save_npz,
)

__all__ = ["LinearRegression"]

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

    Every step, symbol and function: see docs/forecasting.md, section "Linear regression:
    the maths".

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
        alpha = checks.number(alpha, "alpha", owner, low=0)
        learning_rate = checks.positive_number(learning_rate, "learning_rate", owner)
        if not isinstance(fit_intercept, (bool, np.bool_)):
            raise ValueError(f"{owner}: fit_intercept must be True or False, got {fit_intercept!r}")
        self.alpha = alpha
        self.fit_intercept = bool(fit_intercept)
        self.solver = checks.choice(solver, "solver", _SOLVERS, owner)
        self.optimizer = checks.choice(optimizer, "optimizer", _OPTIMIZERS, owner)
        self.learning_rate = learning_rate
        self.epochs = checks.positive_int(epochs, "epochs", owner)
        self.batch_size = checks.positive_int(batch_size, "batch_size", owner, allow_none=True)
        self.seed = checks.seed(seed, owner)
        self.coef_: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any) -> LinearRegression:
        """Fit on ``X`` (N, F) or (N, T, F) and ``y`` (N,); returns ``self``."""
        owner = type(self).__name__
        X = as_design(X, owner)
        y = as_target(y, len(X), owner)
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
        X = as_design(X, type(self).__name__, len(self.coef_))
        return X @ self.coef_ + self.intercept_

    def score(self, X: Any, y: Any) -> float:
        """``R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean(y))^2`` on ``(X, y)`` (NaN if y is
        constant)."""
        predictions = self.predict(X)
        y = as_target(y, len(predictions), type(self).__name__)
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
        save_npz(path, self, {name: np.asarray(getattr(self, name)) for name in _FITTED})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearRegression:
        """Read a model written by :meth:`save`."""
        model, arrays = load_npz(cls, path, _FITTED)
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
