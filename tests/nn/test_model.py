"""Sequential training: learning real tasks, fit options, callbacks, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn

from .support import train


def spiral(points_per_class: int, classes: int = 3, seed: int = 0):
    """The classic interleaved-arms spiral (cs231n), a non-linearly-separable task."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for label in range(classes):
        radius = np.linspace(0.0, 1.0, points_per_class)
        angle = np.linspace(label * 4.0, (label + 1) * 4.0, points_per_class)
        angle += rng.normal(0.0, 0.2, points_per_class)
        x.append(np.c_[radius * np.sin(angle), radius * np.cos(angle)])
        y.append(np.full(points_per_class, label))
    return np.concatenate(x), np.concatenate(y)


def accuracy(model, x, labels):
    return float(np.mean(model.predict(x).argmax(axis=1) == labels))


# ----------------------------------------------------------------------------- learning


def test_dense_network_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = nn.Sequential([nn.Dense(8, activation="tanh"), nn.Dense(1)])
    loss = nn.BinaryCrossentropy(from_logits=True)
    train(model, x, y, loss, nn.Adam(0.05), epochs=300, batch_size=4)
    predicted = (model.predict(x) > 0.0).astype(np.float32)
    np.testing.assert_array_equal(predicted, y)


def test_dense_network_learns_a_three_class_spiral():
    x, labels = spiral(100)
    model = nn.Sequential(
        [nn.Dense(64, activation="relu"), nn.Dense(64, activation="relu"), nn.Dense(3)]
    )
    loss = nn.SparseCategoricalCrossentropy(from_logits=True)
    train(model, x, labels, loss, nn.Adam(0.01), epochs=300, batch_size=64)
    assert accuracy(model, x, labels) > 0.95


@pytest.mark.slow
def test_deeper_network_with_normalization_and_dropout_learns_a_larger_spiral():
    x, labels = spiral(1000, seed=1)
    model = nn.Sequential(
        [
            nn.Dense(128, activation="gelu"),
            nn.BatchNormalization(),
            nn.Dense(128, activation="relu"),
            nn.Dropout(0.1),
            nn.LayerNormalization(),
            nn.Dense(3),
        ]
    )
    loss = nn.SparseCategoricalCrossentropy(from_logits=True)
    train(model, x, labels, loss, nn.AdamW(0.005), epochs=60, batch_size=64)
    assert accuracy(model, x, labels) > 0.95


def test_linear_model_recovers_regression_coefficients_within_two_percent():
    rng = np.random.default_rng(0)
    coefficients, intercept = np.array([2.0, -3.0, 0.5]), 1.5
    x = rng.standard_normal((2000, 3))
    y = x @ coefficients + intercept + rng.normal(0.0, 0.1, 2000)
    model = nn.Sequential([nn.Dense(1)])
    train(model, x, y, "mse", nn.SGD(0.1), epochs=40, batch_size=100)
    kernel = model.layers[0].params["kernel"].ravel()
    np.testing.assert_allclose(kernel, coefficients, rtol=0.02)
    assert model.layers[0].params["bias"][0] == pytest.approx(intercept, rel=0.02)


# ----------------------------------------------------------------------------- determinism


def make_and_fit(seed):
    x, labels = spiral(20)
    model = nn.Sequential([nn.Dense(16, activation="relu"), nn.Dropout(0.2), nn.Dense(3)])
    history = model.fit(
        x,
        labels,
        loss=nn.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="adam",
        epochs=3,
        batch_size=16,
        verbose=0,
        seed=seed,
    )
    return model, history


def test_the_same_seed_gives_the_same_weights_batches_and_losses():
    first_model, first = make_and_fit(seed=42)
    second_model, second = make_and_fit(seed=42)
    assert first.history["loss"] == second.history["loss"]
    for a, b in zip(first_model.get_weights(), second_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_runs():
    _, first = make_and_fit(seed=1)
    _, second = make_and_fit(seed=2)
    assert first.history["loss"] != second.history["loss"]


# ----------------------------------------------------------------------------- fit options


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, x @ np.array([[1.0], [-1.0], [0.5]], dtype=np.float32)


def test_history_records_one_loss_per_epoch_and_it_decreases():
    x, y = regression_data()
    model = nn.Sequential([nn.Dense(1)])
    history = model.fit(x, y, loss="mse", optimizer=nn.SGD(0.1), epochs=5, verbose=0)
    assert history.epoch == [0, 1, 2, 3, 4]
    assert len(history.history["loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_validation_data_is_evaluated_every_epoch():
    x, y = regression_data()
    model = nn.Sequential([nn.Dense(1)])
    history = model.fit(
        x, y, loss="mse", optimizer="sgd", epochs=3, validation_data=(x[:8], y[:8]), verbose=0
    )
    assert len(history.history["val_loss"]) == 3
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x[:8], y[:8]))


def test_validation_split_holds_out_the_last_samples():
    x, y = regression_data(n=10)
    seen = []

    class Recorder(nn.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model = nn.Sequential([nn.Dense(1)])
    history = model.fit(
        x,
        y,
        loss="mse",
        optimizer="sgd",
        batch_size=4,
        epochs=1,
        validation_split=0.2,
        callbacks=[Recorder()],
        verbose=0,
    )
    assert seen == [0, 1]  # 8 training samples in batches of 4
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[8:], y[8:]))


