"""Tampered model files: every loader refuses them with one :class:`ModelFileError` line that
names the file and the part, before allocating what the file only claims to hold, and the
command line exits 2 for them."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from tradenn import TradennError, nn
from tradenn.cli import main
from tradenn.errors import ModelFileError
from tradenn.live.artifacts import read_artifact, save_artifact
from tradenn.models import LinearRegression
from tradenn.nn.serialization import HEADER_KEY, write_file
from tradenn.rl import QLearningAgent

# ------------------------------------------------------------------------- making bad files


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_members(path, content: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in content.items():
            archive.writestr(name, data)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def declaring(shape: tuple, dtype: str = "<f8", payload: bytes = b"\0" * 64) -> bytes:
    """An npy member whose header declares ``shape`` but which holds only ``payload``."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def dense_model(path, optimizer: bool = False):
    model = nn.Sequential([nn.Dense(4, activation="relu"), nn.Dense(1)])
    model.build((None, 3))
    if optimizer:
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
        loss, adam = nn.MeanSquaredError(), nn.Adam(1e-3)
        model.fit(x, y, loss=loss, optimizer=adam, epochs=1, batch_size=16, verbose=0)
    model.save(path)
    return model


def rewrite_config(path, change) -> None:
    """Rewrite the file at ``path`` with ``change(config)`` applied to its header's config."""
    content = members(path)
    header = json.loads(
        np.lib.format.read_array(io.BytesIO(content[f"{HEADER_KEY}.npy"])).tobytes()
    )
    change(header["config"])
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    content[f"{HEADER_KEY}.npy"] = npy(raw)
    write_members(path, content)


def first_weight(content: dict[str, bytes]) -> str:
    return next(name for name in content if name.startswith("layers/"))


# ----------------------------------------------------------------------------- the loaders


def save_network(path):
    dense_model(path)


def save_linear(path):
    rng = np.random.default_rng(0)
    LinearRegression(alpha=1.0).fit(rng.normal(size=(30, 3)), rng.normal(size=30)).save(path)


def save_agent(path):
    from gymnasium import spaces

    agent = QLearningAgent(spaces.Discrete(4), spaces.Discrete(2), seed=0)
    agent.save(path)


def save_artifact_file(path):
    rng = np.random.default_rng(0)
    model = LinearRegression(alpha=1.0).fit(rng.normal(size=(30, 3)), rng.normal(size=30))
    save_artifact(path, model, {"strategy": "S"}, {"center": np.zeros(3)})


LOADERS = {
    "network": (save_network, nn.load_model),
    "linear": (save_linear, LinearRegression.load),
    "agent": (save_agent, QLearningAgent.load),
    "artifact": (save_artifact_file, read_artifact),
}


def refused(load, path) -> str:
    """The message of the ModelFileError ``load(path)`` raises (one line, naming the file)."""
    with pytest.raises(ModelFileError) as caught:
        load(path)
    message = str(caught.value)
    assert isinstance(caught.value, TradennError)
    assert "\n" not in message and str(path) in message
    return message


def tamper_no_header(content):
    name = max(content, key=lambda n: len(content[n]))
    content[name] = b"these bytes are not an npy array" * 4
    return name, "has no numpy array header"


def tamper_huge_shape(content):
    name = max(content, key=lambda n: len(content[n]))
    content[name] = declaring((10**14,))
    return name, "declares shape (100000000000000,)"


def tamper_object_array(content):
    name = max(content, key=lambda n: len(content[n]))
    content[name] = declaring((1,), dtype="|O", payload=b"")
    return name, "holds Python objects"


def tamper_not_npy(content):
    content["evil.py"] = b"import os"
    return "evil.py", "is not a numpy array"


