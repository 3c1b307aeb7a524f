"""Rotation representations and conversions, batched over any leading dims ``*``.

Conventions:
    - Rotation matrices ``R [*, 3, 3]`` act on column vectors: ``x' = R x``. Proper rotations (det +1).
    - Axis-angle ``[*, 3]`` is ``angle * unit_axis`` (radians), angle in ``[0, pi]`` on output.
    - Quaternions ``[*, 4]`` are ``(w, x, y, z)``, scalar first, unit norm, ``w >= 0`` on output.
    - 6D (Zhou et al., CVPR 2019) ``[*, 6]`` holds the first two *columns* of R: ``(r11, r21, r31, r12, r22, r32)``.
    - Euler ``"xyz"`` is *extrinsic* (fixed axes): angles ``(a, b, c)`` give ``R = Rz(c) @ Ry(b) @ Rx(a)``.

Every function follows its input's device and dtype and is differentiable through plain torch ops (see each
docstring for points where the gradient is not defined).
"""

from __future__ import annotations

import math

import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry._checks import check_tail, unit_eps

__all__ = [
    "hat",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "euler_to_matrix",
    "rotation_angle",
    "orthonormalize",
    "random_rotations",
]

# Below this squared angle (rad^2) the trigonometric ratios use their Taylor series.
_SMALL_ANGLE_SQ = 1e-6


