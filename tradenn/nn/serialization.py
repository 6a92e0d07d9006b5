"""The one file format of tradenn: every saved object is one ``.npz`` archive with one header.

A model, a forecaster, an agent, a tokenizer and a ``tradenn train`` artifact are all written by
:func:`write_file` and read by :func:`read_file`. The archive is a standard numpy ``.npz`` (a zip
of ``.npy`` members, no pickles)::

    __tradenn__        uint8 bytes of a UTF-8 JSON header:
                       {"format": "tradenn.models.LinearRegression",  what the file holds
                        "version": 2,                                  the layout of this header
                        "config": {...},                               what the object needs to
                                                                       rebuild itself (its own
                                                                       layout, per format)
                        "provenance": {...}}                           optional: where the object
                                                                       came from (artifacts)
    <name>             the object's arrays, under names the object chooses

``format`` names the saved object's class in its public package (:func:`format_name`); every
:mod:`tradenn.nn` model (``Sequential``, ``TransformerLM``, any ``Model``) is
``"tradenn.nn.Model"``, with its layers, loss and optimizer in ``config`` (:func:`network_state`)
and its weights as::

    layers/<i>/params/<key>       parameter <key> of the i-th layer of walk(model)
    layers/<i>/state/<key>        non-trainable state (moving averages)
    optimizer/iterations          optimizer step count
    optimizer/<j>/<slot>          optimizer slot of the j-th parameter of parameters(model)

``<i>`` is the position in :func:`tradenn.nn.base.walk` order, which is fixed by the
config. Layer classes are found by name in :data:`tradenn.nn.base.LAYERS`; a new layer
class joins it just by subclassing ``Layer`` and makes itself loadable by returning its
constructor arguments from ``get_config``. An object that holds a network (a forecaster, the
DQN agent) stores the network's config under ``"network"`` in its own and the weights under
the names above.

Files are written under a temporary name, synced and renamed (an interrupted save leaves no
half-written file), members in sorted order without time stamps (the same object always gives
the same bytes). Reading checks every member before allocating it and the header before
anything is built. Files of tradenn's first formats (version 1: a header per kind of object)
are refused with a message saying so.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradenn.errors import ModelFileError

from . import losses as loss_lib
from . import optimizers as optimizer_lib
from .base import LAYERS, Layer, WeightBudgetError, walk, weight_budget

HEADER_KEY = "__tradenn__"
VERSION = 2
NETWORK_FORMAT = "tradenn.nn.Model"

# the header members of version 1, one per kind of object (nn model, tabular model, Q-learning
# agent, artifact): a file holding one of them was written by an older tradenn
_VERSION_1_KEYS = (
    "__tradenn_config__",
    "__tradenn_tabular__",
    "__tradenn_agent__",
    "__tradenn_artifact__",
)
# bytes: a header larger than this is refused before it is decoded (configs are kilobytes)
_MAX_HEADER = 1 << 24
# values a config may declare beyond those its file holds before loading refuses it unallocated
# (a missing or misshapen weight within this is named as such, after the build)
_BUDGET_SLACK = 1 << 20
# the most DEFLATE can shrink data (a run of one byte): a compressed member whose declared size
# exceeds this many times its stored size lies about it
_DEFLATE_RATIO = 1032


@dataclass(frozen=True)
class SavedFile:
    """What :func:`read_file` found in a file: its header and its arrays.

    Attributes
    ----------
    format : str
        What the file holds, e.g. ``"tradenn.models.LinearRegression"``.
    version : int
        The header's version (:data:`VERSION`).
    config : dict
        What the object needs to rebuild itself (its layout belongs to the format).
    arrays : dict of str to ndarray
        Every array of the file but the header, by name.
    provenance : dict or None
        Where the object came from; None unless the writer gave it.
    """

    format: str
    version: int
    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    provenance: dict[str, Any] | None = None


def format_name(cls: type) -> str:
    """The file format name of ``cls``'s objects: the class under its public package.

    ``tradenn.models.linear.LinearRegression`` saves as ``"tradenn.models.LinearRegression"``,
    so moving a class between the modules of its package leaves its files readable.
    """
    package = cls.__module__.split(".")
    if package[0] == "tradenn":
        package = package[:2]
    return ".".join([*package, cls.__name__])


def write_file(
    path: str | os.PathLike,
    format: str,
    config: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write one object to one ``.npz`` at exactly ``path``, atomically and reproducibly.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, used as given (no suffix is added); its folder must exist.
    format : str
        What the file holds (:func:`format_name` of the object's class, or
        :data:`NETWORK_FORMAT`); :func:`read_file` checks it.
    config : mapping
        JSON-serializable: what the object needs to rebuild itself.
    arrays : mapping of str to array_like
        The object's arrays, stored under these names (no pickles: object arrays are refused).
    provenance : mapping, optional
        JSON-serializable: where the object came from (a training artifact's strategy and data).

    The archive is written beside ``path`` under a temporary name, synced and renamed over it,
    so a failed or interrupted save never leaves a half-written file (nor clobbers the old
    one). Members are stored in name order with a fixed time stamp, so the same object always
    gives the same bytes (and the same SHA-256).
    """
    if HEADER_KEY in arrays:
        raise ValueError(f"write_file: {HEADER_KEY!r} is the header's name, not an array's")
    header: dict[str, Any] = {"format": format, "version": VERSION, "config": dict(config)}
    if provenance is not None:
        header["provenance"] = dict(provenance)
    members = {name: np.asanyarray(value) for name, value in arrays.items()}
    members[HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name in sorted(members):
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with archive.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, members[name], allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_file(
    path: str | os.PathLike, formats: str | Collection[str] | None, what: str
) -> SavedFile:
    """The header and arrays of a file written by :func:`write_file`, all checked.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    formats : str, collection of str or None
        The format(s) the caller can rebuild; None accepts any.
    what : str
        What the caller reads, for messages (``"LinearRegression"``, ``"tradenn.nn model"``).

    Returns
    -------
    SavedFile

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ModelFileError
        One line naming the file: not a readable ``.npz`` (or a member breaks the rules of
        :func:`read_npz`), no header, a header that is not a JSON object with a format name, an
        integer version and a config object, another version, or another format
        (``"m.npz is a tradenn.rl.QLearningAgent file, not a tradenn.nn model"``).
    """
    path = Path(path)
    arrays = read_npz(path, what)
    raw = arrays.pop(HEADER_KEY, None)
    if raw is None:
        if any(key in arrays for key in _VERSION_1_KEYS):
            raise ModelFileError(
                f"{path} was written by an older tradenn (file format version 1); "
                "save it again with this version"
            )
        raise ModelFileError(f"{path} is not a {what} file (no {HEADER_KEY} entry)")
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER:
        raise ModelFileError(f"{path}: the {what} header is not a JSON text of at most 16 MiB")
    header = _parse_json(raw, path, f"{what} header")
    if not isinstance(header, dict) or not isinstance(header.get("format"), str):
        raise ModelFileError(f"{path} is not a {what} file (its header names no format)")
    version = header.get("version")
    if version != VERSION:
        raise ModelFileError(
            f"{path} has file format version {version!r}; this tradenn reads version {VERSION}"
        )
    found = header["format"]
    expected = {formats} if isinstance(formats, str) else formats
    if expected is not None and found not in expected:
        raise ModelFileError(f"{path} is a {found} file, not a {what}")
    config, provenance = header.get("config"), header.get("provenance")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: the {what} header's config is not a JSON object")
    if provenance is not None and not isinstance(provenance, dict):
        raise ModelFileError(f"{path}: the {what} header's provenance is not a JSON object")
    return SavedFile(found, version, config, arrays, provenance)


@contextmanager
def invalid_content(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn what rebuilding an object from the file at ``path`` raises about its content
    (a missing key, a wrong type or value) into one :class:`ModelFileError` line naming the
    file: ``"m.npz holds an invalid LinearRegression (...)"``."""
    try:
        yield
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as error:
        reason = _first_line(error)
        raise ModelFileError(f"{path} holds an invalid {what} ({reason})") from None


# --------------------------------------------------------------------------- networks


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


def network_state(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(config, arrays)`` of a built model: its layers, loss and optimizer as
    ``{"model", "loss", "optimizer"}`` and its weights and optimizer slots by file name;
    :func:`restore_network` rebuilds the model from them."""
    if not getattr(model, "built", False):
        raise ValueError("Build the model (call build(input_shape) or forward) before saving it")
    loss = getattr(model, "loss", None)
    config = {
        "model": serialize_layer(model),
        "loss": None if loss is None else loss_lib.serialize(loss),
        "optimizer": None,
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
    return config, arrays


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` (weights, config, loss and optimizer state) to ``path``
    (format :data:`NETWORK_FORMAT`, through :func:`write_file`)."""
    config, arrays = network_state(model)
    write_file(path, NETWORK_FORMAT, config, arrays)


def load_model(path: str | os.PathLike) -> Any:
    """Rebuild a model saved with ``model.save(path)``: weights, loss and optimizer state.

    The file is read with :func:`read_file` (nothing in it can execute code or make the reader
    allocate more than the file holds) and rebuilt by :func:`restore_network`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a tradenn.nn model, is damaged, holds NaN or infinite weights, or
        does not fit its config.
    """
    saved = read_file(path, NETWORK_FORMAT, "tradenn.nn model")
    return restore_network(saved.config, saved.arrays, path)


def restore_network(
    config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], path: str | os.PathLike
) -> Any:
    """The model :func:`network_state` described, with its weights, loss and optimizer.

    The model is built under a :func:`~tradenn.nn.base.weight_budget` of the values ``arrays``
    hold under ``layers/`` (plus 2**20), so a config that declares a layer larger than its
    weights is refused before it is allocated. Every weight must be there with its shape, and
    finite; weights that belong to no layer are refused. ``path`` names the file in messages.
    """
    with invalid_content(path, "tradenn.nn model"):
        return _restore(config, arrays, Path(path))


def _restore(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], path: Path) -> Any:
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


# --------------------------------------------------------------------------- reading safely


def read_npz(path: str | os.PathLike, what: str = "tradenn model") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, each checked before it is allocated.

    Reads the zip archive member by member. Each member must be an ``.npy`` array of a plain
    (non-object) dtype whose header declares exactly as many bytes as the member holds, and
    the member's declared size must be one its stored bytes can hold (a DEFLATE member expands
    at most 1032-fold). So a small file cannot make the reader allocate gigabytes, and nothing
    in a file can execute code (no pickles). ``what`` names the kind of file in messages.
    This is the archive layer of :func:`read_file`, which every tradenn file is read with.

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


def _parse_json(raw: np.ndarray, path: str | os.PathLike, what: str) -> Any:
    """The JSON document stored as uint8 bytes ``raw`` in the file at ``path``;
    :class:`ModelFileError` naming ``what`` when it is not valid UTF-8 JSON or is nested too
    deeply to read."""
    try:
        return json.loads(raw.tobytes())
    except (ValueError, UnicodeDecodeError) as error:
        reason = _first_line(error)
        raise ModelFileError(f"{path}: the {what} is not valid JSON ({reason})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: the {what} is nested too deeply to read") from None


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
