"""Private shape checks shared by the geometry modules (raise :class:`iterpose.errors.ShapeError`)."""

from __future__ import annotations

import torch

from iterpose.errors import InvalidInputError, ShapeError

__all__ = ["check_tail", "check_tensor", "unit_eps"]


def check_tensor(x: object, fn: str, name: str) -> torch.Tensor:
    """Raise ``InvalidInputError`` unless ``x`` is a floating-point tensor; return it."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InvalidInputError(f"{fn}: {name} must be a floating-point tensor, got dtype {x.dtype}; use .float()")
    return x


def check_tail(x: object, tail: tuple[int, ...], fn: str, name: str, layout: str) -> torch.Tensor:
    """Raise ``ShapeError`` unless ``x`` is a float tensor whose last dims equal ``tail``; return it.

    ``layout`` is the documented shape, e.g. ``"[*, 3, 3]"``, quoted in the message.
    """
    x = check_tensor(x, fn, name)
    if x.ndim < len(tail) or tuple(x.shape[x.ndim - len(tail) :]) != tail:
        raise ShapeError(f"{fn}: {name} must have shape {layout}, got {list(x.shape)}")
    return x


def unit_eps(dtype: torch.dtype) -> float:
    """A small positive length under which a vector counts as zero for normalisation at ``dtype``."""
    return 1e-12 if dtype == torch.float64 else 1e-6
