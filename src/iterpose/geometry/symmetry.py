"""The BOP set of symmetry transforms of an object (identity, discrete, discretised continuous).

Mirrors ``bop_toolkit_lib.misc.get_symmetry_transformations`` operation by operation, in float64, so that metrics
built on it (MSSD, MSPD, ADD-S variants) are comparable with bop_toolkit's numpy code:

1. ``trans_disc`` = identity (R = I, t = 0) followed by every discrete symmetry ``M`` (R = M[:3, :3], t = M[:3, 3]).
2. For each continuous symmetry (axis ``a``, offset ``o``): ``N = ceil(pi / max_sym_disc_step)`` (315 for 0.01),
   ``step = 2 pi / N``; for ``i = 0 .. N-1``: ``R_i`` = rotation by ``i * step`` about the unit axis ``a / |a|``
   (Rodrigues, as ``transform.rotation_matrix``: ``cos I + (1 - cos) a a^T + sin [a]_x``), ``t_i = -R_i o + o``.
   The continuous lists of several continuous symmetries are concatenated (not composed), as in bop_toolkit.
3. If there is any continuous symmetry, the result is ``[(R_c R_d, R_c t_d + t_c) for d in trans_disc for c in
   trans_cont]`` (discrete index outer, continuous inner); otherwise ``trans_disc``.

Numerics: the continuous-sample rotations ``R_i`` are bit-identical to bop_toolkit's (same scalar operations in
the same order, ``math.sin``/``math.cos``); the products ``R_c R_d`` and ``R_c t_d`` use sequential sums
``(a0 b0 + a1 b1) + a2 b2`` and may differ from numpy's BLAS ``dot`` (which can use FMA) in the last bit
(measured: <= 1.2e-16 on R, <= 1e-15 relative on t).

A transform (R, t) maps model points ``x -> R x + t`` in the model frame; the pose ``T_co`` of an object is
equivalent to ``T_co @ [R t; 0 1]`` for every member of the set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from iterpose.errors import InvalidInputError, ShapeError

__all__ = ["bop_symmetry_transforms"]


def _continuous_pair(sym: Any, index: int) -> tuple[list[float], list[float]]:
    """``(axis, offset)`` as python floats from a pair or an object with ``axis`` and ``offset_m``/``offset``."""
    if hasattr(sym, "axis"):
        axis = sym.axis
        offset = getattr(sym, "offset_m", None)
        if offset is None:
            offset = getattr(sym, "offset", None)
    else:
        try:
            axis, offset = sym
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"bop_symmetry_transforms: symmetries_continuous[{index}] must be an (axis, offset) pair or have "
                f"attributes 'axis' and 'offset_m'; got {sym!r}"
            ) from exc
    vals = []
    for name, v in (("axis", axis), ("offset", offset)):
        v = torch.as_tensor(v, dtype=torch.float64).detach().cpu().reshape(-1)
        if v.numel() != 3:
            raise ShapeError(
                f"bop_symmetry_transforms: symmetries_continuous[{index}].{name} must have 3 values, got "
                f"{v.numel()}"
            )
        if not bool(torch.isfinite(v).all()):
            raise InvalidInputError(
                f"bop_symmetry_transforms: symmetries_continuous[{index}].{name} is not finite: {v.tolist()}"
            )
        vals.append([float(x) for x in v])
    return vals[0], vals[1]


def _rodrigues_bop(angle: float, axis: list[float]) -> list[list[float]]:
    """3x3 rotation as python floats, with the exact operation order of Gohlke's ``rotation_matrix``."""
    sina = math.sin(angle)
    cosa = math.cos(angle)
    norm = math.sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2])
    d = [axis[0] / norm, axis[1] / norm, axis[2] / norm]
    ds = [d[0] * sina, d[1] * sina, d[2] * sina]
    skew = [[0.0, -ds[2], ds[1]], [ds[2], 0.0, -ds[0]], [-ds[1], ds[0], 0.0]]
    one_m_cos = 1.0 - cosa
    R = [[0.0] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(3):
            base = (cosa if i == j else 0.0) + (d[i] * d[j]) * one_m_cos
            R[i][j] = base + skew[i][j]
    return R


def _matmul3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for ``[..., 3, 3] x [..., 3, k]`` with sequential sums ``(a0 b0 + a1 b1) + a2 b2``."""
    a0, a1, a2 = a[..., :, 0:1], a[..., :, 1:2], a[..., :, 2:3]
    return (a0 * b[..., 0:1, :] + a1 * b[..., 1:2, :]) + a2 * b[..., 2:3, :]


def bop_symmetry_transforms(
    symmetries_discrete: torch.Tensor | None,
    symmetries_continuous: Sequence[Any] = (),
    max_sym_disc_step: float = 0.01,
    *,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All symmetry transforms of an object, exactly as bop_toolkit's ``misc.get_symmetry_transformations``.

    Args:
        symmetries_discrete: ``[S, 4, 4]`` model-frame transforms ``[R t; 0 1]`` (identity *not* included), any
            float dtype, translation in any unit (the output ``t`` is in the same unit); ``None`` or ``[0, 4, 4]``
            when the object has none.
        symmetries_continuous: sequence of continuous symmetries, each an ``(axis (3,), offset (3,))`` pair or an
            object with attributes ``axis`` and ``offset_m`` (e.g. ``iterpose.mesh.ContinuousSymmetry``). The axis
            need not be unit (it is normalised); the offset is a point on the axis in the unit of the output ``t``.
        max_sym_disc_step: the largest fraction of the diameter that the point farthest from a continuous axis
            travels between consecutive samples; ``N = ceil(pi / max_sym_disc_step)`` samples per axis (BOP: 0.01).
        device: where to put the output; defaults to the device of ``symmetries_discrete`` (CPU if ``None``).

    Returns:
        ``(R, t)``: ``R [M, 3, 3]`` float64 rotations and ``t [M, 3]`` float64 translations, ``M = (1 + S) * N_c``
        where ``N_c`` is the total number of continuous samples (``M = 1 + S`` without continuous symmetry).
        Entry 0 is always the identity. Ordering: discrete index outer, continuous sample inner.

    Raises:
        ShapeError: ``symmetries_discrete`` is not ``[S, 4, 4]``, or an axis/offset has not 3 values.
        InvalidInputError: non-finite values, a zero axis, or a ``max_sym_disc_step`` that is not > 0.

    Example:
        >>> import math, torch
        >>> flip_z = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=torch.float64))[None]
        >>> R, t = bop_symmetry_transforms(flip_z)
        >>> R.shape, t.shape, R.dtype
        (torch.Size([2, 3, 3]), torch.Size([2, 3]), torch.float64)
        >>> R, t = bop_symmetry_transforms(None, [((0, 0, 1), (0, 0, 0))], 0.01)
        >>> R.shape[0], math.ceil(math.pi / 0.01)
        (315, 315)
    """
    fn = "bop_symmetry_transforms"
    try:
        step = float(max_sym_disc_step)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{fn}: max_sym_disc_step must be a number > 0, got {max_sym_disc_step!r}") from exc
    if not (math.isfinite(step) and step > 0.0):
        raise InvalidInputError(f"{fn}: max_sym_disc_step must be finite and > 0 (BOP uses 0.01), got {step}")

    if symmetries_discrete is None:
        disc = torch.zeros(0, 4, 4, dtype=torch.float64)
        out_device = torch.device(device) if device is not None else torch.device("cpu")
    else:
        disc = torch.as_tensor(symmetries_discrete)
        out_device = torch.device(device) if device is not None else disc.device
        if disc.ndim != 3 or tuple(disc.shape[1:]) != (4, 4):
            raise ShapeError(
                f"{fn}: symmetries_discrete must be [S, 4, 4] (BOP symmetries_discrete reshaped to 4x4), got "
                f"{list(disc.shape)}"
            )
        disc = disc.detach().to(dtype=torch.float64)
        if not bool(torch.isfinite(disc).all()):
            raise InvalidInputError(f"{fn}: symmetries_discrete contains NaN or inf")
    disc = disc.to(out_device)

    eye = torch.eye(3, dtype=torch.float64, device=out_device)
    R_d = torch.cat([eye[None], disc[:, :3, :3]], dim=0)  # [D, 3, 3]
    t_d = torch.cat([torch.zeros(1, 3, 1, dtype=torch.float64, device=out_device), disc[:, :3, 3:4]], dim=0)

    rots: list[list[list[float]]] = []
    offsets: list[list[float]] = []
    for k, sym in enumerate(symmetries_continuous):
        axis, offset = _continuous_pair(sym, k)
        if axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2] == 0.0:
            raise InvalidInputError(f"{fn}: symmetries_continuous[{k}].axis is the zero vector; give a direction")
        n_steps = int(math.ceil(math.pi / step))
        disc_step = 2.0 * math.pi / n_steps
        for i in range(n_steps):
            rots.append(_rodrigues_bop(i * disc_step, axis))
            offsets.append(offset)

    if not rots:
        return R_d.clone(), t_d[..., 0].clone()

    R_c = torch.tensor(rots, dtype=torch.float64, device=out_device)  # [C, 3, 3]
    o = torch.tensor(offsets, dtype=torch.float64, device=out_device)[..., None]  # [C, 3, 1]
    t_c = -_matmul3(R_c, o) + o  # [C, 3, 1]

    R = _matmul3(R_c[None], R_d[:, None])  # [D, C, 3, 3]
    t = _matmul3(R_c[None], t_d[:, None]) + t_c[None]  # [D, C, 3, 1]
    return R.reshape(-1, 3, 3), t.reshape(-1, 3)
