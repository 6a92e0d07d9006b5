"""save / load: bit-identical round trips, optimizer state, clear errors on bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.serialization import HEADER_KEY, format_name, read_file, write_file


def trained_model(rng, dtype=None):
    model = nn.Sequential(
        [
            nn.Dense(8, activation="gelu", kernel_regularizer=nn.regularizers.L2(1e-3)),
            nn.BatchNormalization(),
            nn.Dropout(0.2),  # unseeded: fit(seed=...) fixes its masks
            nn.Dense(4, activation=nn.activations.LeakyReLU(0.1)),
            nn.LayerNormalization(),
            nn.Dense(1),
        ],
        dtype=dtype,
    )
    x = rng.standard_normal((32, 5))
    y = rng.standard_normal((32, 1))
    model.fit(x, y, loss=nn.Huber(0.5), optimizer=nn.Adam(0.01), epochs=2, batch_size=8, verbose=0)
    return model, x, y


def saved_model(tmp_path, rng):
    """The path ``tmp_path / "model.npz"`` that ``trained_model(rng)`` is saved to."""
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def test_round_trip_gives_bit_identical_predictions(tmp_path, rng):
    model, x, _ = trained_model(rng)
    model.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_round_trip_keeps_float64_models_in_float64(tmp_path, rng):
    nn.set_dtype(np.float64)
    model64, x, _ = trained_model(rng)
    model64.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    assert loaded.predict(x).dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(x), model64.predict(x))


def test_round_trip_restores_moving_statistics(tmp_path, rng):
    model, _, _ = trained_model(rng)
    model.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(
        loaded.layers[1].state["moving_variance"], model.layers[1].state["moving_variance"]
    )


def test_training_continues_identically_after_loading(tmp_path, rng):
    model, x, y = trained_model(rng)
    model.save(tmp_path / "model.npz")
    loaded = nn.load(tmp_path / "model.npz")
    assert isinstance(loaded.optimizer, nn.Adam) and isinstance(loaded.loss, nn.Huber)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, seed=3)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_embedding_model_round_trip(tmp_path, rng):
    model = nn.Sequential([nn.Embedding(10, 4), nn.Flatten(), nn.Dense(2)])
    ids = rng.integers(0, 10, (6, 3))
    model.build(ids.shape)
    model.save(tmp_path / "emb.npz")
    np.testing.assert_array_equal(nn.load(tmp_path / "emb.npz").predict(ids), model.predict(ids))


def test_saved_file_has_no_pickled_objects(tmp_path, rng):
    model, _, _ = trained_model(rng)
    model.save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
        header = json.loads(archive[HEADER_KEY].tobytes())
    assert header["format"] == "tradenn.nn.Model"
    assert header["config"]["model"]["class_name"] == "Sequential"


def test_custom_layer_saves_and_loads_through_the_registry(tmp_path, rng):
    class Scale(nn.Layer):
        def __init__(self, factor: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def forward(self, x, training=False):
            return self.factor * self._prepare(x)

        def backward(self, dy):
            return self.factor * dy

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    model = nn.Sequential([nn.Dense(3), Scale(2.5)])
    x = rng.standard_normal((4, 2))
    model.build(x.shape)
    model.save(tmp_path / "custom.npz")
    loaded = nn.load(tmp_path / "custom.npz")
    assert loaded.layers[1].factor == 2.5
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_saving_an_unbuilt_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"Build the model"):
        nn.Sequential([nn.Dense(1)]).save(tmp_path / "m.npz")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "nothing.npz")


def test_text_file_is_not_a_model(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(nn.ModelFileError, match=r"not a readable tradenn.nn model file"):
        nn.load(path)


def test_foreign_npz_is_not_a_model(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, prices=np.arange(3))
    with pytest.raises(nn.ModelFileError, match=rf"no {HEADER_KEY}"):
        nn.load(path)


def test_single_npy_array_is_not_a_model(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(3))
    with pytest.raises(nn.ModelFileError, match=r"not a tradenn.nn model file"):
        nn.load(path)


def test_pickled_content_is_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, **{HEADER_KEY: np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(nn.ModelFileError, match=r"holds Python objects"):
        nn.load(path)


def test_truncated_file_is_a_clear_error(tmp_path, rng):
    path = saved_model(tmp_path, rng)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(nn.ModelFileError, match=r"model file"):
        nn.load(path)


def rewrite(path, change):
    """Rewrite the archive at ``path`` with ``change(arrays)`` applied to its entries."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    np.savez(path, **arrays)


def rewrite_header(path, change):
    """Rewrite the archive at ``path`` with ``change(header)`` applied to its JSON header."""

    def edit(arrays):
        header = json.loads(arrays[HEADER_KEY].tobytes())
        change(header)
        arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    rewrite(path, edit)


