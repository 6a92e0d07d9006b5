"""The shared training loop (tradenn.nn.training): batches, epoch losses, validation,
stopping, printing and argument checks, on a model that records what the loop asks of it."""

from __future__ import annotations

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.training import check_fit_arguments, fit_loop


class Recorder:
    """The loop's side of a model: a step returning the batch mean, and a fixed score."""

    def __init__(self, losses=None):
        self.stop_training = False
        self.batches: list[np.ndarray] = []
        self.losses = losses  # per step, instead of the batch mean

    def train_on_batch(self, x, y):
        self.batches.append(x.copy())
        np.testing.assert_array_equal(y, -x)  # rows of x and y stay paired
        if self.losses is not None:
            return self.losses[len(self.batches) - 1]
        return float(x.mean())

    def evaluate(self, x, batch_size=32):
        return float(x.sum()) + batch_size


def data(n=5):
    x = np.arange(n, dtype=np.float64)
    return x, -x


def test_the_epoch_loss_is_the_sample_weighted_mean_of_the_batch_losses():
    model = Recorder()
    history = fit_loop(model, data(), epochs=1, batch_size=2, shuffle=False, verbose=0)
    # batches [0, 1], [2, 3], [4] with means 0.5, 2.5, 4: (2 * 0.5 + 2 * 2.5 + 1 * 4) / 5
    assert history.history == {"loss": [2.0]}
    assert [batch.tolist() for batch in model.batches] == [[0, 1], [2, 3], [4]]


def test_shuffled_batches_follow_the_given_generator_afresh_every_epoch():
    model = Recorder()
    fit_loop(model, data(), epochs=2, batch_size=2, rng=np.random.default_rng(3), verbose=0)
    reference = np.random.default_rng(3)
    first, second = reference.permutation(5), reference.permutation(5)
    expected = [order[i : i + 2].tolist() for order in (first, second) for i in (0, 2, 4)]
    assert [batch.astype(int).tolist() for batch in model.batches] == expected


def test_without_a_generator_the_orders_come_from_the_package_generator():
    first, second = Recorder(), Recorder()
    nn.set_seed(8)
    fit_loop(first, data(9), epochs=2, batch_size=4, verbose=0)
    nn.set_seed(8)
    fit_loop(second, data(9), epochs=2, batch_size=4, verbose=0)
    assert [b.tolist() for b in first.batches] == [b.tolist() for b in second.batches]
    assert sorted(np.concatenate(first.batches[:3]).tolist()) == list(range(9))


def test_validation_loss_is_logged_after_every_epoch_with_the_batch_size():
    history = fit_loop(
        Recorder(), data(), epochs=2, batch_size=3, validation_data=(np.ones(4),), verbose=0
    )
    assert history.history["val_loss"] == [7.0, 7.0]  # sum 4 + batch_size 3
    assert history.epoch == [0, 1]


def test_a_callback_that_sets_stop_training_ends_the_loop_after_that_epoch():
    model = Recorder(losses=[3.0, 1.0, 2.0, 2.0, 2.0, 2.0])  # one batch per epoch
    stopper = nn.EarlyStopping(monitor="loss", patience=1)
    history = fit_loop(model, data(), epochs=6, batch_size=5, callbacks=[stopper], verbose=0)
    assert history.history["loss"] == [3.0, 1.0, 2.0]
    assert stopper.stopped_epoch == 2 and stopper.best_epoch == 1


def test_callbacks_see_every_batch_loss_and_zero_epochs_train_nothing():
    seen = []

    class Spy(nn.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    fit_loop(
        Recorder(), data(), epochs=1, batch_size=2, shuffle=False, callbacks=[Spy()], verbose=0
    )
    assert seen == [(0, 0.5), (1, 2.5), (2, 4.0)]
    model = Recorder()
    assert fit_loop(model, data(), epochs=0, verbose=0).history == {}
    assert model.batches == []


def test_verbose_2_prints_one_line_per_epoch(capsys):
    fit_loop(
        Recorder(),
        data(),
        epochs=2,
        batch_size=5,
        shuffle=False,
        validation_data=(np.ones(2),),
        verbose=2,
    )
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1/2 - loss=2 - val_loss=7",
        "Epoch 2/2 - loss=2 - val_loss=7",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"epochs": -1}, r"Recorder.fit: epochs must be a non-negative integer, got -1"),
        ({"epochs": 2.5}, r"epochs must be a non-negative integer, got 2.5"),
        ({"epochs": True}, r"epochs must be a non-negative integer, got True"),
        ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
        ({"batch_size": "8"}, r"batch_size must be a positive integer, got '8'"),
        ({"verbose": 3}, r"verbose must be an integer in \[0, 2\], got 3"),
    ],
)
def test_bad_loop_arguments_are_one_line_errors(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        fit_loop(Recorder(), data(), **arguments)
    assert "\n" not in str(error.value)


def test_training_arrays_of_different_lengths_are_a_one_line_error():
    with pytest.raises(ValueError, match=r"same N >= 1 rows, got \(5,\), \(4,\)"):
        fit_loop(Recorder(), (np.zeros(5), np.zeros(4)), verbose=0)


def test_model_fit_checks_its_arguments_through_the_loop():
    with pytest.raises(ValueError, match=r"Sequential\.fit: batch_size must be a positive integer"):
        nn.Sequential([nn.Dense(1)]).fit(*data(), loss="mse", optimizer="sgd", batch_size=0)
    check_fit_arguments("anything", np.int64(3), 1, 0)  # numpy integers are integers
    with pytest.raises(ValueError, match=r"anything: epochs must be a non-negative integer"):
        check_fit_arguments("anything", 3.0, 1, 0)  # as everywhere in tradenn.checks
