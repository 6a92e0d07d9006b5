"""Neural forecasters: they learn (AR(1) near the Bayes risk), are seeded, stop early on the
validation tail, standardize with training statistics only, save and load exactly, and reject
bad input with one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tradenn import nn
from tradenn.models.forecasters import (
    AttentionForecaster,
    ConvForecaster,
    GRUForecaster,
    LSTMForecaster,
    NeuralForecaster,
)
from tradenn.nn.serialization import ModelFileError

PHI, SIGMA, WINDOW = 0.2, 0.01, 10

# one small configuration per architecture, quick to train
SMALL = {
    "lstm": lambda **kw: LSTMForecaster(units=6, **kw),
    "gru": lambda **kw: GRUForecaster(units=6, **kw),
    "lstm-dropout": lambda **kw: LSTMForecaster(units=6, num_layers=2, dropout=0.2, **kw),
    "attention-lstm": lambda **kw: AttentionForecaster(units=6, **kw),
    "attention-transformer": lambda **kw: AttentionForecaster(
        units=8, encoder="transformer", num_heads=2, dropout=0.1, **kw
    ),
    "conv": lambda **kw: ConvForecaster(filters=6, kernel_size=2, dilations=(1, 2), **kw),
}


def ar1_windows(n_samples, seed, phi=PHI, sigma=SIGMA, window=WINDOW, burn_in=200):
    """Windows of the last ``window`` AR(1) returns ``(N, window, 1)`` and the next return."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, sigma, n_samples + window + burn_in)
    r = np.zeros_like(eps)
    for t in range(1, len(r)):  # sequential by definition
        r[t] = phi * r[t - 1] + eps[t]
    r = r[burn_in:]
    X = np.lib.stride_tricks.sliding_window_view(r[:-1], window)[:, :, None]
    return np.ascontiguousarray(X), r[window:]


@pytest.fixture(scope="module")
def ar1():
    X, y = ar1_windows(12000, seed=11)  # 4000 to train on, 8000 to test on
    return X[:4000], y[:4000], X[4000:], y[4000:]


@pytest.fixture(scope="module")
def ar1_large():
    X, y = ar1_windows(24000, seed=12)  # 16000 to train on, 8000 to test on
    return X[:16000], y[:16000], X[16000:], y[16000:]


