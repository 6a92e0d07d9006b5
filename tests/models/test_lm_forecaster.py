"""LMForecaster: sampled forecasts from a transformer over tokenized returns."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import data
from tradenn.models import (
    QUANTILE_LEVELS,
    Forecast,
    GaussianRandomWalk,
    LMForecaster,
    evaluate_probabilistic,
)


def small(**overrides) -> LMForecaster:
    settings = dict(
        context_length=16,
        d_model=16,
        num_heads=2,
        num_layers=1,
        n_bins=21,
        epochs=1,
        batch_size=32,
        learning_rate=3e-3,
        stride=4,
        scaling="none",
        validation_split=0.0,
        seed=0,
    )
    return LMForecaster(**{**settings, **overrides})


@pytest.fixture(scope="module")
def prices():
    return data.garch(600, seed=3)["Close"]


@pytest.fixture(scope="module")
def fitted(prices):
    return small().fit(prices.iloc[:500])


def test_forecast_has_the_contracted_shape(fitted, prices):
    forecast = fitted.forecast(prices.iloc[:500], horizon=5, num_samples=50, seed=1)
    assert isinstance(forecast, Forecast)
    assert forecast.samples.shape == (50, 5)
    assert list(forecast.quantiles.columns) == list(QUANTILE_LEVELS)
    assert list(forecast.quantiles.index) == [1, 2, 3, 4, 5]
    assert forecast.mean.shape == forecast.p_up.shape == (5,)
    assert np.all((forecast.p_up >= 0) & (forecast.p_up <= 1))
    # samples are log returns inside the tokenizer's range (plus half a bin of jitter)
    limit = fitted.tokenizer.limit + fitted.tokenizer.bin_width / 2
    assert np.all(np.abs(forecast.samples) <= limit + 1e-12)


def test_forecasts_are_seeded_and_survive_save_and_load(fitted, prices, tmp_path):
    history = prices.iloc[:450]
    first = fitted.forecast(history, horizon=3, num_samples=40, seed=7)
    again = fitted.forecast(history, horizon=3, num_samples=40, seed=7)
    other = fitted.forecast(history, horizon=3, num_samples=40, seed=8)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert not np.array_equal(first.samples, other.samples)
    fitted.save(tmp_path / "lm.npz")
    loaded = LMForecaster.load(tmp_path / "lm.npz")
    assert loaded.get_config() == fitted.get_config()
    assert loaded.tokenizer == fitted.tokenizer
    np.testing.assert_array_equal(
        loaded.forecast(history, horizon=3, num_samples=40, seed=7).samples, first.samples
    )


def test_training_is_deterministic(prices):
    a = small().fit(prices.iloc[:300])
    b = small().fit(prices.iloc[:300])
    assert a.history.history["loss"] == b.history.history["loss"]


def test_the_tokenizer_range_comes_from_training_prices_only(prices):
    calm = prices.iloc[:300]
    wild = prices.copy()
    wild.iloc[400:] *= np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.2, 200)))
    a = small().fit(calm)
    b = small().fit(wild.iloc[:300])  # the same first 300 bars: later moves are never seen
    assert a.tokenizer == b.tokenizer
    returns = np.abs(np.diff(np.log(calm.to_numpy())))
    assert a.tokenizer.limit == pytest.approx(np.quantile(returns, 0.995))


def test_forecast_reads_only_the_recent_past(fitted, prices):
    history = prices.iloc[:500].copy()
    changed = history.copy()
    changed.iloc[:100] *= 1.5  # far older than the context window
    np.testing.assert_array_equal(
        fitted.forecast(history, 2, 20, seed=0).samples,
        fitted.forecast(changed, 2, 20, seed=0).samples,
    )


def test_errors_are_one_line_and_name_the_argument(fitted, prices):
    with pytest.raises(ValueError, match="call fit"):
        small().forecast(prices, 1)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        fitted.forecast(prices, 0)
    with pytest.raises(ValueError, match="finite positive prices"):
        fitted.forecast(np.array([1.0, -1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="at least 18 prices"):
        small().fit(prices.iloc[:10])
    with pytest.raises(ValueError, match="context_length must be a positive integer"):
        LMForecaster(context_length=0)


def test_beats_the_constant_volatility_random_walk_on_garch_returns():
    """With volatility clustering, the LM must learn that big moves follow big moves."""
    prices = data.garch(2400, omega=2e-6, alpha=0.15, beta=0.83, seed=0)["Close"]
    lm = LMForecaster(
        context_length=24,
        d_model=32,
        num_heads=2,
        num_layers=1,
        n_bins=31,
        epochs=2,
        batch_size=64,
        learning_rate=3e-3,
        seed=0,
    )
    result = evaluate_probabilistic(
        {"lm": lm, "constant": GaussianRandomWalk("constant")},
        prices,
        start=1900,
        horizon=1,
        step=5,
        num_samples=100,
    )
    summary = result.summary
    assert summary.loc["lm", "wql"] < summary.loc["constant", "wql"]
    assert summary.loc["lm", "crps"] < summary.loc["constant", "crps"]


# ------------------------------------------------------------------ LMReturnModel (walk-forward)


def test_next_distribution_is_exact_and_agrees_with_sampling(fitted, prices):
    from tradenn.models.lm_forecaster import LMReturnModel

    returns = np.diff(np.log(prices.to_numpy()))
    contexts = np.lib.stride_tricks.sliding_window_view(returns[:499], 16)[-3:]
    probs = fitted.next_distribution(contexts)
    assert probs.shape == (3, 21)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    # many sampled next tokens land in the bins with the model's probabilities
    forecast = fitted.forecast(prices.iloc[:500], horizon=1, num_samples=4000, seed=3)
    ids = fitted.tokenizer.quantize(forecast.samples[:, 0]) - fitted.tokenizer.num_special_tokens
    frequencies = np.bincount(ids, minlength=21) / 4000
    np.testing.assert_allclose(frequencies, probs[-1], atol=0.03)

    model = LMReturnModel.__new__(LMReturnModel)
    model.forecaster = fitted
    centres = fitted.tokenizer.bin_centers
    np.testing.assert_allclose(model.predict(contexts[:, :, None]), probs @ centres)
    up = model.p_up(contexts[:, :, None])
    middle = probs[:, 10]  # 21 bins: the centre bin straddles zero and counts half
    np.testing.assert_allclose(up, probs[:, 11:].sum(axis=1) + middle / 2)


def test_return_model_fits_walk_forward_windows_and_round_trips(prices, tmp_path):
    from tradenn.features.windows import return_target
    from tradenn.models.lm_forecaster import LMReturnModel
    from tradenn.models.walk_forward import walk_forward

    frame = data.garch(700, seed=4)
    settings = dict(
        context_length=16, d_model=16, num_heads=2, num_layers=1, n_bins=21, epochs=1, seed=0
    )
    result = walk_forward(
        lambda: LMReturnModel(**settings),
        frame,
        features=lambda f: return_target(f).to_frame("ret"),
        lookback=16,
        train_size=400,
        test_size=150,
        scale=False,
        keep_models=True,
    )
    assert result.p_up is not None and result.p_up.between(0, 1).all()
    assert result.predictions.notna().all() and len(result.folds) == 2
    model = result.models[-1]
    X = np.lib.stride_tricks.sliding_window_view(
        np.diff(np.log(frame["Close"].to_numpy()))[-40:], 16
    )[:, :, None]
    model.save(tmp_path / "m.npz")
    loaded = LMReturnModel.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="lookback = context_length"):
        model.predict(X[:, :10])


def test_walk_forward_never_scales_the_log_returns_a_return_model_tokenizes():
    from tradenn.features.windows import return_target
    from tradenn.models.lm_forecaster import LMReturnModel
    from tradenn.models.walk_forward import LiveWalkForward, walk_forward

    frame = data.garch(420, seed=5)
    settings = dict(
        context_length=8, d_model=8, num_heads=1, num_layers=1, n_bins=11, epochs=1, seed=0
    )
    schedule = dict(
        features=lambda f: return_target(f).to_frame("ret"),
        lookback=8,
        train_size=300,
        test_size=100,
    )
    default = walk_forward(lambda: LMReturnModel(**settings), frame, **schedule)
    unscaled = walk_forward(lambda: LMReturnModel(**settings), frame, scale=False, **schedule)
    np.testing.assert_array_equal(default.predictions, unscaled.predictions)
    live = LiveWalkForward(lambda: LMReturnModel(**settings), **schedule)
    live.update(frame)
    assert live.scaler is None


def test_next_quantiles_invert_the_binned_distribution(fitted, prices):
    returns = np.diff(np.log(prices.to_numpy()))
    contexts = np.lib.stride_tricks.sliding_window_view(returns[:499], 16)[-4:]
    quantiles = fitted.next_quantiles(contexts, levels=[0.1, 0.5, 0.9])
    assert quantiles.shape == (4, 3) and (np.diff(quantiles, axis=1) > 0).all()
    # the CDF of the piecewise-uniform distribution at a quantile gives back its level
    probs, edges = fitted.next_distribution(contexts), fitted.tokenizer.bin_edges
    for row, p in zip(quantiles, probs, strict=True):
        for q, level in zip(row, (0.1, 0.5, 0.9), strict=True):
            k = np.searchsorted(edges, q, side="right") - 1
            inside = (q - edges[k]) / (edges[k + 1] - edges[k])
            assert p[:k].sum() + inside * p[k] == pytest.approx(level, abs=1e-9)


@pytest.fixture(scope="module")
def scaled(prices):
    return small(scaling="volatility", context_length=24).fit(prices.iloc[:500])


def test_volatility_scaled_forecasts_scale_with_the_volatility_of_the_history(scaled, prices):
    returns = np.diff(np.log(prices.to_numpy()))
    contexts = np.lib.stride_tricks.sliding_window_view(returns[:499], 100)[-3:]
    quantiles = scaled.next_quantiles(contexts)
    # the same moves three times as large: the same tokens, forecasts three times as wide
    np.testing.assert_allclose(scaled.next_quantiles(3 * contexts), 3 * quantiles, rtol=1e-9)
    np.testing.assert_allclose(scaled.next_scale(3 * contexts), 3 * scaled.next_scale(contexts))
    assert (quantiles[:, 0] < 0).all() and (quantiles[:, -1] > 0).all()


def test_volatility_scaled_samples_follow_the_exact_next_distribution(scaled, prices):
    history = prices.iloc[:500]
    returns = np.diff(np.log(history.to_numpy()))
    exact = scaled.next_quantiles(returns[None], levels=[0.1, 0.5, 0.9])[0]
    sampled = scaled.forecast(history, horizon=1, num_samples=4000, seed=2).samples[:, 0]
    np.testing.assert_allclose(np.quantile(sampled, [0.1, 0.5, 0.9]), exact, atol=0.1 * exact[2])
    paths = scaled.forecast(history, horizon=3, num_samples=50, seed=2)
    assert paths.samples.shape == (50, 3) and np.isfinite(paths.samples).all()


def test_validation_split_holds_out_the_end_of_each_series_and_keeps_the_best_epoch(prices):
    model = small(validation_split=0.25, patience=1, epochs=4, learning_rate=3e-2)
    model.fit(prices)
    losses = model.history.history["val_loss"]
    assert 1 <= len(losses) <= 4
    # the held-out windows are those of the last quarter of the returns
    returns = np.diff(np.log(prices.to_numpy()))
    tail = returns[len(returns) - round(0.25 * len(returns)) :]
    ids = model.tokenizer.encode(tail, kind="returns")
    windows = np.lib.stride_tricks.sliding_window_view(ids, 17)[::4]
    assert model.lm.evaluate(windows) == pytest.approx(min(losses), rel=1e-5)


def test_defaults_tokenize_volatility_scaled_returns_and_stop_early():
    model = LMForecaster()
    assert model.scaling == "volatility" and model.volatility_decay == 0.94
    assert model.validation_split == 0.1 and model.patience == 1
    from tradenn.models.lm_forecaster import LMReturnModel

    assert LMReturnModel().forecaster.scaling == "none"
