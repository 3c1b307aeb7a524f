"""The BOP set of symmetry transforms of an object (identity, discrete, discretised continuous).

One implementation, in NumPy float64: :func:`bop_symmetry_transforms_np` (used by evaluation, which does not import
torch). :func:`bop_symmetry_transforms` is its torch wrapper (``torch.from_numpy`` of the same arrays).

It transcribes ``bop_toolkit_lib.misc.get_symmetry_transformations`` and ``bop_toolkit_lib.transform.rotation_matrix``
(Gohlke's ``transformations.py``) call by call, so that the result is **bit-identical** to bop_toolkit's with the same
NumPy (including BLAS, which numpy's ``dot`` uses and which may fuse multiply-adds — the same calls on arrays of the
same shapes, dtypes and memory layouts give the same bits):

1. ``trans_disc`` = identity (``np.eye(3)``, ``t = np.array([[0, 0, 0]]).T``, an integer array as in bop) followed by
   every discrete symmetry ``M`` (``R = M[:3, :3]``, ``t = M[:3, 3].reshape((3, 1))``, views of a C-contiguous 4x4).
2. For each continuous symmetry (axis ``a``, offset ``o``): ``N = int(np.ceil(np.pi / max_sym_disc_step))`` (315 for
   0.01), ``step = 2.0 * np.pi / N``; for ``i = 0 .. N-1``: ``R_i`` = rotation by ``i * step`` about ``a``:
   ``d = a / math.sqrt(np.dot(a, a))``; ``R = diag(cos) ; R += outer(d, d) * (1 - cos) ; R += skew(d * sin)``
   (``math.sin``/``math.cos``, elementwise operations in this order: vectorised over ``i`` here, which is exact
   because every operation is a single rounded IEEE operation); ``t_i = -R_i.dot(o) + o`` (one ``dot`` per sample,
   as in bop). The lists of several continuous symmetries are concatenated (not composed), as in bop_toolkit.
3. With any continuous symmetry the result is ``[(R_c.dot(R_d), R_c.dot(t_d) + t_c) for d in trans_disc for c in
   trans_cont]`` (discrete index outer, continuous inner); otherwise ``trans_disc``.

A transform (R, t) maps model points ``x -> R x + t`` in the model frame; the pose ``T_co`` of an object is
equivalent to ``T_co @ [R t; 0 1]`` for every member of the set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from iterpose.errors import InvalidInputError, ShapeError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["bop_symmetry_transforms_np", "bop_symmetry_transforms"]


def _as_float64_np(value: Any) -> np.ndarray:
    """A float64 NumPy array of ``value`` (sequence, NumPy array, or a torch tensor on any device)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float64)


def _continuous_pair(sym: Any, index: int, fn: str) -> tuple[np.ndarray, np.ndarray]:
    """``(axis (3,), offset (3,))`` float64 from a pair or an object with ``axis`` and ``offset_m``/``offset``."""
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
                f"{fn}: symmetries_continuous[{index}] must be an (axis, offset) pair or have attributes 'axis' and "
                f"'offset_m'; got {sym!r}"
            ) from exc
    vals = []
    for name, v in (("axis", axis), ("offset", offset)):
        try:
            arr = _as_float64_np(v).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{fn}: symmetries_continuous[{index}].{name} is not numeric: {v!r}") from exc
        if arr.size != 3:
            raise ShapeError(f"{fn}: symmetries_continuous[{index}].{name} must have 3 values, got {arr.size}")
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{fn}: symmetries_continuous[{index}].{name} is not finite: {arr.tolist()}")
        vals.append(arr)
    return vals[0], vals[1]


