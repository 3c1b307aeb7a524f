"""Refiners by name, for the CLI and :func:`make_refiner`: ``"rgb-lm"`` (training-free), ``"repose"`` and
``"deepim"`` (learned: need weights)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner

__all__ = ["METHODS", "make_refiner", "check_method_and_weights"]

METHODS = ("rgb-lm", "repose", "deepim")
"""Method names accepted by :func:`make_refiner` and ``iterpose refine --method``."""

_LEARNED = ("repose", "deepim")


def check_method_and_weights(method: str, weights: str | Path | None) -> dict | None:
    """Validate a method name and its weights without building anything (what the CLI checks before reading a
    dataset): returns the learned method's checkpoint (read and checked), ``None`` for ``rgb-lm``.

    Raises:
        InvalidInputError: unknown method, weights given to ``rgb-lm`` or missing for a
            learned method, weights of another method.
        MissingFileError, DataFormatError: unreadable weights.
    """
    if method not in METHODS:
        raise InvalidInputError(f"make_refiner: unknown method {method!r}; choose one of {METHODS}.")
    if method in _LEARNED:
        if weights is None:
            raise InvalidInputError(f"make_refiner: method {method!r} is learned and needs weights (--weights FILE, "
                                    f"e.g. weights/lmo-repose.pt or a training run's final.pt).")
        from iterpose.refiners.checkpoint import read_refiner_checkpoint  # noqa: PLC0415
        from iterpose.refiners.loading import check_checkpoint_method  # noqa: PLC0415

        ckpt = read_refiner_checkpoint(weights)
        check_checkpoint_method(ckpt, method, str(weights))
        return ckpt
    if weights is not None:
        raise InvalidInputError(f"make_refiner: method 'rgb-lm' is training-free and takes no weights, got "
                                f"weights={str(weights)!r}; drop --weights.")
    return None


def make_refiner(method: str, objects: Mapping[int, object], *, weights: str | Path | None = None,
                 iterations: int | None = None, device: str = "cpu") -> Refiner:
    """Build a refiner.

    Args:
        method: one of :data:`METHODS`.
        objects: ``{obj_id: ObjectModel}`` the refiner works on.
        weights: checkpoint of a learned method (required for them; ``rgb-lm`` takes none).
        iterations: override of the method's default number of iterations.
        device: torch device of a learned method's network.

    Raises:
        InvalidInputError: as :func:`check_method_and_weights`, and weights for other objects.
        MissingFileError, DataFormatError: unreadable weights.
    """
    ckpt = check_method_and_weights(method, weights)
    if ckpt is not None:
        from iterpose.refiners.loading import refiner_from_checkpoint  # noqa: PLC0415

        refiner = refiner_from_checkpoint(ckpt, str(weights), objects, device)
        if iterations is not None:
            refiner.default_iterations = iterations
        return refiner
    from iterpose.refiners.rgb_lm import RgbLM, RgbLMConfig  # noqa: PLC0415

    config = RgbLMConfig() if iterations is None else RgbLMConfig(iterations=iterations)
    return RgbLM(objects, config)
