"""`load_refiner`: a trained refiner from its weights file (the method comes from the checkpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner
from iterpose.refiners.checkpoint import read_refiner_checkpoint

__all__ = ["load_refiner", "check_checkpoint_method", "refiner_from_checkpoint"]

_REFINERS = {"repose": "iterpose.refiners.repose:ReposeRefiner", "deepim": "iterpose.refiners.deepim:DeepimRefiner"}
"""Learned method name -> its refiner class (imported on demand), whose ``from_checkpoint`` builds it."""


def load_refiner(path: str | Path, objects: Mapping[int, object] | None = None, *, method: str | None = None,
                 device: str = "cpu") -> Refiner:
    """Load a learned refiner.

    Args:
        path: a weights file written by ``iterpose train`` (``RUN_DIR/final.pt``, ``weights/lmo-repose.pt``).
        objects: optional ``{obj_id: ObjectModel}`` the refiner will be used on; each must be in the checkpoint's
            object registry with the same mesh (else one error naming the objects).
        method: the method the caller expects (e.g. ``--method repose``); a checkpoint of another method is an
            error. ``None`` accepts any.
        device: torch device of the network.

    Raises:
        MissingFileError, DataFormatError: no file, or a truncated / corrupted / foreign file (never a half-loaded
            model).
        InvalidInputError: the checkpoint's method is not ``method``, or its registry does not match ``objects``.
    """
    source = str(path)
    ckpt = read_refiner_checkpoint(path)
    check_checkpoint_method(ckpt, method, source)
    return refiner_from_checkpoint(ckpt, source, objects, device)


def check_checkpoint_method(ckpt: dict, method: str | None, source: str) -> None:
    """InvalidInputError when a read checkpoint holds another method than ``method`` (``None`` accepts any) or one
    this version cannot run."""
    found = ckpt["method"]
    if found == "scorer":
        raise InvalidInputError(f"weights file {source} holds a pose scorer, not a refiner: give it to --scorer "
                                f"(with --hypotheses H) and a refiner's weights to --weights.")
    if method is not None and found != method:
        raise InvalidInputError(f"weights file {source} holds a {found!r} model, but method {method!r} was asked "
                                f"for; use --method {found} (or weights trained with --method {method}).")
    if found not in _REFINERS:
        raise InvalidInputError(f"weights file {source} holds a {found!r} model, which this version of iterpose "
                                f"cannot run (known: {sorted(_REFINERS)}).")


def refiner_from_checkpoint(ckpt: dict, source: str, objects: Mapping[int, object] | None = None,
                            device: str = "cpu") -> Refiner:
    """The refiner of a checkpoint read by :func:`~iterpose.refiners.checkpoint.read_refiner_checkpoint` and checked
    by :func:`check_checkpoint_method` (strict load; registry checked against ``objects``)."""
    import importlib  # noqa: PLC0415

    module, name = _REFINERS[ckpt["method"]].split(":")
    refiner = getattr(importlib.import_module(module), name).from_checkpoint(ckpt, source, objects)
    return refiner.to(device) if str(device) != "cpu" else refiner