TAMPERINGS = [tamper_no_header, tamper_huge_shape, tamper_object_array, tamper_not_npy]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__.removeprefix("tamper_"))
@pytest.mark.parametrize("kind", list(LOADERS))
def test_every_loader_refuses_a_damaged_member_naming_it(tmp_path, kind, tamper):
    save, load = LOADERS[kind]
    path = tmp_path / f"{kind}.npz"
    save(path)
    content = members(path)
    name, reason = tamper(content)
    write_members(path, content)
    tracemalloc.start()
    try:
        message = refused(load, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert repr(name) in message and reason in message
    assert peak < 20e6  # nothing like the 800 TB the header declares was even tried


def test_a_compressed_member_that_claims_more_than_deflate_can_hold_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    dense_model(path)
    content = members(path)
    name = first_weight(content)
    write_members(path, content, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # the member's uncompressed size in its central-directory record: make it 1 GB
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    central = data.find(name.encode(), data.find(b"PK\x01\x02")) - 46
    assert data[central : central + 4] == b"PK\x01\x02"
    data[central + 24 : central + 28] = (10**9).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    message = refused(nn.load_model, path)
    assert f"member {name!r} declares 1000000000 bytes but stores {info.compress_size}" in message


def test_a_config_nested_without_end_is_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "model.npz"
    dense_model(path)
    content = members(path)
    deep = ("[" * 200_000 + "]" * 200_000).encode()
    content[f"{HEADER_KEY}.npy"] = npy(np.frombuffer(deep, dtype=np.uint8))
    write_members(path, content)
    assert "model header is nested too deeply" in refused(nn.load_model, path)


def test_a_config_declaring_a_giant_layer_is_refused_before_allocating(tmp_path):
    path = tmp_path / "model.npz"
    dense_model(path)

    def giant(config):
        config["model"]["config"]["layers"][0]["config"]["units"] = 10**12

    rewrite_config(path, giant)
    tracemalloc.start()
    try:
        message = refused(nn.load_model, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "declares more weights than the file holds" in message
    assert "of shape (3, 1000000000000)" in message
    assert peak < 20e6


def test_a_layer_a_little_larger_than_its_weights_is_named_as_a_shape_mismatch(tmp_path):
    path = tmp_path / "model.npz"
    dense_model(path)
    rewrite_config(path, lambda c: c["model"]["config"]["layers"][0]["config"].update(units=5))
    assert "the model expects (3, 5)" in refused(nn.load_model, path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("kind", ["network", "linear", "agent"])
def test_nan_or_infinite_weights_are_refused(tmp_path, kind, bad):
    save, load = LOADERS[kind]
    path = tmp_path / f"{kind}.npz"
    save(path)
    content = members(path)
    name = {"linear": "coef_.npy", "agent": "q_table.npy"}.get(kind) or first_weight(content)
    array = np.lib.format.read_array(io.BytesIO(content[name])).copy()
    array.flat[0] = bad
    content[name] = npy(array)
    write_members(path, content)
    word = "NaN" if np.isnan(bad) else "infinite"
    assert f"array {name.removesuffix('.npy')!r} holds {word} values" in refused(load, path)


def test_a_negative_optimizer_step_count_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    dense_model(path, optimizer=True)
    assert nn.load_model(path).optimizer.iterations == 1
    content = members(path)
    content["optimizer/iterations.npy"] = npy(np.array(-5))
    write_members(path, content)
    assert "step count -5 is not a count" in refused(nn.load_model, path)


def test_a_tokenizer_file_that_is_not_one_is_refused(tmp_path):
    from tradenn.models.tokenizer import PriceTokenizer

    path = tmp_path / "tokenizer.npz"
    path.write_text("[" * 100_000)
    assert "is not a readable PriceTokenizer file" in refused(PriceTokenizer.load, path)
    write_file(path, "tradenn.models.PriceTokenizer", {"n_bins": -3}, {})
    assert "holds an invalid PriceTokenizer" in refused(PriceTokenizer.load, path)


# ------------------------------------------------------------------------ the command line


@pytest.fixture
def trained(tmp_path, capsys):
    from tradenn import data

    frame = data.load("SPX").iloc[:200]
    history = tmp_path / "history.csv"
    frame.to_csv(history, index_label="Date")
    out = tmp_path / "model.npz"
    assert main(["train", "linreg_forecast", "--data", str(history), "--out", str(out)]) == 0
    capsys.readouterr()
    return history, out


@pytest.mark.parametrize("tamper", [tamper_no_header, tamper_huge_shape], ids=["header", "shape"])
def test_paper_run_with_a_damaged_model_file_is_one_line_and_exit_2(
    tmp_path, capsys, trained, tamper
):
    history, out = trained
    content = members(out)
    single = {"coef_.npy": content["coef_.npy"]}
    name, reason = tamper(single)
    content[name] = single[name]
    write_members(out, content)
    ledger = tmp_path / "p.db"
    argv = ["paper", "run", "linreg_forecast", "--feed", f"replay:{history}", "--quiet"]
    code = main([*argv, "--ledger", str(ledger), "--model", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(out) in lines[0] and repr(name) in lines[0] and reason in lines[0]
    assert not ledger.exists()