def test_fit_without_shuffle_visits_samples_in_order():
    x = np.arange(6, dtype=np.float32)[:, None]
    batches = []

    class Spy(nn.Layer, register=False):
        def forward(self, x, training=False):
            if training:
                batches.append(x[:, 0].tolist())
            return self._prepare(x)

        def backward(self, dy):
            return dy

    model = nn.Sequential([Spy(), nn.Dense(1)])
    model.fit(x, x, loss="mse", optimizer="sgd", batch_size=4, shuffle=False, verbose=0)
    assert batches == [[0, 1, 2, 3], [4, 5]]


def test_fit_shows_a_progress_bar_with_the_loss(capsys):
    x, y = regression_data(n=16)
    nn.Sequential([nn.Dense(1)]).fit(x, y, loss="mse", optimizer="sgd", epochs=1, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "loss=" in err


def test_fit_verbose_two_prints_one_line_per_epoch(capsys):
    x, y = regression_data(n=16)
    nn.Sequential([nn.Dense(1)]).fit(x, y, loss="mse", optimizer="sgd", epochs=2, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in out] == ["Epoch 1/2", "Epoch 2/2"]


def test_fit_requires_a_loss_and_an_optimizer():
    x, y = regression_data(n=8)
    with pytest.raises(ValueError, match=r"no loss"):
        nn.Sequential([nn.Dense(1)]).fit(x, y, optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=r"no optimizer"):
        nn.Sequential([nn.Dense(1)]).fit(x, y, loss="mse", verbose=0)


def test_second_fit_reuses_loss_and_optimizer_state():
    x, y = regression_data()
    model = nn.Sequential([nn.Dense(1)])
    optimizer = nn.Adam(0.01)
    model.fit(x, y, loss="mse", optimizer=optimizer, epochs=1, batch_size=16, verbose=0)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.optimizer is optimizer and optimizer.iterations == 8


def test_mismatched_sample_counts_are_a_clear_error():
    with pytest.raises(ValueError, match=r"same number of samples"):
        nn.Sequential([nn.Dense(1)]).fit(
            np.zeros((5, 2)), np.zeros((4, 1)), loss="mse", optimizer="sgd", verbose=0
        )


# ----------------------------------------------------------------------------- inference


def test_predict_in_batches_equals_one_forward_pass(rng):
    model = nn.Sequential([nn.Dense(4, activation="tanh"), nn.BatchNormalization(), nn.Dense(2)])
    x = rng.standard_normal((70, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, batch_size=16), model.forward(x), rtol=1e-6)


def test_predict_uses_inference_mode():
    model = nn.Sequential([nn.Dropout(0.9)])
    x = np.ones((5, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x), x)


def test_evaluate_is_the_mean_loss_over_all_samples(rng):
    model = nn.Sequential([nn.Dense(1)])
    x, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 1))
    expected = np.mean((model.predict(x) - y) ** 2)
    assert model.evaluate(x, y, loss="mse", batch_size=3) == pytest.approx(expected, rel=1e-5)


def test_summary_lists_layers_shapes_and_parameter_counts():
    model = nn.Sequential([nn.Dense(8, name="hidden"), nn.BatchNormalization(name="bn")])
    model.build((None, 4))
    text = model.summary(print_fn=lambda _: None)
    assert "hidden (Dense)" in text and "(None, 8)" in text
    assert "Total params: 72" in text  # 4*8 + 8 + 4*8
    assert "Trainable params: 56" in text and "Non-trainable params: 16" in text


def test_summary_of_an_unbuilt_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"build the model"):
        nn.Sequential([nn.Dense(1)]).summary()


def test_shape_errors_name_the_layer():
    model = nn.Sequential([nn.Dense(4, name="first"), nn.Dense(1)])
    model.build((None, 3))
    with pytest.raises(ValueError, match=r"Dense 'first'.*\(None, \.\.\., 3\).*\(2, 5\)"):
        model.predict(np.zeros((2, 5)))