def test_missing_weight_is_a_clear_error(tmp_path, rng):
    path = saved_model(tmp_path, rng)
    rewrite(path, lambda arrays: arrays.pop("layers/1/params/kernel"))
    with pytest.raises(nn.ModelFileError, match=r"'layers/1/params/kernel'.*missing"):
        nn.load(path)


def test_weight_of_the_wrong_shape_is_a_clear_error(tmp_path, rng):
    path = saved_model(tmp_path, rng)
    rewrite(path, lambda arrays: arrays.update({"layers/1/params/kernel": np.zeros((2, 2))}))
    with pytest.raises(nn.ModelFileError, match=r"has shape \(2, 2\).*expects \(5, 8\)"):
        nn.load(path)


def test_corrupt_config_is_a_clear_error(tmp_path, rng):
    path = saved_model(tmp_path, rng)
    garbage = np.frombuffer(b"{not json", dtype=np.uint8)
    rewrite(path, lambda arrays: arrays.update({HEADER_KEY: garbage}))
    with pytest.raises(nn.ModelFileError, match=r"model header is not valid JSON"):
        nn.load(path)


def test_unknown_layer_class_in_file_is_a_clear_error(tmp_path, rng):
    path = saved_model(tmp_path, rng)

    def rename(header):
        header["config"]["model"]["config"]["layers"][0]["class_name"] = "Quantum"

    rewrite_header(path, rename)
    with pytest.raises(nn.ModelFileError, match=r"Unknown layer 'Quantum'"):
        nn.load(path)


def test_newer_format_version_is_refused(tmp_path, rng):
    path = saved_model(tmp_path, rng)
    rewrite_header(path, lambda header: header.update(version=99))
    with pytest.raises(nn.ModelFileError, match=r"version 99"):
        nn.load(path)


def test_save_does_not_leave_temporary_files(tmp_path, rng):
    model, _, _ = trained_model(rng)
    model.save(tmp_path / "model.npz")
    model.save(tmp_path / "model.npz")  # overwriting works too
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert zipfile.is_zipfile(tmp_path / "model.npz")


def test_the_one_format_round_trips_header_and_arrays_with_the_same_bytes(tmp_path):
    weights = np.arange(6.0).reshape(2, 3)
    for name in ("a.npz", "b.npz"):
        write_file(tmp_path / name, "tests.Thing", {"k": 3}, {"w": weights}, {"from": "t"})
    saved = read_file(tmp_path / "a.npz", "tests.Thing", "Thing")
    assert (saved.format, saved.version, saved.config) == ("tests.Thing", 2, {"k": 3})
    assert saved.provenance == {"from": "t"} and list(saved.arrays) == ["w"]
    np.testing.assert_array_equal(saved.arrays["w"], weights)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    write_file(tmp_path / "c.npz", "tests.Thing", {}, {})
    assert read_file(tmp_path / "c.npz", None, "Thing").provenance is None


def test_a_file_of_another_kind_is_one_line_naming_both(tmp_path):
    from gymnasium import spaces

    from tradenn.rl import QLearningAgent

    QLearningAgent(spaces.Discrete(3), spaces.Discrete(2)).save(tmp_path / "agent.npz")
    with pytest.raises(nn.ModelFileError) as caught:
        nn.load(tmp_path / "agent.npz")
    assert str(caught.value) == (
        f"{tmp_path / 'agent.npz'} is a tradenn.rl.QLearningAgent file, not a tradenn.nn model"
    )


def test_a_file_of_the_first_formats_is_refused_asking_to_save_it_again(tmp_path):
    config = np.frombuffer(b'{"format": "tradenn.nn.model", "version": 1}', dtype=np.uint8)
    np.savez(tmp_path / "old.npz", __tradenn_config__=config)
    with pytest.raises(nn.ModelFileError, match=r"older tradenn \(file format version 1\)"):
        nn.load(tmp_path / "old.npz")


def test_format_names_are_classes_under_their_public_package():
    from tradenn.models import LinearRegression, LSTMForecaster
    from tradenn.rl import DQNAgent

    assert format_name(LinearRegression) == "tradenn.models.LinearRegression"
    assert format_name(LSTMForecaster) == "tradenn.models.LSTMForecaster"
    assert format_name(DQNAgent) == "tradenn.rl.DQNAgent"


@pytest.mark.parametrize(
    "layer, keys",
    [
        (
            nn.Dense(3),
            "name trainable dtype units activation use_bias kernel_initializer "
            "bias_initializer kernel_regularizer",
        ),
        (
            nn.Conv1D(4, 3),
            "name trainable dtype filters kernel_size strides padding dilation_rate "
            "activation use_bias kernel_initializer bias_initializer kernel_regularizer",
        ),
    ],
    ids=["Dense", "Conv1D"],
)
def test_config_key_order_is_stable(layer, keys):
    # the header is JSON in insertion order: reordering keys changes a model file's bytes
    # and SHA-256, which `paper verify` compares with the ledger's record
    assert list(layer.get_config()) == keys.split()
