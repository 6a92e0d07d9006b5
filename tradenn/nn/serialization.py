"""Saving and loading models: one ``.npz`` file holding the weights and a JSON config.

File layout (a standard numpy ``.npz`` archive, read with ``allow_pickle=False``)::

    __tradenn_config__            uint8 bytes of a UTF-8 JSON document:
                                  {"format": "tradenn.nn.model", "version": 1,
                                   "model": {"class_name", "config", "build_input_shape"},
                                   "loss": ..., "optimizer": ...}
    layers/<i>/params/<key>       parameter <key> of the i-th layer of walk(model)
    layers/<i>/state/<key>        non-trainable state (moving averages)
    optimizer/iterations          optimizer step count
    optimizer/<j>/<slot>          optimizer slot of the j-th parameter of parameters(model)

``<i>`` is the position in :func:`tradenn.nn.base.walk` order, which is fixed by the
config. Layer classes are found by name in :data:`tradenn.nn.base.LAYERS`; a new layer
class joins it just by subclassing ``Layer`` and makes itself loadable by returning its
constructor arguments from ``get_config``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tradenn.errors import ModelFileError

from . import losses as loss_lib
from . import optimizers as optimizer_lib
from .base import LAYERS, Layer, WeightBudgetError, walk, weight_budget

FORMAT = "tradenn.nn.model"
VERSION = 1
CONFIG_KEY = "__tradenn_config__"


# values a config may declare beyond those its file holds before loading refuses it unallocated
# (a missing or misshapen weight within this is named as such, after the build)
_BUDGET_SLACK = 1 << 20
# the most DEFLATE can shrink data (a run of one byte): a compressed member whose declared size
# exceeds this many times its stored size lies about it
_DEFLATE_RATIO = 1032


def serialize_layer(layer: Layer) -> dict[str, Any]:
    """``{"class_name", "config", "build_input_shape"}`` for any registered layer."""
    shape = layer.input_shape if layer.built else None
    return {
        "class_name": type(layer).__name__,
        "config": layer.get_config(),
        "build_input_shape": None if shape is None else list(shape),
    }


def deserialize_layer(data: dict[str, Any]) -> Layer:
    """Recreate a layer (unbuilt) from :func:`serialize_layer` output."""
    cls = LAYERS.get_class(data["class_name"])
    return cls.from_config(dict(data["config"]))


def save_model(model: Any, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``model`` (weights, config, loss and optimizer state) to ``path``.

    ``metadata`` is any JSON-serializable dict stored with the config (a forecaster keeps
    its tokenizer and hyperparameters there); :func:`read_metadata` returns it.
    The file is written to a temporary name and renamed, so an interrupted save never
    leaves a half-written model behind.
    """
    if not getattr(model, "built", False):
        raise ValueError("Build the model (call build(input_shape) or forward) before saving it")
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": serialize_layer(model),
        "loss": None if getattr(model, "loss", None) is None else loss_lib.serialize(model.loss),
        "optimizer": None,
        "metadata": metadata or {},
    }
    arrays: dict[str, np.ndarray] = {}
    for index, layer in enumerate(walk(model)):
        for key, value in layer.params.items():
            arrays[f"layers/{index}/params/{key}"] = value
        for key, value in layer.state.items():
            arrays[f"layers/{index}/state/{key}"] = value
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        config["optimizer"] = optimizer_lib.serialize(optimizer)
        for key, value in optimizer.get_state().items():
            arrays[f"optimizer/{key}"] = value
    arrays[CONFIG_KEY] = np.frombuffer(json.dumps(config).encode("utf-8"), dtype=np.uint8)

    write_npz(path, arrays)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to one ``.npz`` at exactly ``path``, atomically.

    The file is written beside ``path`` under a temporary name and renamed over it, so a failed
    or interrupted save never leaves a half-written file (and never clobbers the old one).
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_model(path: str | os.PathLike) -> Any:
    """Rebuild a model saved with ``model.save(path)``: weights, loss and optimizer state.

    The file is read with :func:`read_npz` (nothing in it can execute code or make the reader
    allocate more than the file holds), and the model its config declares is built under a
    :func:`~tradenn.nn.base.weight_budget` of the values the file holds (plus 2**20), so a
    config that declares a layer larger than its weights is refused before it is allocated.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a tradenn.nn model, is damaged, holds NaN or infinite weights, or
        does not fit its config.
    """
    path = Path(path)
    arrays = read_npz(path, "tradenn.nn model")
    try:
        return _restore(arrays, path)
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as error:
        raise ModelFileError(
            f"{path} is not a valid tradenn.nn model file ({_first_line(error)})"
        ) from None


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` dict saved with the model at ``path`` (empty if none was given)."""
    path = Path(path)
    config = _read_config(read_npz(path, "tradenn.nn model"), path)
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: the model's metadata is not a JSON object")
    return dict(metadata)


def read_npz(path: str | os.PathLike, what: str = "tradenn model") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, each checked before it is allocated.

    Reads the zip archive member by member. Each member must be an ``.npy`` array of a plain
    (non-object) dtype whose header declares exactly as many bytes as the member holds, and
    the member's declared size must be one its stored bytes can hold (a DEFLATE member expands
    at most 1032-fold). So a small file cannot make the reader allocate gigabytes, and nothing
    in a file can execute code (no pickles). ``what`` names the kind of file in messages.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        Naming the file and the member, if the file is not such an archive or a member breaks
        one of the rules above.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {what} file at {path}")
    arrays: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as file:
            if file.read(6) == b"\x93NUMPY":
                raise ModelFileError(f"{path} is not a {what} file (a single .npy array)")
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if name == info.filename:
                    raise ModelFileError(f"{path}: member {info.filename!r} is not a numpy array")
                if name in arrays:
                    raise ModelFileError(f"{path}: array {name!r} is stored twice")
                arrays[name] = _read_member(archive, info, path)
    except ModelFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as error:
        reason = _first_line(error)
        raise ModelFileError(f"{path} is not a readable {what} file ({reason})") from None
    return arrays


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member of ``archive``, its declared size checked before allocating."""
    name = info.filename
    if info.compress_type == zipfile.ZIP_STORED:
        possible = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        possible = info.compress_size * _DEFLATE_RATIO
    else:
        raise ModelFileError(f"{path}: member {name!r} uses an unsupported compression")
    if info.file_size > possible:
        raise ModelFileError(
            f"{path}: member {name!r} declares {info.file_size} bytes "
            f"but stores {info.compress_size}"
        )
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
        except ValueError:
            raise ModelFileError(f"{path}: member {name!r} has no numpy array header") from None
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ModelFileError(f"{path}: member {name!r} has numpy format {version}")
        if dtype.hasobject:
            raise ModelFileError(f"{path}: member {name!r} holds Python objects (refused)")
        count = 1
        for size in shape:
            count *= size
        declared = count * dtype.itemsize
        if member.tell() + declared != info.file_size:
            raise ModelFileError(
                f"{path}: member {name!r} declares shape {shape} of {dtype} "
                f"({declared} bytes) but holds {info.file_size - member.tell()}"
            )
        data = bytearray(member.read(declared))
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def check_finite(
    arrays: dict[str, np.ndarray], path: str | os.PathLike, names=None, nan_only: bool = False
) -> None:
    """Refuse (:class:`ModelFileError`, naming ``path`` and the array) NaN or infinite values in
    the floating-point arrays among ``names`` (all of ``arrays`` when None): weights like that
    would make every forecast NaN without a word. ``nan_only`` lets infinities pass (bounds)."""
    for name in arrays if names is None else names:
        value = arrays[name]
        if value.dtype.kind not in "fc":
            continue
        if np.isnan(value).any():
            raise ModelFileError(f"{path}: array {name!r} holds NaN values")
        if not nan_only and not np.isfinite(value).all():
            raise ModelFileError(f"{path}: array {name!r} holds infinite values")


def parse_json(raw: np.ndarray | bytes | str, path: str | os.PathLike, what: str) -> Any:
    """The JSON document stored as ``raw`` (uint8 bytes, bytes or text) in the file at
    ``path``; :class:`ModelFileError` naming ``what`` when it is not valid UTF-8 JSON or is
    nested too deeply to read."""
    if isinstance(raw, np.ndarray):
        raw = raw.tobytes() if raw.dtype == np.uint8 else str(raw.item())
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        reason = _first_line(error)
        raise ModelFileError(f"{path}: the {what} is not valid JSON ({reason})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: the {what} is nested too deeply to read") from None


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _read_config(arrays: dict[str, np.ndarray], path: Path) -> dict:
    if CONFIG_KEY not in arrays:
        raise ModelFileError(f"{path} is not a tradenn.nn model file (no {CONFIG_KEY} entry)")
    config = parse_json(arrays[CONFIG_KEY], path, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a tradenn.nn model file (wrong format tag)")
    if config.get("version") != VERSION:
        raise ModelFileError(
            f"{path} has model file version {config.get('version')}; this tradenn reads {VERSION}"
        )
    return config


def _restore(arrays: dict[str, np.ndarray], path: Path) -> Any:
    config = _read_config(arrays, path)
    weights = [name for name in arrays if name.startswith("layers/")]
    check_finite(arrays, path, weights)
    model_config = config["model"]
    try:
        with weight_budget(sum(arrays[name].size for name in weights) + _BUDGET_SLACK):
            model = deserialize_layer(model_config)
            if model_config.get("build_input_shape") is not None:
                model.build(tuple(model_config["build_input_shape"]))
    except WeightBudgetError as error:
        raise ModelFileError(
            f"{path}: the config declares more weights than the file holds ({error})"
        ) from None

    expected = set()
    for index, layer in enumerate(walk(model)):
        for group, values in (("params", layer.params), ("state", layer.state)):
            for key, target in values.items():
                name = f"layers/{index}/{group}/{key}"
                expected.add(name)
                if name not in arrays:
                    raise ModelFileError(f"{path}: weight '{name}' ({layer.name}) is missing")
                value = arrays[name]
                if value.shape != target.shape:
                    raise ModelFileError(
                        f"{path}: weight '{name}' ({layer.name}) has shape {value.shape}, "
                        f"the model expects {target.shape}"
                    )
                # copy into the existing array: it is the live array forward reads
                np.copyto(target, value, casting="same_kind")
    stray = [name for name in weights if name not in expected]
    if stray:
        raise ModelFileError(f"{path}: weights {stray[:3]} do not belong to the saved model")

    if config.get("loss") is not None:
        model.loss = loss_lib.get(config["loss"])
    if config.get("optimizer") is not None:
        optimizer = optimizer_lib.get(config["optimizer"])
        prefix = "optimizer/"
        state = {n[len(prefix) :]: arrays[n] for n in arrays if n.startswith(prefix)}
        check_finite(state, path)
        optimizer.set_state(state)
        model.optimizer = optimizer
    return model