def test_duplicate_layer_names_are_rejected():
    with pytest.raises(ValueError, match=r"already"):
        nn.Sequential([nn.Dense(1, name="a"), nn.Dense(1, name="a")])


def test_layer_without_input_gradient_must_come_first():
    model = nn.Sequential([nn.Dense(2), nn.Embedding(3, 2)])
    model.layers[1].forward(np.array([[1]]))
    model.layers[1]._ids = np.array([[1]])
    model.layers[0].forward(np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match=r"only be the first layer"):
        model.backward(np.zeros((1, 1, 2), dtype=np.float32))


# ----------------------------------------------------------------------------- callbacks


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = regression_data()
    losses = [5.0, 3.0, 4.0, 4.5, 6.0, 1.0]
    snapshots = []

    class FakeValidation(nn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = losses[epoch]
            snapshots.append(self.model.get_weights())

    stopper = nn.EarlyStopping(patience=2, restore_best_weights=True)
    model = nn.Sequential([nn.Dense(1)])
    history = model.fit(
        x,
        y,
        loss="mse",
        optimizer=nn.SGD(0.05),
        epochs=6,
        callbacks=[FakeValidation(), stopper],
        verbose=0,
    )
    assert history.epoch == [0, 1, 2, 3]  # best at 1, no improvement at 2 and 3
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    for restored, best in zip(model.get_weights(), snapshots[1], strict=True):
        np.testing.assert_array_equal(restored, best)


def test_early_stopping_without_the_monitored_value_is_a_clear_error():
    x, y = regression_data(n=8)
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*validation"):
        nn.Sequential([nn.Dense(1)]).fit(
            x, y, loss="mse", optimizer="sgd", callbacks=[nn.EarlyStopping()], verbose=0
        )


def test_model_checkpoint_saves_the_best_epochs(tmp_path):
    x, y = regression_data()
    path = tmp_path / "best-{epoch}.npz"
    model = nn.Sequential([nn.Dense(1)])
    model.fit(
        x,
        y,
        loss="mse",
        optimizer=nn.SGD(0.05),
        epochs=3,
        verbose=0,
        callbacks=[nn.ModelCheckpoint(str(path), monitor="loss", save_best_only=True)],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-1.npz", "best-2.npz", "best-3.npz"]
    reloaded = nn.load(tmp_path / "best-3.npz")
    np.testing.assert_array_equal(reloaded.predict(x), model.predict(x))


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    x, y = regression_data(n=8)
    rates = []

    class Spy(nn.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(self.model.optimizer.learning_rate)

    model = nn.Sequential([nn.Dense(1)])
    history = model.fit(
        x,
        y,
        loss="mse",
        optimizer=nn.SGD(0.1),
        epochs=3,
        verbose=0,
        callbacks=[nn.LearningRateScheduler(lambda epoch, lr: lr * 0.5), Spy()],
    )
    assert rates == pytest.approx([0.05, 0.025, 0.0125])
    assert history.history["learning_rate"] == pytest.approx(rates)


def test_fit_on_no_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="no samples"):
        nn.Sequential([nn.Dense(1)]).fit(
            np.zeros((0, 2)), np.zeros((0, 1)), loss="mse", optimizer="sgd", verbose=0
        )


def test_training_on_float64_data_keeps_every_array_float32():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 4)), rng.standard_normal((32, 1))  # float64 data
    model = nn.Sequential(
        [
            nn.Dense(8, activation="gelu"),
            nn.BatchNormalization(),
            nn.LayerNormalization(),
            nn.Dropout(0.1),
            nn.Dense(1),
        ]
    )
    model.fit(x, y, loss="huber", optimizer=nn.AdamW(), epochs=1, batch_size=8, verbose=0)
    arrays = [
        a
        for layer in nn.walk(model)
        for d in (layer.params, layer.grads, layer.state)
        for a in d.values()
    ]
    arrays += [a for key, a in model.optimizer.get_state().items() if key != "iterations"]
    assert arrays and all(a.dtype == np.float32 for a in arrays)
    assert model.predict(x).dtype == np.float32


def test_a_training_step_skips_the_input_gradient_of_the_first_layer_only(rng):
    model = nn.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1)])
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    model.build(x.shape)
    seen = []
    for layer in model.layers:
        original = layer.backward

        def spy(dy, layer=layer, original=original):
            seen.append((layer.name, layer.needs_input_grad))
            return original(dy)

        layer.backward = spy
    model.train_on_batch(x, y, loss="mse", optimizer="sgd")
    assert seen == [(model.layers[1].name, True), (model.layers[0].name, False)]
    assert all(layer.needs_input_grad for layer in model.layers)  # restored afterwards
    # a plain backward call (gradcheck, a model inside a model) still returns dL/dx
    model.forward(x)
    assert model.backward(np.ones((8, 1))).shape == x.shape