def signal_task(n_samples, seed, steps=10, features=2):
    """A deterministic target of the window at return scale: y = 0.01 (x[-1, 0] - 0.5 x[-4, 1])."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, steps, features))
    return X, 0.01 * (X[:, -1, 0] - 0.5 * X[:, -4, 1])


def noise_task(n_samples=200, seed=0, steps=5, features=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_samples, steps, features)), 0.01 * rng.standard_normal(n_samples)


def mse(a, b):
    return float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))


def assert_near_bayes_risk(model, ar1, tolerance, gap):
    """Out-of-sample MSE near the Bayes risk ``sigma^2`` and closing most of the possible gain.

    The Bayes-optimal forecast is ``phi r_{t-1}`` with risk ``sigma^2``. Its realized MSE on the
    same test samples takes the sampling noise of the test set out of the comparison, so the
    model is held to ``tolerance`` of that too. The zero forecast is only ``1 / (1 - phi^2) - 1
    = 4%`` worse than the Bayes risk, so the model must also close all but ``gap`` of the
    difference between the two.
    """
    X_train, y_train, X_test, y_test = ar1
    model_mse = mse(model.fit(X_train, y_train).predict(X_test), y_test)
    bayes_mse = mse(PHI * X_test[:, -1, 0], y_test)
    zero_mse = mse(0.0, y_test)
    assert model_mse <= 1.05 * SIGMA**2
    assert model_mse <= (1 + tolerance) * bayes_mse
    assert model_mse - bayes_mse <= gap * (zero_mse - bayes_mse)


# ----------------------------------------------------------------------------- it learns


@pytest.mark.parametrize("cls", [LSTMForecaster, GRUForecaster])
def test_recurrent_forecaster_reaches_the_bayes_risk_on_ar1(cls, ar1):
    model = cls(units=8, epochs=10, learning_rate=3e-3, seed=0)
    assert_near_bayes_risk(model, ar1, tolerance=0.02, gap=0.25)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AttentionForecaster(units=16, epochs=60, learning_rate=1e-2, seed=0),
        lambda: AttentionForecaster(
            units=8, encoder="transformer", epochs=40, learning_rate=3e-3, seed=0
        ),
        lambda: ConvForecaster(filters=8, epochs=40, learning_rate=5e-3, seed=0),
    ],
    ids=["attention-lstm", "attention-transformer", "conv"],
)
def test_attention_and_conv_forecasters_learn_a_deterministic_signal(make):
    X, y = signal_task(1200, seed=3)
    model = make().fit(X[:1000], y[:1000])
    # the zero forecast's MSE is var(y); a model that learned the signal is far below it
    assert mse(model.predict(X[1000:]), y[1000:]) < 0.02 * mse(0.0, y[1000:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda: LSTMForecaster(units=16, epochs=60, seed=1),
        lambda: GRUForecaster(units=16, epochs=60, seed=1),
        lambda: AttentionForecaster(units=16, epochs=60, learning_rate=3e-3, seed=1),
        lambda: AttentionForecaster(
            units=16, encoder="transformer", epochs=60, learning_rate=1e-3, seed=1
        ),
        lambda: ConvForecaster(filters=16, epochs=60, learning_rate=1e-3, seed=1),
    ],
    ids=["lstm", "gru", "attention-lstm", "attention-transformer", "conv"],
)
def test_every_forecaster_gets_close_to_the_bayes_risk_on_ar1(make, ar1_large):
    # the attention and convolution networks are more flexible than an AR(1) needs and
    # overfit its weak signal on 4000 samples (they close only half to 80% of the gap to
    # the Bayes risk there); with 16000 every model gets within 1% of it
    assert_near_bayes_risk(make(), ar1_large, tolerance=0.01, gap=0.25)


# ----------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("name", list(SMALL))
def test_same_seed_gives_identical_predictions_and_another_seed_does_not(name):
    X, y = noise_task(160)
    settings = dict(epochs=2, batch_size=32, validation_fraction=0.2)
    first = SMALL[name](seed=5, **settings).fit(X, y).predict(X)
    again = SMALL[name](seed=5, **settings).fit(X, y).predict(X)
    other = SMALL[name](seed=6, **settings).fit(X, y).predict(X)
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(other, first)


def test_refitting_the_same_object_repeats_the_result():
    X, y = noise_task(100)
    model = LSTMForecaster(units=4, epochs=2, seed=3)
    first = model.fit(X, y).predict(X)
    np.testing.assert_array_equal(model.fit(X, y).predict(X), first)


# ----------------------------------------------------------------------------- validation tail


def standardized_tail_mse(model, X, y, cut):
    """Validation MSE in standardized units, with the statistics of ``y[:cut]`` (ddof 0)."""
    mean, scale = y[:cut].mean(), y[:cut].std()
    return mse((model.predict(X[cut:]) - mean) / scale, (y[cut:] - mean) / scale)


def test_validation_loss_is_the_loss_on_the_last_samples():
    X, y = noise_task(200)
    model = LSTMForecaster(units=4, epochs=1, validation_fraction=0.2, seed=0).fit(X, y)
    (val_loss,) = model.history_["val_loss"]
    assert val_loss == pytest.approx(standardized_tail_mse(model, X, y, cut=160), rel=1e-5)


def test_the_validation_tail_never_reaches_training_or_scaling():
    X, y = noise_task(200)
    settings = dict(units=4, epochs=1, validation_fraction=0.2, seed=0)
    reference = LSTMForecaster(**settings).fit(X, y).predict(X)
    X_tail, y_tail = X.copy(), y.copy()
    X_tail[160:] = 100.0 * X_tail[160:] + 7.0
    y_tail[160:] = -5.0
    np.testing.assert_array_equal(
        LSTMForecaster(**settings).fit(X_tail, y_tail).predict(X), reference
    )
    y_head = y.copy()
    y_head[:20] *= 3.0  # the same change before the tail does change the model
    assert not np.array_equal(LSTMForecaster(**settings).fit(X, y_head).predict(X), reference)


def test_validation_size_rounds_up_to_a_whole_sample():
    X, y = noise_task(41)
    model = GRUForecaster(units=4, epochs=1, validation_fraction=0.1, seed=0).fit(X, y)
    # ceil(41 * 0.1) = 5 validation samples
    assert model.history_["val_loss"][0] == pytest.approx(
        standardized_tail_mse(model, X, y, cut=36), rel=1e-5
    )


def test_without_validation_training_runs_every_epoch():
    X, y = noise_task(60)
    model = LSTMForecaster(units=4, epochs=3, validation_fraction=0.0, seed=0).fit(X, y)
    assert list(model.history_) == ["loss"]
    assert len(model.history_["loss"]) == 3
    assert model.best_epoch_ == 2


# ----------------------------------------------------------------------------- early stopping


def overfit_noise(patience):
    """A big LSTM fitted with a large step to pure noise, where its validation loss soon rises
    (overfitting): the model and the noise ``X, y``."""
    X, y = noise_task(120, seed=1)
    model = LSTMForecaster(
        units=32,
        epochs=200,
        learning_rate=2e-2,
        patience=patience,
        validation_fraction=0.25,
        seed=0,
    ).fit(X, y)
    return model, X, y


def test_early_stopping_stops_and_restores_the_best_validation_epoch():
    model, X, y = overfit_noise(patience=3)
    val_loss = model.history_["val_loss"]
    assert len(val_loss) < 200
    assert model.best_epoch_ == int(np.argmin(val_loss))
    assert len(val_loss) == model.best_epoch_ + 3 + 1  # stopped after `patience` worse epochs
    restored = standardized_tail_mse(model, X, y, cut=90)
    assert restored == pytest.approx(min(val_loss), rel=1e-4)
    assert val_loss[-1] > 1.01 * min(val_loss)  # the last epoch's weights were worse


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    model, _, _ = overfit_noise(patience=0)
    val_loss = model.history_["val_loss"]
    assert len(val_loss) == model.best_epoch_ + 2
    assert val_loss[-1] >= val_loss[-2]


# ----------------------------------------------------------------------------- scaling


def test_predictions_are_in_the_units_of_the_targets():
    X, y = signal_task(400, seed=0)
    settings = dict(units=6, epochs=3, seed=0)
    base = LSTMForecaster(**settings).fit(X, y).predict(X)
    # standardization makes the network see the same targets: predictions scale with y
    scaled = LSTMForecaster(**settings).fit(X, 250.0 * y + 3.0).predict(X)
    np.testing.assert_allclose(scaled, 250.0 * base + 3.0, rtol=1e-4)


def test_inputs_are_standardized_per_feature():
    X, y = signal_task(400, seed=0)
    settings = dict(units=6, epochs=3, seed=0)
    base = LSTMForecaster(**settings).fit(X, y).predict(X)
    shifted = X * np.array([100.0, 0.01]) + np.array([5.0, -2.0])
    moved = LSTMForecaster(**settings).fit(shifted, y).predict(shifted)
    np.testing.assert_allclose(moved, base, rtol=1e-3, atol=1e-3 * np.std(base))
    raw = LSTMForecaster(scale_inputs=False, **settings).fit(shifted, y).predict(shifted)
    assert not np.allclose(raw, base, rtol=1e-3, atol=1e-3 * np.std(base))


def test_constant_targets_and_features_do_not_divide_by_zero():
    X, _ = noise_task(80)
    X[:, :, 1] = 4.0
    model = GRUForecaster(units=4, epochs=2, seed=0).fit(X, np.full(80, 0.003))
    prediction = model.predict(X)
    assert np.all(np.isfinite(prediction))
    np.testing.assert_allclose(prediction, 0.003, atol=0.003)


# ----------------------------------------------------------------------------- architecture


def test_conv_forecaster_sees_only_its_receptive_field():
    X, y = noise_task(100, steps=10)
    model = ConvForecaster(filters=4, kernel_size=2, dilations=(1, 2), epochs=1, seed=0)
    assert model.receptive_field == 4
    model.fit(X, y)
    changed = X.copy()
    changed[:, :6] = 50.0  # steps older than the last 4
    np.testing.assert_array_equal(model.predict(changed), model.predict(X))
    changed[:, 6] += 1.0  # the oldest step inside the field
    assert not np.array_equal(model.predict(changed), model.predict(X))


def test_networks_have_the_described_layers():
    X, y = noise_task(40, steps=6)
    kinds = {
        "lstm-dropout": [nn.LSTM, nn.Dropout, nn.LSTM, nn.Dropout, nn.Dense],
        "attention-lstm": [nn.LSTM, nn.AttentionPooling1D, nn.Dense],
        "attention-transformer": [
            nn.Dense,
            nn.PositionEmbedding,
            nn.TransformerBlock,
            nn.LayerNormalization,
            nn.AttentionPooling1D,
            nn.Dense,
        ],
        "conv": [nn.Conv1D, nn.Conv1D, nn.LastTimestep, nn.Dense],
    }
    for name, expected in kinds.items():
        model = SMALL[name](epochs=1, seed=0).fit(X, y)
        assert [type(layer) for layer in model.network_.layers] == expected, name
    conv = SMALL["conv"](epochs=1, seed=0).fit(X, y).network_.layers
    assert [layer.dilation_rate for layer in conv[:2]] == [(1,), (2,)]
    assert all(layer.padding == "causal" for layer in conv[:2])
    assert GRUForecaster(units=4, epochs=1).fit(X, y).network_.layers[0].__class__ is nn.GRU


def test_clipnorm_reaches_the_optimizer():
    X, y = noise_task(40)
    model = LSTMForecaster(units=4, epochs=1, clipnorm=0.5, seed=0).fit(X, y)
    assert model.network_.optimizer.global_clipnorm == 0.5
    assert LSTMForecaster(units=4, epochs=1).fit(X, y).network_.optimizer.global_clipnorm is None


@pytest.mark.parametrize("name", list(SMALL))
def test_every_forecaster_reads_sequences(name):
    assert SMALL[name]().input_kind == "sequence"


# ----------------------------------------------------------------------------- files and config


@pytest.mark.parametrize("name", list(SMALL))
def test_save_and_load_give_bit_identical_predictions(name, tmp_path):
    X, y = noise_task(80)
    model = SMALL[name](epochs=2, seed=1).fit(X, y)
    path = tmp_path / "forecaster.npz"
    model.save(path)
    loaded = type(model).load(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert loaded.history_ == model.history_ and loaded.best_epoch_ == model.best_epoch_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(NeuralForecaster.load(path).predict(X), model.predict(X))


def test_loading_a_file_of_another_class_is_a_clear_error(tmp_path):
    X, y = noise_task(40)
    LSTMForecaster(units=4, epochs=1).fit(X, y).save(tmp_path / "lstm.npz")
    with pytest.raises(
        ModelFileError, match=r"is a tradenn\.models\.LSTMForecaster file, not a GRUForecaster"
    ):
        GRUForecaster.load(tmp_path / "lstm.npz")
    plain = nn.Sequential([nn.Dense(1)])
    plain.build((None, 3))
    plain.save(tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match=r"is a tradenn\.nn\.Model file, not a LSTMForecaster"):
        LSTMForecaster.load(tmp_path / "plain.npz")


@pytest.mark.parametrize("name", list(SMALL))
def test_get_config_is_json_and_recreates_the_forecaster(name):
    model = SMALL[name](epochs=7, patience=2, clipnorm=1.0, seed=9)
    config = json.loads(json.dumps(model.get_config()))
    assert type(model)(**config).get_config() == model.get_config()
    assert config["epochs"] == 7 and config["seed"] == 9 and config["clipnorm"] == 1.0


# ----------------------------------------------------------------------------- errors


def test_predict_and_save_before_fit_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^LSTMForecaster: call fit\(X, y\) before predict$"):
        LSTMForecaster().predict(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"^ConvForecaster: call fit\(X, y\) before save$"):
        ConvForecaster().save(tmp_path / "x.npz")


@pytest.fixture(scope="module")
def fitted_small():
    X, y = noise_task(40, steps=5, features=3)
    return GRUForecaster(units=4, epochs=1, seed=0).fit(X, y)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((4, 5)), r"X must have shape \(N, T, F\) with N, T, F >= 1, got shape \(4, 5\)"),
        (np.zeros((0, 5, 3)), r"X must have shape \(N, T, F\)"),
        (np.zeros((4, 6, 3)), r"X must have T=5 time steps and F=3 features as in fit"),
        (np.zeros((4, 5, 2)), r"X must have T=5 time steps and F=3 features as in fit"),
        (np.full((4, 5, 3), np.nan), r"X contains NaN or inf \(first at index \(0, 0, 0\)\)"),
        ([["a"]], r"X must be a numeric array"),
    ],
)
def test_bad_predict_input_is_a_one_line_error(fitted_small, X, message):
    with pytest.raises(ValueError, match=rf"^GRUForecaster: {message}") as error:
        fitted_small.predict(X)
    assert "\n" not in str(error.value)


def test_bad_fit_input_is_a_one_line_error():
    X, y = noise_task(20)
    model = LSTMForecaster(units=4, epochs=1)
    bad_X = X.copy()
    bad_X[3, 2, 1] = np.inf
    with pytest.raises(ValueError, match=r"^LSTMForecaster: X contains NaN or inf .*\(3, 2, 1\)"):
        model.fit(bad_X, y)
    bad_y = y.copy()
    bad_y[7] = np.nan
    with pytest.raises(ValueError, match=r"^LSTMForecaster: y contains NaN or inf .*\(7,\)"):
        model.fit(X, bad_y)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\) to match X, got \(19,\)"):
        model.fit(X, y[:19])
    with pytest.raises(ValueError, match=r"y must have shape \(20,\) to match X, got \(20, 1\)"):
        model.fit(X, y[:, None])
    with pytest.raises(ValueError, match=r"needs at least one training sample besides the 1"):
        model.fit(X[:1], y[:1])
    assert model.network_ is None  # nothing was fitted by the failed calls


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy reports the overflow too
def test_diverging_training_is_a_clear_error():
    X, y = noise_task(100)
    model = ConvForecaster(filters=4, epochs=3, learning_rate=1e30, seed=0)
    with pytest.raises(ValueError, match=r"^ConvForecaster: training diverged .* lower learning"):
        model.fit(X, y)
    assert model.network_ is None
    model.learning_rate = 1e-3
    before = model.fit(X, y).predict(X)
    model.learning_rate = 1e30
    with pytest.raises(ValueError, match=r"training diverged"):
        model.fit(100.0 * X, y)
    np.testing.assert_array_equal(model.predict(X), before)  # the failed refit changed nothing


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LSTMForecaster(epochs=0), r"LSTMForecaster: epochs must be a positive integer"),
        (lambda: GRUForecaster(batch_size=1.5), r"batch_size must be a positive integer"),
        (lambda: LSTMForecaster(learning_rate=-1e-3), r"learning_rate must be a finite number > 0"),
        (
            lambda: LSTMForecaster(learning_rate=np.nan),
            r"learning_rate must be a finite number > 0",
        ),
        (lambda: LSTMForecaster(clipnorm=0), r"clipnorm must be a finite number > 0"),
        (lambda: LSTMForecaster(validation_fraction=1.0), r"validation_fraction must be in"),
        (lambda: LSTMForecaster(patience=-1), r"patience must be a non-negative integer"),
        (lambda: LSTMForecaster(seed=None), r"seed must be a non-negative integer, got None"),
        (lambda: LSTMForecaster(verbose=3), r"verbose must be an integer in \[0, 2\]"),
        (lambda: LSTMForecaster(units=0), r"units must be a positive integer"),
        (lambda: GRUForecaster(num_layers=True), r"num_layers must be a positive integer"),
        (lambda: LSTMForecaster(dropout=1.0), r"dropout must be in \[0, 1\)"),
        (
            lambda: AttentionForecaster(encoder="gru"),
            r"encoder must be one of 'lstm', 'transformer'",
        ),
        (
            lambda: AttentionForecaster(units=10, num_heads=4, encoder="transformer"),
            r"units=10 must be divisible by num_heads=4",
        ),
        (lambda: ConvForecaster(kernel_size=0), r"kernel_size must be a positive integer"),
        (lambda: ConvForecaster(dilations=()), r"dilations must hold at least one rate"),
        (lambda: ConvForecaster(dilations=(1, 0)), r"every dilation must be a positive integer"),
        (lambda: ConvForecaster(dilations=2), r"dilations must be a sequence of positive"),
        (lambda: LSTMForecaster(epoch=3), r"unexpected keyword argument 'epoch'"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message) as error:
        make()
    assert "\n" not in str(error.value)