def _rotations_bop(angles: list[float], axis: np.ndarray) -> np.ndarray:
    """``[N, 3, 3]`` rotations by each angle about ``axis``, bit-identical to bop's ``transform.rotation_matrix``.

    Gohlke's code, per angle: ``sina = math.sin(angle); cosa = math.cos(angle); direction = unit_vector(axis)``
    (``data /= math.sqrt(numpy.dot(data, data))``); ``R = numpy.diag([cosa, cosa, cosa]); R += numpy.outer(direction,
    direction) * (1.0 - cosa); direction *= sina; R += [[0, -d2, d1], [d2, 0, -d0], [-d1, d0, 0]]``. The same
    elementwise operations, in the same order, over a stack of angles.
    """
    direction = np.array(axis, dtype=np.float64, copy=True)
    direction /= math.sqrt(np.dot(direction, direction))
    sina = np.array([math.sin(a) for a in angles], dtype=np.float64)
    cosa = np.array([math.cos(a) for a in angles], dtype=np.float64)
    n = len(angles)
    R = np.zeros((n, 3, 3), dtype=np.float64)
    R[:, 0, 0] = R[:, 1, 1] = R[:, 2, 2] = cosa
    R += np.outer(direction, direction)[None] * (1.0 - cosa)[:, None, None]
    ds = direction[None, :] * sina[:, None]  # [N, 3]: direction *= sina
    skew = np.zeros((n, 3, 3), dtype=np.float64)
    skew[:, 0, 1], skew[:, 0, 2] = -ds[:, 2], ds[:, 1]
    skew[:, 1, 0], skew[:, 1, 2] = ds[:, 2], -ds[:, 0]
    skew[:, 2, 0], skew[:, 2, 1] = -ds[:, 1], ds[:, 0]
    R += skew
    return R


def bop_symmetry_transforms_np(
    symmetries_discrete: Any | None,
    symmetries_continuous: Sequence[Any] = (),
    max_sym_disc_step: float = 0.01,
    *,
    _fn: str = "bop_symmetry_transforms_np",
) -> tuple[np.ndarray, np.ndarray]:
    """All symmetry transforms of an object, bit-identical to bop_toolkit's ``misc.get_symmetry_transformations``.

    Args:
        symmetries_discrete: ``[S, 4, 4]`` model-frame transforms ``[R t; 0 1]`` (identity *not* included), any
            float dtype (NumPy array, nested sequence or a torch tensor), translation in any unit (the output ``t``
            is in the same unit; BOP: mm); ``None`` or ``[0, 4, 4]`` when the object has none.
        symmetries_continuous: sequence of continuous symmetries, each an ``(axis (3,), offset (3,))`` pair or an
            object with attributes ``axis`` and ``offset_m`` (e.g. ``iterpose.mesh.ContinuousSymmetry``). The axis
            need not be unit (it is normalised as bop does); the offset is a point on the axis in the unit of ``t``.
        max_sym_disc_step: the largest fraction of the diameter that the point farthest from a continuous axis
            travels between consecutive samples; ``N = ceil(pi / max_sym_disc_step)`` samples per axis (BOP: 0.01).

    Returns:
        ``(R, t)``: ``R [M, 3, 3]`` float64 rotations and ``t [M, 3]`` float64 translations (new C-contiguous
        arrays), ``M = (1 + S) * N_c`` where ``N_c`` is the total number of continuous samples (``M = 1 + S``
        without continuous symmetry). Entry 0 is always the identity. Ordering: discrete index outer, continuous
        sample inner.

    Raises:
        ShapeError: ``symmetries_discrete`` is not ``[S, 4, 4]``, or an axis/offset has not 3 values.
        InvalidInputError: non-finite values, a zero axis, or a ``max_sym_disc_step`` that is not > 0.

    Example:
        >>> R, t = bop_symmetry_transforms_np(None, [((0, 0, 1), (0, 0, 0))], 0.01)
        >>> R.shape, t.shape, R.dtype
        ((315, 3, 3), (315, 3), dtype('float64'))
    """
    fn = _fn
    try:
        step = float(max_sym_disc_step)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{fn}: max_sym_disc_step must be a number > 0, got {max_sym_disc_step!r}") from exc
    if not (math.isfinite(step) and step > 0.0):
        raise InvalidInputError(f"{fn}: max_sym_disc_step must be finite and > 0 (BOP uses 0.01), got {step}")

    if symmetries_discrete is None:
        disc = np.zeros((0, 4, 4), dtype=np.float64)
    else:
        try:
            disc = _as_float64_np(symmetries_discrete)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{fn}: symmetries_discrete is not a numeric [S, 4, 4] array") from exc
        if disc.ndim != 3 or tuple(disc.shape[1:]) != (4, 4):
            raise ShapeError(
                f"{fn}: symmetries_discrete must be [S, 4, 4] (BOP symmetries_discrete reshaped to 4x4), got "
                f"{list(disc.shape)}"
            )
        if not np.isfinite(disc).all():
            raise InvalidInputError(f"{fn}: symmetries_discrete contains NaN or inf")

    # 1. Discrete symmetries, laid out as bop's: the identity, then views of C-contiguous 4x4 matrices.
    trans_disc: list[tuple[np.ndarray, np.ndarray]] = [(np.eye(3), np.array([[0, 0, 0]]).T)]
    for k in range(disc.shape[0]):
        sym_4x4 = np.ascontiguousarray(disc[k])
        trans_disc.append((sym_4x4[:3, :3], sym_4x4[:3, 3].reshape((3, 1))))

    # 2. Discretised continuous symmetries.
    cont_R: list[np.ndarray] = []
    cont_t: list[np.ndarray] = []
    for k, sym in enumerate(symmetries_continuous):
        axis, offset = _continuous_pair(sym, k, fn)
        if not np.any(axis != 0.0):
            raise InvalidInputError(f"{fn}: symmetries_continuous[{k}].axis is the zero vector; give a direction")
        offset = offset.reshape((3, 1))
        discrete_steps_count = int(np.ceil(np.pi / step))
        discrete_step = 2.0 * np.pi / discrete_steps_count
        Rs = _rotations_bop([i * discrete_step for i in range(discrete_steps_count)], axis)
        M = np.zeros((discrete_steps_count, 4, 4), dtype=np.float64)
        M[:, :3, :3] = Rs
        M[:, 3, 3] = 1.0
        for i in range(discrete_steps_count):
            R = M[i, :3, :3]  # bop: transform.rotation_matrix(...)[:3, :3], a view of a 4x4 matrix
            cont_R.append(R)
            cont_t.append(-R.dot(offset) + offset)

    # 3. Combination (discrete outer, continuous inner).
    if not cont_R:
        R_out = np.stack([np.asarray(R, dtype=np.float64) for R, _ in trans_disc])
        t_out = np.stack([np.asarray(t, dtype=np.float64).reshape(3) for _, t in trans_disc])
        return R_out, t_out
    m = len(trans_disc) * len(cont_R)
    R_out = np.empty((m, 3, 3), dtype=np.float64)
    t_out = np.empty((m, 3), dtype=np.float64)
    j = 0
    for R_d, t_d in trans_disc:
        for R_c, t_c in zip(cont_R, cont_t):
            R_out[j] = R_c.dot(R_d)
            t_out[j] = (R_c.dot(t_d) + t_c)[:, 0]
            j += 1
    return R_out, t_out