def test_skipping_the_input_gradient_leaves_parameter_gradients_unchanged(rng):
    model = nn.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1)])
    x = rng.standard_normal((8, 3))
    model.forward(x)
    model.backward(np.ones((8, 1)))
    full = [g.copy() for _, g in sorted(model.layers[0].grads.items())]
    model.forward(x)
    assert nn.base.backward_without_input_grad(model, np.ones((8, 1))) is None
    skipped = [g for _, g in sorted(model.layers[0].grads.items())]
    for a, b in zip(full, skipped, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- masks

# Token ids with padding (id 0) in the middle and at the end of a sequence.
IDS = np.array([[3, 1, 0, 2, 0, 0], [4, 4, 2, 1, 3, 0], [0, 0, 1, 2, 3, 4]])


def test_sequential_hands_the_embedding_mask_to_the_recurrent_layers(rng, float64):
    embedding = nn.Embedding(5, 4, mask_zero=True)
    lstm = nn.LSTM(3, return_sequences=True)
    gru = nn.GRU(2, reset_after=False)
    model = nn.Sequential([embedding, nn.Dense(4, activation="tanh"), lstm, gru, nn.Dense(1)])
    y = model.forward(IDS)
    mask = IDS != 0
    h = model.layers[1].forward(embedding.forward(IDS))
    expected = model.layers[-1].forward(gru.forward(lstm.forward(h, mask=mask), mask=mask))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)
    unmasked = nn.Sequential([nn.Embedding(5, 4), *model.layers[1:]])
    unmasked.build(IDS.shape)
    unmasked.layers[0].params["embeddings"][...] = embedding.params["embeddings"]
    assert not np.allclose(unmasked.forward(IDS), y)


def test_a_masked_sequential_model_matches_finite_differences(rng, float64):
    model = nn.Sequential(
        [nn.Embedding(5, 3, mask_zero=True), nn.GRU(3, return_sequences=True), nn.LSTM(2)]
    )
    assert nn.gradcheck(model, IDS) < 1e-6


def test_the_mask_stops_at_layers_that_do_not_pass_it_on(rng, float64):
    embedding = nn.Embedding(5, 4, mask_zero=True)
    ids = np.array([[3, 1, 0, 2]])
    assert nn.LSTM(2).compute_mask(ids, embedding.compute_mask(ids)) is None
    assert nn.Conv1D(4, 1).compute_mask(ids, embedding.compute_mask(ids)) is None
    conv = nn.Conv1D(4, 1)
    lstm = nn.LSTM(2)
    y = nn.Sequential([embedding, conv, lstm]).forward(ids)
    np.testing.assert_array_equal(y, lstm.forward(conv.forward(embedding.forward(ids))))


@pytest.mark.parametrize(
    "attention",
    [lambda: nn.MultiHeadAttention(2, 2), lambda: nn.TransformerBlock(4, 2, causal=False)],
    ids=["multi_head_attention", "transformer_block"],
)
def test_self_attention_in_a_sequential_model_ignores_padded_tokens(attention, rng, float64):
    embedding = nn.Embedding(5, 4, mask_zero=True)
    model = nn.Sequential([embedding, attention(), nn.GRU(3)])
    y = model.forward(IDS)
    x, mask = embedding.forward(IDS), IDS != 0
    if isinstance(model.layers[1], nn.MultiHeadAttention):
        attended = model.layers[1].forward(x, query_mask=mask, value_mask=mask)
    else:
        attended = model.layers[1].forward(x, mask=mask)
    np.testing.assert_allclose(y, model.layers[2].forward(attended, mask=mask), atol=1e-14)
    embedding.params["embeddings"][0] = rng.standard_normal(4) * 10  # the padding vector
    np.testing.assert_allclose(model.forward(IDS), y, rtol=0, atol=1e-12)


def test_a_model_with_mask_zero_trains_saves_and_loads(tmp_path, rng):
    model = nn.Sequential(
        [nn.Embedding(5, 4, mask_zero=True), nn.LSTM(3, return_sequences=True), nn.GRU(2)]
    )
    model.add(nn.Dense(1))
    ids = rng.integers(0, 5, (16, 6))
    model.fit(ids, rng.standard_normal((16, 1)), loss="mse", optimizer="adam", verbose=0)
    model.save(tmp_path / "masked.npz")
    loaded = nn.load(tmp_path / "masked.npz")
    assert loaded.layers[0].mask_zero
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
