"""LinearRegression: closed form and gradient descent against explicit formulas, inference,
persistence, an AR(1) forecast at the noise floor, and input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradenn import nn
from tradenn.models.linear import LinearRegression
from tradenn.nn.serialization import ModelFileError


def _regression_data(n=60, features=3, seed=0, intercept=0.7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)) * np.linspace(0.5, 3.0, features) + np.arange(features)
    coef = rng.normal(size=features)
    y = X @ coef + intercept + 0.5 * rng.normal(size=n)
    return X, y


def _with_ones(X):
    return np.column_stack([np.ones(len(X)), X])


# ----------------------------------------------------------------------------- closed form


def test_ols_with_intercept_matches_the_normal_equations_and_textbook_stderr():
    X, y = _regression_data()
    n, p = X.shape
    design = _with_ones(X)
    gram_inverse = np.linalg.inv(design.T @ design)
    beta = gram_inverse @ design.T @ y
    residuals = y - design @ beta
    sigma2 = residuals @ residuals / (n - p - 1)
    stderr = np.sqrt(sigma2 * np.diag(gram_inverse))

    model = LinearRegression().fit(X, y)

    np.testing.assert_allclose(model.intercept_, beta[0], rtol=1e-12)
    np.testing.assert_allclose(model.coef_, beta[1:], rtol=1e-12)
    np.testing.assert_allclose(model.sigma2_, sigma2, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_stderr_, stderr[0], rtol=1e-10)
    np.testing.assert_allclose(model.stderr_, stderr[1:], rtol=1e-10)
    np.testing.assert_allclose(model.t_values_, beta[1:] / stderr[1:], rtol=1e-10)
    assert model.df_resid_ == n - p - 1 and model.rank_ == p and model.n_samples_ == n


def test_ols_without_intercept_goes_through_the_origin():
    X, y = _regression_data()
    n, p = X.shape
    gram_inverse = np.linalg.inv(X.T @ X)
    beta = gram_inverse @ X.T @ y
    residuals = y - X @ beta
    stderr = np.sqrt(residuals @ residuals / (n - p) * np.diag(gram_inverse))

    model = LinearRegression(fit_intercept=False).fit(X, y)

    np.testing.assert_allclose(model.coef_, beta, rtol=1e-12)
    np.testing.assert_allclose(model.stderr_, stderr, rtol=1e-10)
    assert model.intercept_ == 0.0
    assert np.isnan(model.intercept_stderr_)
    np.testing.assert_allclose(model.predict(X), X @ beta, rtol=1e-12)


def test_ridge_penalizes_the_coefficients_and_not_the_intercept():
    X, y = _regression_data()
    p = X.shape[1]
    alpha = 7.5
    mean_x, mean_y = X.mean(axis=0), y.mean()
    centred = X - mean_x
    shrink = np.linalg.inv(centred.T @ centred + alpha * np.eye(p))
    coef = shrink @ centred.T @ (y - mean_y)
    intercept = mean_y - mean_x @ coef
    # the objective ||y - Xw - b||^2 + alpha ||w||^2 is stationary there in w and in b
    residuals = y - X @ coef - intercept
    np.testing.assert_allclose(-2 * X.T @ residuals + 2 * alpha * coef, 0, atol=1e-9)
    np.testing.assert_allclose(residuals.sum(), 0, atol=1e-9)

    model = LinearRegression(alpha=alpha).fit(X, y)

    np.testing.assert_allclose(model.coef_, coef, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-12)
    huge = LinearRegression(alpha=1e12).fit(X, y)
    np.testing.assert_allclose(huge.coef_, 0, atol=1e-8)
    np.testing.assert_allclose(huge.intercept_, mean_y, rtol=1e-8)


def test_ridge_stderr_is_the_documented_sandwich():
    X, y = _regression_data()
    n, p = X.shape
    alpha = 7.5
    centred = X - X.mean(axis=0)
    gram = centred.T @ centred
    shrink = np.linalg.inv(gram + alpha * np.eye(p))
    hat = centred @ shrink @ centred.T
    model = LinearRegression(alpha=alpha).fit(X, y)
    residuals = y - model.predict(X)
    df_resid = n - np.trace(hat) - 1
    sigma2 = residuals @ residuals / df_resid
    covariance = sigma2 * shrink @ gram @ shrink
    mean_x = X.mean(axis=0)

    np.testing.assert_allclose(model.df_resid_, df_resid, rtol=1e-12)
    np.testing.assert_allclose(model.sigma2_, sigma2, rtol=1e-10)
    np.testing.assert_allclose(model.stderr_, np.sqrt(np.diag(covariance)), rtol=1e-10)
    np.testing.assert_allclose(
        model.intercept_stderr_, np.sqrt(sigma2 / n + mean_x @ covariance @ mean_x), rtol=1e-10
    )


def test_ridge_without_intercept():
    X, y = _regression_data()
    alpha = 3.0
    coef = np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ y)
    model = LinearRegression(alpha=alpha, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-12)
    assert model.intercept_ == 0.0


def test_ridge_without_intercept_stderr_is_the_sandwich_on_the_raw_design():
    # docs/forecasting.md, "Linear regression: the maths": no centring, no intercept term
    # in the degrees of freedom, df_resid = N - tr(H)
    X, y = _regression_data()
    n, p = X.shape
    alpha = 3.0
    gram = X.T @ X
    shrink = np.linalg.inv(gram + alpha * np.eye(p))
    coef = shrink @ X.T @ y
    residuals = y - X @ coef
    df_resid = n - np.trace(X @ shrink @ X.T)
    sigma2 = residuals @ residuals / df_resid
    stderr = np.sqrt(np.diag(sigma2 * shrink @ gram @ shrink))

    model = LinearRegression(alpha=alpha, fit_intercept=False).fit(X, y)

    np.testing.assert_allclose(model.df_resid_, df_resid, rtol=1e-12)
    np.testing.assert_allclose(model.sigma2_, sigma2, rtol=1e-10)
    np.testing.assert_allclose(model.stderr_, stderr, rtol=1e-10)
    assert np.isnan(model.intercept_stderr_)


@pytest.mark.parametrize("alpha", [0.0, 20.0])
def test_stderr_matches_the_spread_of_estimates_over_noise_draws(alpha):
    # fixed design, many noise draws: the standard errors describe the estimator's spread
    rng = np.random.default_rng(3)
    n, sigma = 40, 0.8
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5]
    truth = np.array([0.5, -1.0, 2.0])
    draws = 4000  # sampling error of the spread: ~1% (sd), of a variance ~2%
    noise = sigma * rng.normal(size=(draws, n))
    fits = [LinearRegression(alpha=alpha).fit(X, X @ truth + 1.0 + e) for e in noise]
    coefs = np.array([fit.coef_ for fit in fits])
    intercepts = np.array([fit.intercept_ for fit in fits])
    # stderr / sqrt(sigma2) depends on the design only: rescale it to the true sigma
    design_factor = fits[0].stderr_ / np.sqrt(fits[0].sigma2_)
    intercept_factor = fits[0].intercept_stderr_ / np.sqrt(fits[0].sigma2_)
    np.testing.assert_allclose(coefs.std(axis=0), sigma * design_factor, rtol=0.08)
    np.testing.assert_allclose(intercepts.std(), sigma * intercept_factor, rtol=0.08)
    if alpha == 0.0:  # unbiased sigma^2: the reported variances match on average
        reported = np.array([fit.stderr_**2 for fit in fits]).mean(axis=0)
        np.testing.assert_allclose(reported, coefs.var(axis=0), rtol=0.1)


def test_r2_and_score():
    X, y = _regression_data()
    model = LinearRegression().fit(X, y)
    residuals = y - model.predict(X)
    expected = 1 - residuals @ residuals / ((y - y.mean()) ** 2).sum()
    np.testing.assert_allclose(model.r2_, expected, rtol=1e-12)
    np.testing.assert_allclose(model.score(X, y), expected, rtol=1e-12)
    X_new, y_new = _regression_data(seed=9)
    errors = y_new - model.predict(X_new)
    np.testing.assert_allclose(
        model.score(X_new, y_new),
        1 - errors @ errors / ((y_new - y_new.mean()) ** 2).sum(),
        rtol=1e-12,
    )
    assert np.isnan(model.score(X_new, np.full(len(y_new), 2.0)))


def test_rank_deficient_design_gets_the_min_norm_solution_and_nan_stderr():
    X, y = _regression_data(features=3)
    collinear = np.column_stack([X, X[:, 0] + 2 * X[:, 1]])  # column 3 = x0 + 2 x1
    model = LinearRegression().fit(collinear, y)
    centred = collinear - collinear.mean(axis=0)
    min_norm = np.linalg.pinv(centred) @ (y - y.mean())
    np.testing.assert_allclose(model.coef_, min_norm, rtol=1e-9)
    assert model.rank_ == 3
    # x0, x1 and the sum are not separately identified; x2 is
    assert np.isnan(model.stderr_[[0, 1, 3]]).all()
    full = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.stderr_[2], full.stderr_[2], rtol=1e-9)
    np.testing.assert_allclose(model.predict(collinear), full.predict(X), rtol=1e-9)
    np.testing.assert_allclose(model.intercept_stderr_, full.intercept_stderr_, rtol=1e-9)


def test_more_features_than_samples_and_a_constant_column_do_not_crash():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 7))
    y = rng.normal(size=4)
    model = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.predict(X), y, atol=1e-10)  # interpolates
    assert np.isnan(model.stderr_).all() and model.df_resid_ <= 0
    constant = np.column_stack([rng.normal(size=30), np.full(30, 3.0)])
    fit = LinearRegression().fit(constant, rng.normal(size=30))
    assert fit.coef_[1] == 0.0 and np.isnan(fit.stderr_[1]) and np.isfinite(fit.stderr_[0])


def test_a_window_is_flattened_into_an_autoregressive_design():
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(80, 4, 2))
    y = rng.normal(size=80)
    flat = LinearRegression().fit(windows.reshape(80, 8), y)
    model = LinearRegression().fit(windows, y)
    np.testing.assert_array_equal(model.coef_, flat.coef_)
    np.testing.assert_array_equal(model.predict(windows), flat.predict(windows.reshape(80, 8)))


# ----------------------------------------------------------------------------- gradient descent


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 25.0])
def test_gradient_descent_on_a_dense_layer_reaches_the_closed_form(alpha, fit_intercept, optimizer):
    X, y = _regression_data(n=200, features=4)
    exact = LinearRegression(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    model = LinearRegression(
        alpha=alpha, fit_intercept=fit_intercept, solver="gd", optimizer=optimizer
    ).fit(X, y)
    np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-4)
    np.testing.assert_allclose(model.intercept_, exact.intercept_, rtol=1e-4, atol=1e-12)
    # the network's final loss is the closed-form objective (RSS + alpha ||w||^2) / N,
    # which checks the penalty constant alpha / (N s_j^2) in the Dense kernel regularizer
    residuals = y - exact.predict(X)
    objective = (residuals @ residuals + alpha * exact.coef_ @ exact.coef_) / len(y)
    np.testing.assert_allclose(model.loss_history_[-1], objective, rtol=1e-6)
    assert model.loss_history_[0] > model.loss_history_[-1]
    np.testing.assert_allclose(model.stderr_, exact.stderr_, rtol=1e-4)


def test_mini_batch_gradient_descent_approaches_the_closed_form():
    X, y = _regression_data(n=256, features=3)
    exact = LinearRegression(alpha=2.0).fit(X, y)
    model = LinearRegression(alpha=2.0, solver="gd", batch_size=32, epochs=150).fit(X, y)
    np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-2)
    assert len(model.loss_history_) == 150


def test_gradient_descent_is_reproducible_with_a_seed():
    X, y = _regression_data(n=100)
    a = LinearRegression(solver="gd", batch_size=16, epochs=5, seed=4).fit(X, y)
    b = LinearRegression(solver="gd", batch_size=16, epochs=5, seed=4).fit(X, y)
    c = LinearRegression(solver="gd", batch_size=16, epochs=5, seed=5).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


# ----------------------------------------------------------------------------- forecasting


def test_ar1_returns_forecast_at_the_bayes_optimal_error():
    # r_t = phi r_{t-1} + e_t, e ~ N(0, sigma^2): the best predictor phi r_{t-1} has MSE
    # sigma^2. With 20,000 test samples the realized noise variance is within ~1% of
    # sigma^2 (one sd), so a 3% band is a 3-sd band, not a coin flip on the seed.
    phi, sigma, lags = 0.2, 0.01, 5
    rng = np.random.default_rng(2024)
    noise = sigma * rng.normal(size=25_600)
    returns = np.empty_like(noise)
    returns[0] = noise[0]
    for t in range(1, len(noise)):  # the recursion is sequential
        returns[t] = phi * returns[t - 1] + noise[t]
    returns = returns[500:]  # burn-in
    windows = np.lib.stride_tricks.sliding_window_view(returns[:-1], lags)  # last col = lag 1
    targets = returns[lags:]
    X_train, y_train = windows[:5000], targets[:5000]
    X_test, y_test = windows[5000:25_000], targets[5000:25_000]

    model = LinearRegression().fit(X_train, y_train)
    mse = np.mean((y_test - model.predict(X_test)) ** 2)
    oracle = np.mean((y_test - phi * X_test[:, -1]) ** 2)

    assert abs(mse / sigma**2 - 1) < 0.03
    assert mse < 1.01 * oracle
    assert abs(model.coef_[-1] - phi) < 3 * model.stderr_[-1]
    assert np.all(np.abs(model.coef_[:-1]) < 4 * model.stderr_[:-1])


# ----------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("solver", ["lstsq", "gd"])
def test_save_load_round_trip_gives_bit_identical_predictions(tmp_path, solver):
    X, y = _regression_data()
    model = LinearRegression(alpha=1.5, solver=solver, epochs=50).fit(X, y)
    path = tmp_path / "linear.npz"
    model.save(path)
    loaded = LinearRegression.load(path)
    X_new, _ = _regression_data(seed=5)
    np.testing.assert_array_equal(loaded.predict(X_new), model.predict(X_new))
    assert loaded.get_config() == model.get_config()
    for name in ("coef_", "stderr_", "loss_history_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    for name in ("intercept_", "intercept_stderr_", "sigma2_", "r2_", "df_resid_", "rank_"):
        assert getattr(loaded, name) == getattr(model, name)
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


def test_load_rejects_foreign_and_corrupt_files_naming_them(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"definitely not a zip archive")
    network = nn.Sequential([nn.Dense(1)])
    network.build((None, 3))
    network_file = tmp_path / "network.npz"
    network.save(network_file)
    lone_array = tmp_path / "array.npy"
    np.save(lone_array, np.zeros(3))
    for path, reason in (
        (garbage, "is not a readable LinearRegression file"),
        (network_file, "is a tradenn.nn.Model file, not a LinearRegression"),
        (lone_array, "is not a LinearRegression file"),
    ):
        with pytest.raises(ModelFileError) as error:
            LinearRegression.load(path)
        assert str(error.value).startswith(f"{path} {reason}") and "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        LinearRegression.load(tmp_path / "missing.npz")


def test_load_rejects_a_file_of_another_class(tmp_path):
    X, y = _regression_data()
    path = tmp_path / "model.npz"
    LinearRegression().fit(X, y).save(path)

    class OtherModel(LinearRegression):
        pass

    with pytest.raises(
        ModelFileError, match=r"is a tradenn\.models\.LinearRegression file, not a OtherModel"
    ):
        OtherModel.load(path)


def test_get_config_recreates_the_model_and_is_json():
    model = LinearRegression(alpha=0.5, fit_intercept=False, solver="gd", batch_size=8, seed=3)
    config = json.loads(json.dumps(model.get_config()))
    assert LinearRegression(**config).get_config() == model.get_config()
    assert LinearRegression.input_kind == "tabular"


# ----------------------------------------------------------------------------- errors


def _one_line_error(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert "\n" not in str(error.value) and "LinearRegression" in str(error.value)


def test_bad_data_is_rejected_with_one_line_errors():
    X, y = _regression_data()
    model = LinearRegression()
    bad_x = X.copy()
    bad_x[7, 1] = np.nan
    _one_line_error(lambda: model.fit(bad_x, y), r"X contains NaN or inf .*index \(7, ")
    bad_y = y.copy()
    bad_y[3] = np.inf
    _one_line_error(lambda: model.fit(X, bad_y), r"y contains NaN or inf .*index \(3,\)")
    _one_line_error(lambda: model.fit(X, y[:-1]), "X has 60 samples but y has 59")
    _one_line_error(lambda: model.fit(X[:, 0], y), "2-D .* or 3-D")
    _one_line_error(lambda: model.fit(X.reshape(60, 3, 1, 1), y), "2-D .* or 3-D")
    _one_line_error(lambda: model.fit(X, y[:, None]), r"y must be 1-D \(N,\)")
    _one_line_error(lambda: model.fit(X[:0], y[:0]), "no samples")
    _one_line_error(lambda: model.fit(X.astype(str), y), "must hold numbers")
    _one_line_error(lambda: model.predict(X), r"call fit\(X, y\) before predict")
    _one_line_error(lambda: model.save("never.npz"), r"call fit\(X, y\) before save")
    model.fit(X, y)
    _one_line_error(lambda: model.predict(X[:, :2]), "2 features .* fitted on 3")
    _one_line_error(lambda: model.predict(np.where(X > 2, np.inf, X)), "NaN or inf")


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"alpha": np.nan}, "alpha must be a finite number >= 0"),
        ({"alpha": "1"}, "alpha must be a finite number >= 0, got '1'"),
        ({"solver": "qr"}, "solver must be one of 'lstsq', 'gd'"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"fit_intercept": "yes"}, "fit_intercept must be True or False"),
    ],
)
def test_bad_hyperparameters_are_rejected(arguments, match):
    _one_line_error(lambda: LinearRegression(**arguments), match)