def bop_symmetry_transforms(
    symmetries_discrete: "torch.Tensor | None",
    symmetries_continuous: Sequence[Any] = (),
    max_sym_disc_step: float = 0.01,
    *,
    device: "torch.device | str | None" = None,
) -> "tuple[torch.Tensor, torch.Tensor]":
    """Torch version of :func:`bop_symmetry_transforms_np` (the same float64 values, bit for bit).

    Args:
        symmetries_discrete: ``[S, 4, 4]`` model-frame transforms ``[R t; 0 1]`` (identity *not* included), any
            float dtype, translation in any unit (the output ``t`` is in the same unit); ``None`` or ``[0, 4, 4]``
            when the object has none.
        symmetries_continuous: sequence of continuous symmetries, each an ``(axis (3,), offset (3,))`` pair or an
            object with attributes ``axis`` and ``offset_m`` (e.g. ``iterpose.mesh.ContinuousSymmetry``). The axis
            need not be unit (it is normalised); the offset is a point on the axis in the unit of the output ``t``.
        max_sym_disc_step: the largest fraction of the diameter that the point farthest from a continuous axis
            travels between consecutive samples; ``N = ceil(pi / max_sym_disc_step)`` samples per axis (BOP: 0.01).
        device: where to put the output; defaults to the device of ``symmetries_discrete`` (CPU if ``None`` or
            not a tensor).

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
    import torch  # noqa: PLC0415 (evaluation uses the NumPy function without importing torch)

    if device is not None:
        out_device = torch.device(device)
    elif isinstance(symmetries_discrete, torch.Tensor):
        out_device = symmetries_discrete.device
    else:
        out_device = torch.device("cpu")
    R, t = bop_symmetry_transforms_np(
        symmetries_discrete, symmetries_continuous, max_sym_disc_step, _fn="bop_symmetry_transforms"
    )
    return torch.from_numpy(R).to(out_device), torch.from_numpy(t).to(out_device)
