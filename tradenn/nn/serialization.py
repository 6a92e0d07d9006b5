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

from . import losses as loss_lib
from . import optimizers as optimizer_lib
from .base import LAYERS, Layer, walk

FORMAT = "tradenn.nn.model"
VERSION = 1
CONFIG_KEY = "__tradenn_config__"


class ModelFileError(ValueError):
    """A file that is not a readable tradenn.nn model (corrupt, foreign or incompatible)."""


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

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a tradenn.nn model, is damaged, or does not fit its config.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path} is not a tradenn.nn model file ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{path} is not a tradenn.nn model file (a single .npy array)")
    with archive:
        try:
            return _restore(archive, path)
        except ModelFileError:
            raise
        except (KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile, OSError) as error:
            raise ModelFileError(f"{path} is not a valid tradenn.nn model file ({error})") from None


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` dict saved with the model at ``path`` (empty if none was given)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No model file at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path} is not a tradenn.nn model file (a single .npy array)")
        with archive:
            config = _read_config(archive, path)
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise ModelFileError(f"{path} is not a valid tradenn.nn model file ({error})") from None
    return dict(config.get("metadata") or {})


def _read_config(archive: Any, path: Path) -> dict:
    if CONFIG_KEY not in archive.files:
        raise ModelFileError(f"{path} is not a tradenn.nn model file (no {CONFIG_KEY} entry)")
    config = json.loads(archive[CONFIG_KEY].tobytes().decode("utf-8"))
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a tradenn.nn model file (wrong format tag)")
    if config.get("version") != VERSION:
        raise ModelFileError(
            f"{path} has model file version {config.get('version')}; this tradenn reads {VERSION}"
        )
    return config


def _restore(archive: Any, path: Path) -> Any:
    config = _read_config(archive, path)
    model_config = config["model"]
    model = deserialize_layer(model_config)
    if model_config.get("build_input_shape") is not None:
        model.build(tuple(model_config["build_input_shape"]))

    expected = set()
    for index, layer in enumerate(walk(model)):
        for group, arrays in (("params", layer.params), ("state", layer.state)):
            for key, target in arrays.items():
                name = f"layers/{index}/{group}/{key}"
                expected.add(name)
                if name not in archive.files:
                    raise ModelFileError(f"{path}: weight '{name}' ({layer.name}) is missing")
                value = archive[name]
                if value.shape != target.shape:
                    raise ModelFileError(
                        f"{path}: weight '{name}' ({layer.name}) has shape {value.shape}, "
                        f"the model expects {target.shape}"
                    )
                # copy into the existing array: it is the live array forward reads
                np.copyto(target, value, casting="same_kind")
    stray = [name for name in archive.files if name.startswith("layers/") and name not in expected]
    if stray:
        raise ModelFileError(f"{path}: weights {stray[:3]} do not belong to the saved model")

    if config.get("loss") is not None:
        model.loss = loss_lib.get(config["loss"])
    if config.get("optimizer") is not None:
        optimizer = optimizer_lib.get(config["optimizer"])
        prefix = "optimizer/"
        optimizer.set_state(
            {n[len(prefix) :]: archive[n] for n in archive.files if n.startswith(prefix)}
        )
        model.optimizer = optimizer
    return model
