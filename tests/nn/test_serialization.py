"""save / load: bit-identical round trips, optimizer state, clear errors on bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tradenn import nn
from tradenn.nn.serialization import CONFIG_KEY


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
        config = json.loads(archive[CONFIG_KEY].tobytes())
    assert config["format"] == "tradenn.nn.model"
    assert config["model"]["class_name"] == "Sequential"


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
    with pytest.raises(nn.ModelFileError, match=rf"no {CONFIG_KEY}"):
        nn.load(path)


def test_single_npy_array_is_not_a_model(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(3))
    with pytest.raises(nn.ModelFileError, match=r"not a tradenn.nn model file"):
        nn.load(path)


def test_pickled_content_is_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, **{CONFIG_KEY: np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(nn.ModelFileError, match=r"holds Python objects"):
        nn.load(path)


def test_truncated_file_is_a_clear_error(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(nn.ModelFileError, match=r"model file"):
        nn.load(path)


def rewrite(path, change):
    """Rewrite the archive at ``path`` with ``change(arrays)`` applied to its entries."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    np.savez(path, **arrays)


def test_missing_weight_is_a_clear_error(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)
    rewrite(path, lambda arrays: arrays.pop("layers/1/params/kernel"))
    with pytest.raises(nn.ModelFileError, match=r"'layers/1/params/kernel'.*missing"):
        nn.load(path)


def test_weight_of_the_wrong_shape_is_a_clear_error(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)
    rewrite(path, lambda arrays: arrays.update({"layers/1/params/kernel": np.zeros((2, 2))}))
    with pytest.raises(nn.ModelFileError, match=r"has shape \(2, 2\).*expects \(5, 8\)"):
        nn.load(path)


def test_corrupt_config_is_a_clear_error(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)
    garbage = np.frombuffer(b"{not json", dtype=np.uint8)
    rewrite(path, lambda arrays: arrays.update({CONFIG_KEY: garbage}))
    with pytest.raises(nn.ModelFileError, match=r"model config is not valid JSON"):
        nn.load(path)


def test_unknown_layer_class_in_file_is_a_clear_error(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)

    def rename(arrays):
        config = json.loads(arrays[CONFIG_KEY].tobytes())
        config["model"]["config"]["layers"][0]["class_name"] = "Quantum"
        arrays[CONFIG_KEY] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)

    rewrite(path, rename)
    with pytest.raises(nn.ModelFileError, match=r"Unknown layer 'Quantum'"):
        nn.load(path)


def test_newer_format_version_is_refused(tmp_path, rng):
    model, _, _ = trained_model(rng)
    path = tmp_path / "model.npz"
    model.save(path)

    def bump(arrays):
        config = json.loads(arrays[CONFIG_KEY].tobytes())
        config["version"] = 99
        arrays[CONFIG_KEY] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)

    rewrite(path, bump)
    with pytest.raises(nn.ModelFileError, match=r"version 99"):
        nn.load(path)


def test_save_does_not_leave_temporary_files(tmp_path, rng):
    model, _, _ = trained_model(rng)
    model.save(tmp_path / "model.npz")
    model.save(tmp_path / "model.npz")  # overwriting works too
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert zipfile.is_zipfile(tmp_path / "model.npz")


def test_metadata_is_saved_with_the_model_and_read_back(tmp_path, rng):
    from tradenn.nn.serialization import read_metadata, save_model

    model = nn.Sequential([nn.Dense(2)])
    model.build((None, 3))
    save_model(model, tmp_path / "m.npz", metadata={"tokenizer": {"n_bins": 7}, "note": "x"})
    assert read_metadata(tmp_path / "m.npz") == {"tokenizer": {"n_bins": 7}, "note": "x"}
    model.save(tmp_path / "plain.npz")
    assert read_metadata(tmp_path / "plain.npz") == {}
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(nn.ModelFileError, match=r"not a tradenn\.nn model file"):
        read_metadata(tmp_path / "array.npy")
