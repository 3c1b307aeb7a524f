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
from iterpose.refiners.proxy_mesh import ProxyMesh

__all__ = ["FORMAT_VERSION", "mesh_sha256", "object_registry", "save_checkpoint_atomic", "read_refiner_checkpoint",
           "check_registry", "render_meshes_to_dict", "weights_dict", "render_meshes_from_dict",
           "learned_checkpoint_parts", "load_state_strict"]

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


def weights_dict(method: str, config, net, registry: list[dict]) -> dict:
    """The weights-file dict of a learned model (``net``: a module with ``.meshes``; ``config``: its config
    dataclass with ``to_dict``): what :func:`read_refiner_checkpoint` reads back."""
    return {"format_version": FORMAT_VERSION, "method": method, "config": config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "objects": registry, "meshes": render_meshes_to_dict(net.meshes)}


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


def render_meshes_to_dict(meshes: Mapping[int, ProxyMesh]) -> dict:
    """The render meshes as a checkpoint entry ``{obj_id: {"vertices", "faces", "face_albedo", "diameter_m"}}``."""
    return {int(k): {"vertices": m.vertices.clone(), "faces": m.faces.clone(), "face_albedo": m.face_albedo.clone(),
                     "diameter_m": float(m.diameter_m)} for k, m in meshes.items()}


def render_meshes_from_dict(data: dict, source: str) -> dict[int, ProxyMesh]:
    """Inverse of :func:`render_meshes_to_dict`, with shape checks (DataFormatError naming ``source``)."""
    out = {}
    try:
        for k, d in data.items():
            v, f, a = d["vertices"], d["faces"], d["face_albedo"]
            if v.dim() != 2 or v.shape[1] != 3 or f.dim() != 2 or f.shape[1] != 3 or a.shape != f.shape or \
                    int(f.max()) >= v.shape[0] or int(f.min()) < 0:
                raise ValueError(f"object {k}: inconsistent mesh arrays")
            out[int(k)] = ProxyMesh(obj_id=int(k), vertices=v.float(), faces=f.long(), face_albedo=a.float(),
                                    diameter_m=float(d["diameter_m"]))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DataFormatError(f"weights file {source}: the render meshes are damaged ({exc}).") from None
    return out


def learned_checkpoint_parts(ckpt: dict, source: str, method: str, config_cls, objects: Mapping[int, object] | None
                             ) -> tuple[object, dict]:
    """``(config, render meshes)`` of a learned method's checkpoint read by :func:`read_refiner_checkpoint`, after
    checking that it holds ``method`` and (with ``objects``) that its registry matches them.

    Raises:
        InvalidInputError: another method; a registry that does not match ``objects``.
        DataFormatError: a config ``config_cls`` refuses, damaged meshes.
    """
    if ckpt["method"] != method:
        raise InvalidInputError(f"weights file {source} holds a {ckpt['method']!r} model, not a {method!r} one; "
                                f"use --method {ckpt['method']}.")
    try:
        config = config_cls(**ckpt["config"])
    except (TypeError, InvalidInputError) as exc:
        raise DataFormatError(f"weights file {source}: its {method} config is not valid here ({exc}).") from None
    meshes = render_meshes_from_dict(ckpt["meshes"], source)
    if objects is not None:
        check_registry(ckpt["objects"], objects, source)
    return config, meshes


def load_state_strict(net: torch.nn.Module, state_dict: dict, source: str, label: str) -> None:
    """``net.load_state_dict(state_dict, strict=True)``, a mismatch being one DataFormatError naming ``source``."""
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise DataFormatError(f"weights file {source} does not fit its own {label} config: "
                              f"{str(exc).splitlines()[0][:300]}") from None
