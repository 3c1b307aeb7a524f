"""Refiners by name, for the CLI and :func:`make_refiner`: ``"rgb-lm"`` (training-free), ``"repose"`` and
``"deepim"`` (learned; not available yet: a clear error until their packages land)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner

__all__ = ["METHODS", "make_refiner"]

METHODS = ("rgb-lm", "repose", "deepim")
"""Method names accepted by :func:`make_refiner` and ``iterpose refine --method``."""

_NOT_YET = ("repose", "deepim")


def make_refiner(method: str, objects: Mapping[int, object], *, weights: str | Path | None = None,
                 iterations: int | None = None) -> Refiner:
    """Build a refiner.

    Args:
        method: one of :data:`METHODS`.
        objects: ``{obj_id: ObjectModel}`` the refiner works on.
        weights: checkpoint of a learned method (``rgb-lm`` takes none).
        iterations: override of the method's default number of iterations.

    Raises:
        InvalidInputError: unknown method, a method not available yet, weights given to ``rgb-lm``.
    """
    if method not in METHODS:
        raise InvalidInputError(f"make_refiner: unknown method {method!r}; choose one of {METHODS}.")
    if method in _NOT_YET:
        raise InvalidInputError(f"make_refiner: method {method!r} is not available yet in this version of iterpose "
                                f"(its refiner has not landed); use --method rgb-lm.")
    if weights is not None:
        raise InvalidInputError(f"make_refiner: method 'rgb-lm' is training-free and takes no weights, got "
                                f"weights={str(weights)!r}; drop --weights.")
    from iterpose.refiners.rgb_lm import RgbLM, RgbLMConfig  # noqa: PLC0415

    config = RgbLMConfig() if iterations is None else RgbLMConfig(iterations=iterations)
    return RgbLM(objects, config)