def hat(v: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric cross-product matrix ``[v]_x`` with ``[v]_x @ u == cross(v, u)``.

    Args:
        v: ``[*, 3]`` vectors.

    Returns:
        ``[*, 3, 3]`` same dtype/device.

    Example:
        >>> hat(torch.tensor([1.0, 2.0, 3.0]))
        tensor([[ 0., -3.,  2.],
                [ 3.,  0., -1.],
                [-2.,  1.,  0.]])
    """
    check_tail(v, (3,), "hat", "v", "[*, 3]")
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def _sinc_and_versine(theta_sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(sin t / t, (1 - cos t) / t^2, small)`` for ``theta_sq = t^2``, exact at 0 and with finite gradients."""
    small = theta_sq < _SMALL_ANGLE_SQ
    safe = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe.sqrt()
    a = torch.where(small, 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0, torch.sin(theta) / theta)
    half_sin = torch.sin(theta / 2.0) / theta  # (1 - cos t) / t^2 = 2 sin^2(t/2) / t^2, no cancellation
    b = torch.where(small, 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0, 2.0 * half_sin * half_sin)
    return a, b, small


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: ``R = I + sin(t)/t [w]_x + (1 - cos t)/t^2 [w]_x^2`` with ``t = |w|``.

    Args:
        axis_angle: ``[*, 3]`` rotation vectors ``w`` (radians x unit axis), any magnitude.

    Returns:
        ``[*, 3, 3]`` rotation matrices, same dtype/device. Exact and differentiable at ``w = 0`` (Taylor series).

    Example:
        >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
        >>> torch.round(R, decimals=6) + 0.0
        tensor([[ 0., -1.,  0.],
                [ 1.,  0.,  0.],
                [ 0.,  0.,  1.]])
    """
    check_tail(axis_angle, (3,), "axis_angle_to_matrix", "axis_angle", "[*, 3]")
    a, b, _ = _sinc_and_versine((axis_angle * axis_angle).sum(-1))
    K = hat(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation matrix of a quaternion ``(w, x, y, z)``; the input is normalised first (any non-zero norm).

    Args:
        quaternion: ``[*, 4]`` scalar-first quaternions; ``q`` and ``-q`` give the same R.

    Returns:
        ``[*, 3, 3]`` rotation matrices, same dtype/device.

    Example:
        >>> s = math.sqrt(0.5)
        >>> torch.round(quaternion_to_matrix(torch.tensor([s, s, 0.0, 0.0])), decimals=6) + 0.0
        tensor([[ 1.,  0.,  0.],
                [ 0.,  0., -1.],
                [ 0.,  1.,  0.]])
    """
    check_tail(quaternion, (4,), "quaternion_to_matrix", "quaternion", "[*, 4]")
    q = quaternion / quaternion.norm(dim=-1, keepdim=True).clamp_min(unit_eps(quaternion.dtype))
    w, x, y, z = q.unbind(-1)
    two = 2.0
    m = [
        1 - two * (y * y + z * z), two * (x * y - w * z), two * (x * z + w * y),
        two * (x * y + w * z), 1 - two * (x * x + z * z), two * (y * z - w * x),
        two * (x * z - w * y), two * (y * z + w * x), 1 - two * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a rotation matrix (Shepperd's method, robust at pi).

    For each matrix the best-conditioned of the four classic formulas is used (the one dividing by the largest of
    ``|w|, |x|, |y|, |z|``), so 180-degree rotations are exact. When ``w == 0`` exactly the sign is the one that
    formula gives.

    Args:
        R: ``[*, 3, 3]`` rotation matrices.

    Returns:
        ``[*, 4]`` unit quaternions, same dtype/device.

    Example:
        >>> matrix_to_quaternion(torch.diag(torch.tensor([1.0, -1.0, -1.0])))  # 180 deg about x
        tensor([0., 1., 0., 0.])
    """
    check_tail(R, (3, 3), "matrix_to_quaternion", "R", "[*, 3, 3]")
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = R.reshape(*R.shape[:-2], 9).unbind(-1)
    # 4 * component^2 for w, x, y, z.
    sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    best = sq.argmax(dim=-1, keepdim=True)
    # Each candidate row is 4 * c * q, where c is the component it is built around.
    cand = torch.stack(
        [
            torch.stack([sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )  # [*, 4, 4]
    denom = 2.0 * sq.clamp_min(0.25).sqrt()  # the chosen sq is >= 1, so this clamp never binds on it
    q = (cand / denom[..., None]).gather(-2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation vector ``angle * axis`` (angle in ``[0, pi]``) of a rotation matrix; robust at 0 and near pi.

    Computed through :func:`matrix_to_quaternion`: ``angle = 2 atan2(|v|, w)``, ``axis = v / |v|``. At exactly
    pi the sign of the axis is arbitrary (both are correct).

    Args:
        R: ``[*, 3, 3]`` rotation matrices.

    Returns:
        ``[*, 3]`` rotation vectors in radians, same dtype/device.

    Example:
        >>> matrix_to_axis_angle(torch.diag(torch.tensor([-1.0, -1.0, 1.0])))
        tensor([0.0000, 0.0000, 3.1416])
    """
    check_tail(R, (3, 3), "matrix_to_axis_angle", "R", "[*, 3, 3]")
    q = matrix_to_quaternion(R)
    w, v = q[..., :1], q[..., 1:]
    n_sq = (v * v).sum(-1, keepdim=True)
    small = n_sq < _SMALL_ANGLE_SQ
    n = torch.where(small, torch.ones_like(n_sq), n_sq).sqrt()
    # angle / |v| = 2 atan2(n, w) / n; near 0 (w ~ 1): 2 / w * (1 - n^2 / (3 w^2)).
    ratio = torch.where(small, 2.0 / w * (1.0 - n_sq / (3.0 * w * w)), 2.0 * torch.atan2(n, w) / n)
    return v * ratio


def rotation_6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Rotation from the 6D representation of Zhou et al. (2019) by Gram-Schmidt on two columns.

    ``a1 = rot6d[..., 0:3]`` and ``a2 = rot6d[..., 3:6]`` are the (unnormalised) first and second *columns*;
    ``b1 = a1 / |a1|``, ``b2 = normalise(a2 - (b1 . a2) b1)``, ``b3 = b1 x b2``, ``R = [b1 b2 b3]`` (columns).
    Degenerate input (``a1 = 0`` or ``a2 || a1``) gives a finite but arbitrary-looking matrix (norms are clamped).

    Args:
        rot6d: ``[*, 6]`` as ``(r11, r21, r31, r12, r22, r32)``.

    Returns:
        ``[*, 3, 3]`` rotation matrices, same dtype/device.

    Example:
        >>> rotation_6d_to_matrix(torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_tail(rot6d, (6,), "rotation_6d_to_matrix", "rot6d", "[*, 6]")
    eps = unit_eps(rot6d.dtype)
    a1, a2 = rot6d[..., 0:3], rot6d[..., 3:6]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(eps)
    u2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = u2 / u2.norm(dim=-1, keepdim=True).clamp_min(eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """The first two columns of ``R``: ``[*, 6] = (r11, r21, r31, r12, r22, r32)`` (inverse of
    :func:`rotation_6d_to_matrix` on rotations).

    Example:
        >>> matrix_to_rotation_6d(torch.eye(3))
        tensor([1., 0., 0., 0., 1., 0.])
    """
    check_tail(R, (3, 3), "matrix_to_rotation_6d", "R", "[*, 3, 3]")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def _axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    o, i = torch.zeros_like(angle), torch.ones_like(angle)
    if axis == "x":
        m = [i, o, o, o, c, -s, o, s, c]
    elif axis == "y":
        m = [c, o, s, o, i, o, -s, o, c]
    else:
        m = [c, -s, o, s, c, o, o, o, i]
    return torch.stack(m, dim=-1).reshape(*angle.shape, 3, 3)


def euler_to_matrix(angles: torch.Tensor, convention: str = "xyz") -> torch.Tensor:
    """Rotation from three *extrinsic* (fixed-axis) angles.

    For ``convention = "pqr"`` and ``angles = (a, b, c)`` the rotation is ``R = Rr(c) @ Rq(b) @ Rp(a)``: first
    about the fixed ``p`` axis by ``a``, then about the fixed ``q`` axis by ``b``, then about the fixed ``r`` axis
    by ``c``. The default ``"xyz"`` gives ``R = Rz(c) @ Ry(b) @ Rx(a)`` -- DeepIM's perturbation protocol
    ``R_delta`` (equal to intrinsic ``"ZYX"`` with angles ``(c, b, a)``). ``Rx(a) = [[1,0,0],[0,cos a,-sin a],
    [0,sin a,cos a]]`` (right-handed, counter-clockwise looking down the axis), likewise for y and z.

    Args:
        angles: ``[*, 3]`` radians, in the order of ``convention``.
        convention: three letters from ``x``, ``y``, ``z``, consecutive letters different (e.g. ``"xyz"``, ``"zyx"``,
            ``"zxz"``).

    Returns:
        ``[*, 3, 3]`` rotation matrices, same dtype/device.

    Raises:
        InvalidInputError: ``convention`` is not such a string.

    Example:
        >>> R = euler_to_matrix(torch.tensor([math.pi / 2, 0.0, math.pi / 2]))  # Rz(90) @ Rx(90)
        >>> torch.round(R, decimals=6) + 0.0
        tensor([[0., 0., 1.],
                [1., 0., 0.],
                [0., 1., 0.]])
    """
    check_tail(angles, (3,), "euler_to_matrix", "angles", "[*, 3]")
    if (
        not isinstance(convention, str)
        or len(convention) != 3
        or any(ch not in "xyz" for ch in convention)
        or convention[0] == convention[1]
        or convention[1] == convention[2]
    ):
        raise InvalidInputError(
            f"euler_to_matrix: convention must be 3 letters from 'x', 'y', 'z' with no letter repeated "
            f"consecutively (e.g. 'xyz', 'zyx', 'zxz'), got {convention!r}"
        )
    R = _axis_rotation(convention[0], angles[..., 0])
    R = _axis_rotation(convention[1], angles[..., 1]) @ R
    return _axis_rotation(convention[2], angles[..., 2]) @ R


def rotation_angle(R: torch.Tensor) -> torch.Tensor:
    """Angle in ``[0, pi]`` radians of a rotation: ``atan2(|vee(R - R^T)|, trace(R) - 1)``.

    Accurate at 0 and pi (unlike ``arccos((trace - 1) / 2)``). Its gradient is undefined at exactly 0.
    For the angle between two rotations use ``rotation_angle(R_a @ R_b.transpose(-1, -2))``.

    Args:
        R: ``[*, 3, 3]`` rotation matrices.

    Returns:
        ``[*]`` radians, same dtype/device.

    Example:
        >>> float(rotation_angle(torch.diag(torch.tensor([1.0, -1.0, -1.0]))))  # doctest: +ELLIPSIS
        3.14159...
    """
    check_tail(R, (3, 3), "rotation_angle", "R", "[*, 3, 3]")
    skew = torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    trace = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    return torch.atan2(skew.norm(dim=-1), trace - 1.0)


def orthonormalize(R: torch.Tensor) -> torch.Tensor:
    """Nearest rotation (Frobenius norm) to each 3x3 matrix: ``U diag(1, 1, det(U V^T)) V^T`` from the SVD.

    Args:
        R: ``[*, 3, 3]`` approximately-rotation matrices (e.g. after float32 drift or a regression head).

    Returns:
        ``[*, 3, 3]`` proper rotations (det +1), same dtype/device.

    Example:
        >>> orthonormalize(torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -0.5]]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    check_tail(R, (3, 3), "orthonormalize", "R", "[*, 3, 3]")
    U, _, Vh = torch.linalg.svd(R)
    det = torch.linalg.det(U @ Vh)
    ones = torch.ones_like(det)
    D = torch.diag_embed(torch.stack([ones, ones, torch.where(det < 0, -ones, ones)], dim=-1))
    return U @ D @ Vh


def random_rotations(
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` rotations uniformly distributed on SO(3) (normalised Gaussian quaternions).

    The random numbers are drawn on the CPU from ``generator`` (so results do not depend on the device) and then
    moved to ``device``.

    Returns:
        ``[n, 3, 3]`` of ``dtype`` on ``device``.

    Example:
        >>> R = random_rotations(2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> R.shape, bool(torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(2, 3, 3)))
        (torch.Size([2, 3, 3]), True)
    """
    if not isinstance(n, int) or n < 0:
        raise InvalidInputError(f"random_rotations: n must be an int >= 0, got {n!r}")
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return quaternion_to_matrix(q).to(device=device, dtype=dtype)
