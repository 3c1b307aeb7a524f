"""Refiner checkpoints: one file per trained model, loaded strictly and checked against the user's object models.

A checkpoint (``torch.save`` of a dict, read with ``weights_only=True``) holds:

- ``format_version`` (:data:`FORMAT_VERSION`), ``method`` (``"repose"``, ``"deepim"``), ``config`` (the
  method's config as a plain dict);
- ``state_dict``: the model's tensors;
- ``objects``: the object registry, a list of ``{"obj_id", "name", "mesh_sha256", "diameter_m"}``;
- ``meshes``: the render meshes the model was trained with (``{obj_id: {"vertices", "faces", "face_albedo"}}``,
  metres), so that a checkpoint refines on its own.

:func:`check_registry` compares the registry with the models a dataset provides: missing ids and meshes that differ
(another file, another unit) are one error naming the objects.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError

__all__ = ["FORMAT_VERSION", "mesh_sha256", "object_registry", "save_checkpoint_atomic", "read_refiner_checkpoint",
           "check_registry"]

FORMAT_VERSION = 1
_REQUIRED = ("format_version", "method", "config", "state_dict", "objects", "meshes")


def mesh_sha256(model) -> str:
    """SHA-256 of an :class:`~iterpose.mesh.ObjectModel`'s geometry: vertices rounded to 1 µm, then faces."""
    v = np.round(model.vertices.detach().cpu().double().numpy() * 1e6).astype(np.int64)
    f = model.faces.detach().cpu().numpy().astype(np.int64)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(v).tobytes())
    h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def object_registry(objects: Mapping[int, object]) -> list[dict]:
    """The registry entries of ``{obj_id: ObjectModel}``, sorted by id."""
    return [{"obj_id": int(k), "name": str(m.name), "mesh_sha256": mesh_sha256(m), "diameter_m": float(m.diameter_m)}
            for k, m in sorted(objects.items())]


def save_checkpoint_atomic(obj: dict, path: str | Path) -> None:
    """``torch.save(obj)`` to a temporary file next to ``path``, then rename: a reader never sees half a file and
    an interrupted write leaves the previous file intact. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_refiner_checkpoint(path: str | Path) -> dict:
    """Read and validate a refiner checkpoint (any method).

    Raises:
        MissingFileError: no such file.
        DataFormatError: unreadable, truncated or corrupted file, a training checkpoint (``last.pt``) instead of
            weights, missing entries, or a newer ``format_version``; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file {path} does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, pickle errors, zipfile errors ...
        raise DataFormatError(f"weights file {path} is not a readable iterpose checkpoint (truncated or "
                              f"corrupted?): {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(ckpt, dict):
        raise DataFormatError(f"weights file {path} does not hold an iterpose checkpoint (got a "
                              f"{type(ckpt).__name__}).")
    if "optimizer" in ckpt and "weights" in ckpt:
        raise DataFormatError(f"{path} is a training checkpoint (last.pt); refine with the run's final.pt, or "
                              f"export one with `iterpose train ... --resume` to the end.")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise DataFormatError(f"weights file {path} is not an iterpose refiner checkpoint: missing {missing}.")
    if not isinstance(ckpt["format_version"], int) or ckpt["format_version"] > FORMAT_VERSION:
        raise DataFormatError(f"weights file {path} has format_version {ckpt['format_version']!r}; this iterpose "
                              f"reads up to {FORMAT_VERSION}: upgrade iterpose.")
    return ckpt


def check_registry(registry: list[dict], objects: Mapping[int, object], source: str) -> None:
    """Check that every object of ``objects`` is in the checkpoint's registry with the same mesh.

    Raises:
        InvalidInputError: ids the checkpoint was not trained for, or meshes that differ (named, with ``source``,
            the weights file).
    """
    known = {int(e["obj_id"]): e for e in registry}
    missing = sorted(int(k) for k in objects if int(k) not in known)
    differ = sorted(int(k) for k, m in objects.items() if int(k) in known and
                    mesh_sha256(m) != known[int(k)]["mesh_sha256"])
    if missing or differ:
        parts = []
        if missing:
            parts.append(f"objects {missing} are not in it (it was trained for {sorted(known)})")
        if differ:
            parts.append(f"the meshes of objects {differ} differ from the ones it was trained with (another model "
                         f"file or unit?)")
        raise InvalidInputError(f"weights {source} do not match the dataset's models: {'; '.join(parts)}.")
