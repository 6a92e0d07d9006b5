"""Model artifacts: the files a live model strategy and ``tradenn train`` write.

An artifact is the model's own file (tradenn's one format,
:func:`tradenn.nn.serialization.write_file`: no pickle, nothing in it can run code), so
``LSTMForecaster.load(path)`` reads an artifact as it reads any model file, with two additions::

    header "provenance"     what the model is for (below)
    artifact/<name>         arrays that go with the model (an input scaler's mean and scale)

The provenance says what the model is for: the strategy and its parameters, the data it was
trained on (first and last bar, bar count, a SHA-256 of the bars), the fold or block of the
walk-forward schedule, the training samples and seconds. The file is written to a temporary
name, synced and renamed, so a crash never leaves half a model under the final name; its bytes
depend on the model only (no time stamps), so retraining the same model gives the same hash.

:class:`ArtifactStore` is the folder of artifacts beside a paper-trading ledger
(``LEDGER.models/``): a live strategy saves each retrained model there, the loop records
each file's name and SHA-256 in the ledger in the same transaction as the bar that used it,
and a restart loads the last one back (refusing a file whose hash is not the recorded one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.errors import ModelFileError
from tradenn.nn.serialization import read_file, write_file

__all__ = [
    "ArtifactError",
    "ArtifactStore",
    "check_artifact",
    "data_digest",
    "load_artifact",
    "read_artifact",
    "save_artifact",
]

_PREFIX = "artifact/"


class ArtifactError(ModelFileError):
    """A model artifact that cannot be used: missing, damaged, foreign, altered since it was
    recorded, or made for another strategy or parameters."""


def data_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a price frame's timestamps and OHLCV values (what a model was trained on)."""
    h = hashlib.sha256()
    index = pd.DatetimeIndex(frame.index)
    h.update(np.ascontiguousarray(index.asi8).data)
    h.update(str(index.tz).encode())
    columns = [c for c in ("Open", "High", "Low", "Close", "Volume") if c in frame.columns]
    h.update(np.ascontiguousarray(frame[columns].to_numpy(dtype=np.float64)).data)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_artifact(
    path: str | os.PathLike,
    model: Any,
    header: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray] | None = None,
) -> str:
    """Write ``model`` (through its ``save``) with ``header`` as its provenance and ``arrays``
    beside it to one file at ``path``, atomically; returns the file's SHA-256."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    # JSON as the file will hold it: time stamps in the header become text
    provenance = json.loads(json.dumps(dict(header), sort_keys=True, default=str))
    handle, inner = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".model.npz")
    os.close(handle)
    try:
        model.save(inner)
        saved = read_file(inner, None, "model")
    finally:
        _unlink(inner)
    clash = sorted(name for name in saved.arrays if name.startswith(_PREFIX))
    if clash:
        raise ArtifactError(f"{type(model).__name__}.save writes {clash[0]!r}, a reserved name")
    content = dict(saved.arrays)
    for name, value in (arrays or {}).items():
        content[_PREFIX + name] = np.asarray(value)
    write_file(path, saved.format, saved.config, content, provenance)
    return _sha256(path)


def _unlink(path: str) -> None:
    """Remove ``path`` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_artifact(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The provenance and the extra arrays of the artifact at ``path`` (the model is not
    built)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    try:
        saved = read_file(path, None, "model artifact")
    except ModelFileError as error:
        raise ArtifactError(str(error)) from None
    if saved.provenance is None:
        raise ArtifactError(f"{path} is not a tradenn model artifact (no provenance)")
    prefix = len(_PREFIX)
    arrays = {
        name[prefix:]: value for name, value in saved.arrays.items() if name[:prefix] == _PREFIX
    }
    return saved.provenance, arrays


def load_artifact(
    path: str | os.PathLike, cls: type, sha256: str | None = None
) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
    """The model (``cls.load(path)``), provenance and arrays of an artifact.

    ``cls`` is the class the caller expects (``cls.load`` refuses a file of another format);
    with ``sha256`` the file must have that hash (the one the ledger recorded).
    """
    path = Path(path)
    if sha256 is not None and path.is_file() and _sha256(path) != sha256:
        raise ArtifactError(f"{path} was changed after it was recorded (SHA-256 differs)")
    header, arrays = read_artifact(path)
    try:
        model = cls.load(path)
    except ModelFileError as error:
        raise ArtifactError(str(error)) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"{path}: the model cannot be read ({error})") from None
    return model, header, arrays


def check_artifact(
    header: Mapping[str, Any], strategy: str, params: Mapping[str, Any], path: Any
) -> None:
    """An artifact must come from ``strategy`` with ``params`` (else a one-line
    :class:`ArtifactError` naming the first difference)."""
    if header.get("strategy") != strategy:
        raise ArtifactError(f"{path} is a model of {header.get('strategy')}, not of {strategy}")
    theirs = header.get("params") or {}
    mine = json.loads(json.dumps(dict(params), default=str))
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            raise ArtifactError(
                f"{path} was trained with {key}={theirs.get(key)!r}, this run has "
                f"{key}={mine.get(key)!r}"
            )


class ArtifactStore:
    """The folder of model artifacts of one live run, and what was saved since the loop last
    asked (:meth:`drain`).

    Parameters
    ----------
    folder : path
        Created on the first save.
    hook : callable, optional
        Called as ``hook(record)`` after each file is in place (crash tests).
    """

    def __init__(
        self, folder: str | os.PathLike, hook: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.hook = hook
        self._new: list[dict[str, Any]] = []

    def save(
        self,
        name: str,
        model: Any,
        header: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Write ``model`` as ``name.npz``; returns its record (file, SHA-256, and as ``info``
        the header plus the training ``seconds``, which stay out of the file so that the same
        model always has the same hash)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        file = f"{name}.npz"
        sha = save_artifact(self.folder / file, model, header, arrays)
        record = {"file": file, "sha256": sha, "info": {**header, "seconds": seconds}}
        self._new.append(record)
        if self.hook is not None:
            self.hook(record)
        return record

    def adopt(self, path: str | os.PathLike, header: Mapping[str, Any]) -> dict[str, Any]:
        """Copy an artifact made elsewhere (``tradenn train``) into the folder as
        ``imported-<hash>.npz``; returns its record (queued for the ledger like a save)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        sha = _sha256(Path(path))
        file = f"imported-{sha[:12]}.npz"
        target = self.folder / file
        if not target.exists():
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=file, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out, open(path, "rb") as source:
                    shutil.copyfileobj(source, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                _unlink(temporary)
                raise
        record = {"file": file, "sha256": sha, "info": dict(header)}
        self._new.append(record)
        return record

    def load(
        self, record: Mapping[str, Any], cls: type
    ) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
        """The model a :meth:`save` record names, checked against the recorded hash."""
        return load_artifact(self.folder / record["file"], cls, record["sha256"])

    def drain(self) -> list[dict[str, Any]]:
        """Records of the files saved since the last call."""
        new, self._new = self._new, []
        return new
