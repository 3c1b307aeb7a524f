"""The one place where BOP's millimetre poses meet iterpose's metre poses.

BOP files store a pose as ``R`` (3x3, row-major, model -> camera) and ``t`` in **millimetres**; iterpose works
with ``T_co`` ([..., 4, 4] object-to-camera transforms, translation in **metres**). Every reader and writer in
:mod:`iterpose.data` converts through these two functions, so the rule (``t_m = t_mm / 1000``) lives once.

Convention: the conversion divides (or multiplies) by exactly ``1000.0`` in float64, so ``t_mm -> t_m`` is
correctly rounded. A round trip mm -> m -> mm can differ from the input by one unit in the last place; keep the
millimetre values you read (e.g. :class:`iterpose.data.ResultsTable.t_mm`) when bit-exactness with bop_toolkit
matters.
"""

from __future__ import annotations

import numpy as np

from iterpose.errors import ShapeError

__all__ = ["MM_PER_M", "UNIT_TO_M", "m_from_mm", "mm_from_m", "Rt_mm_to_T_co", "T_co_to_Rt_mm"]

MM_PER_M = 1000.0
"""Millimetres per metre: the only unit factor used at the BOP boundary."""

UNIT_TO_M = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
"""Metres per file unit: the one unit table (mesh loaders multiply by it, mesh writers divide by it; ``1 / value``
is exactly 1000, 100 and 1). This module imports only NumPy, so the mesh layer uses it too."""


def m_from_mm(x_mm):
    """Millimetres -> metres: ``x_mm / 1000.0`` (float, NumPy array or torch tensor; a new value of the same kind).

    Example:
        >>> m_from_mm(500.0)
        0.5
    """
    return x_mm / MM_PER_M


def mm_from_m(x_m):
    """Metres -> millimetres: ``x_m * 1000.0`` (float, NumPy array or torch tensor; a new value of the same kind).

    Example:
        >>> mm_from_m(0.5)
        500.0
    """
    return x_m * MM_PER_M


def Rt_mm_to_T_co(R, t_mm) -> np.ndarray:
    """Rotation + millimetre translation -> object-to-camera transform in metres.

    Args:
        R: ``[..., 3, 3]`` rotation (model -> camera), any real dtype; array-like (numpy, list, CPU tensor).
        t_mm: ``[..., 3]`` or ``[..., 3, 1]`` translation in millimetres (BOP ``cam_t_m2c`` / CSV ``t``).

    Returns:
        ``T_co`` ``[..., 4, 4]`` float64 numpy array, translation in metres, last row ``[0, 0, 0, 1]``.

    Raises:
        ShapeError: ``R`` is not ``[..., 3, 3]`` or ``t_mm`` does not match its leading dimensions.

    Example:
        >>> T = Rt_mm_to_T_co(np.eye(3), [10.0, 0.0, 500.0])
        >>> T[:3, 3].tolist(), T[3].tolist()
        ([0.01, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0])
    """
    R = np.asarray(R, dtype=np.float64)
    t_mm = np.asarray(t_mm, dtype=np.float64)
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ShapeError(f"Rt_mm_to_T_co: R must be [..., 3, 3], got shape {tuple(R.shape)}")
    if t_mm.ndim >= 2 and t_mm.shape[-2:] == (3, 1):
        t_mm = t_mm[..., 0]
    if t_mm.shape != R.shape[:-2] + (3,):
        raise ShapeError(
            f"Rt_mm_to_T_co: t_mm must be [..., 3] with the leading shape of R {tuple(R.shape[:-2])}, "
            f"got shape {tuple(t_mm.shape)}"
        )
    T = np.zeros(R.shape[:-2] + (4, 4), dtype=np.float64)
    T[..., :3, :3] = R
    T[..., :3, 3] = m_from_mm(t_mm)
    T[..., 3, 3] = 1.0
    return T


def T_co_to_Rt_mm(T_co) -> tuple[np.ndarray, np.ndarray]:
    """Object-to-camera transform in metres -> (rotation, millimetre translation) as BOP stores them.

    Args:
        T_co: ``[..., 4, 4]`` transform, translation in metres; array-like (numpy, list, CPU tensor).

    Returns:
        ``(R, t_mm)``: ``R`` ``[..., 3, 3]`` float64 and ``t_mm`` ``[..., 3]`` float64 millimetres (new arrays).

    Raises:
        ShapeError: ``T_co`` is not ``[..., 4, 4]``.

    Example:
        >>> R, t_mm = T_co_to_Rt_mm(Rt_mm_to_T_co(np.eye(3), [10.0, 0.0, 500.0]))
        >>> t_mm.tolist()
        [10.0, 0.0, 500.0]
    """
    T = np.asarray(T_co, dtype=np.float64)
    if T.ndim < 2 or T.shape[-2:] != (4, 4):
        raise ShapeError(f"T_co_to_Rt_mm: T_co must be [..., 4, 4], got shape {tuple(T.shape)}")
    return T[..., :3, :3].copy(), mm_from_m(T[..., :3, 3])
