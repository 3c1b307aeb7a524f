"""Refiners by name, for the CLI and :func:`make_refiner`: ``"rgb-lm"`` (training-free), ``"repose"`` (learned:
needs weights) and ``"deepim"`` (not available yet: a clear error until its package lands)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner

__all__ = ["METHODS", "make_refiner"]

METHODS = ("rgb-lm", "repose", "deepim")
"""Method names accepted by :func:`make_refiner` and ``iterpose refine --method``."""

_NOT_YET = ("deepim",)
_LEARNED = ("repose",)


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
        InvalidInputError: unknown method, a method not available yet, weights given to ``rgb-lm`` or missing for a
            learned method, weights of another method or for other objects.
        MissingFileError, DataFormatError: unreadable weights.
    """
    if method not in METHODS:
        raise InvalidInputError(f"make_refiner: unknown method {method!r}; choose one of {METHODS}.")
    if method in _NOT_YET:
        raise InvalidInputError(f"make_refiner: method {method!r} is not available yet in this version of iterpose "
                                f"(its refiner has not landed); use --method rgb-lm.")
    if method in _LEARNED:
        if weights is None:
            raise InvalidInputError(f"make_refiner: method {method!r} is learned and needs weights (--weights FILE, "
                                    f"e.g. weights/lmo-repose.pt or a training run's final.pt).")
        from iterpose.refiners.loading import load_refiner  # noqa: PLC0415

        refiner = load_refiner(weights, objects, method=method, device=device)
        if iterations is not None:
            refiner.default_iterations = iterations
        return refiner
    if weights is not None:
        raise InvalidInputError(f"make_refiner: method 'rgb-lm' is training-free and takes no weights, got "
                                f"weights={str(weights)!r}; drop --weights.")
    from iterpose.refiners.rgb_lm import RgbLM, RgbLMConfig  # noqa: PLC0415

    config = RgbLMConfig() if iterations is None else RgbLMConfig(iterations=iterations)
    return RgbLM(objects, config)
