"""Model artifacts: the files a live model strategy and ``tradenn train`` write.

An artifact is one ``.npz`` file (read with ``allow_pickle=False``; nothing in it can run
code). It holds the model exactly as the model's own ``save(path)`` writes it, so
``LSTMForecaster.load(path)`` reads an artifact as it reads any model file, and beside it::

    __tradenn_artifact__    UTF-8 JSON: {"format": "tradenn.artifact", "version": 1,
                            "class": the model's class name, ...the header}
    artifact/<name>         arrays that go with the model (an input scaler's mean and scale)

The header says what the model is for: the strategy and its parameters, the data it was
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
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradenn.errors import ModelFileError
from tradenn.nn.serialization import parse_json, read_npz

__all__ = [
    "ArtifactError",
    "ArtifactStore",
    "check_artifact",
    "data_digest",
    "load_artifact",
    "read_artifact",
    "save_artifact",
]

FORMAT = "tradenn.artifact"
VERSION = 1
HEADER_KEY = "__tradenn_artifact__"
_PREFIX = "artifact/"
_MAX_HEADER = 1 << 20  # bytes: a header larger than this is refused before decoding


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
    """Write ``model`` (through its ``save``), ``header`` and ``arrays`` to one ``.npz`` at
    ``path``, atomically; returns the file's SHA-256."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    document = {"format": FORMAT, "version": VERSION, "class": type(model).__name__, **header}
    text = json.dumps(document, sort_keys=True, default=str)
    handle, inner = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".model.npz")
    os.close(handle)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".tmp")
    try:
        model.save(inner)
        content = read_npz(inner, "model")
        clash = sorted(n for n in content if n == HEADER_KEY or n.startswith(_PREFIX))
        if clash:
            raise ArtifactError(f"{type(model).__name__}.save writes {clash[0]!r}, a reserved key")
        content[HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        for name, value in (arrays or {}).items():
            content[_PREFIX + name] = np.asarray(value)
        with os.fdopen(handle, "wb") as file:
            _write_npz(file, content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        _unlink(temporary)
        raise
    finally:
        _unlink(inner)
    return _sha256(path)


def _write_npz(file: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """An ``.npz`` whose bytes depend on the arrays only (``np.savez`` stamps each member
    with the time): the same model always has the same SHA-256."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arrays[name]), allow_pickle=False)


def _unlink(path: str) -> None:
    """Remove ``path`` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_artifact(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the extra arrays of the artifact at ``path`` (the model is not built)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    try:
        archive = read_npz(path, "model artifact")
        if HEADER_KEY not in archive:
            raise ArtifactError(f"{path} is not a tradenn model artifact (no header)")
        raw = archive[HEADER_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_HEADER:
            raise ArtifactError(f"{path} is not a tradenn model artifact (bad header)")
        header = parse_json(raw, path, "artifact header")
    except ArtifactError:
        raise
    except ModelFileError as error:
        raise ArtifactError(str(error)) from None
    arrays = {name[len(_PREFIX) :]: archive[name] for name in archive if name.startswith(_PREFIX)}
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a tradenn model artifact (wrong format)")
    if header.get("version") != VERSION:
        raise ArtifactError(
            f"{path} is a version {header.get('version')!r} artifact; this tradenn reads "
            f"version {VERSION}"
        )
    return header, arrays


def load_artifact(
    path: str | os.PathLike, cls: type, sha256: str | None = None
) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
    """The model (``cls.load(path)``), header and arrays of an artifact.

    ``cls`` is the class the caller expects (its name must be the header's); with ``sha256``
    the file must have that hash (the one the ledger recorded).
    """
    path = Path(path)
    if sha256 is not None and path.is_file() and _sha256(path) != sha256:
        raise ArtifactError(f"{path} was changed after it was recorded (SHA-256 differs)")
    header, arrays = read_artifact(path)
    if header.get("class") != cls.__name__:
        raise ArtifactError(f"{path} holds a {header.get('class')}, not a {cls.__name__}")
    try:
        model = cls.load(path)
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
