"""Pinhole projection in pixels (OpenCV convention) and its Jacobians w.r.t. a left SE(3) perturbation.

Conventions:
    - Camera frame: x right, y down, z forward (metres). ``K [*, 3, 3]`` in pixels; the centre of pixel
      (row i, col j) is at ``(u, v) = (j, i)``.
    - ``uv = (K X)[:2] / (K X)[2]``; for the usual ``K`` (bottom row ``(0, 0, 1)``) the divisor is the depth ``z``.
      Points with ``z <= 0`` are not checked here (this is a hot path): the caller masks them.
    - Jacobians are taken at ``xi = 0`` for ``X' = se3_exp(xi) X = X + v + w x X + O(|xi|^2)``, twist
      ``xi = (v, w)`` translation first: columns 0..2 are d/dv (per metre), 3..5 d/dw (per radian).
"""

from __future__ import annotations

import torch

from iterpose.errors import ShapeError
from iterpose.geometry._checks import check_tail
from iterpose.geometry.rotations import hat

__all__ = ["project_points", "projection_jacobian_se3", "depth_jacobian_se3", "point_jacobian_se3"]


def _check_points(X_cam: torch.Tensor, fn: str) -> None:
    check_tail(X_cam, (3,), fn, "X_cam", "[*, P, 3]")
    if X_cam.ndim < 2:
        raise ShapeError(f"{fn}: X_cam must have shape [*, P, 3] (a set of points), got {list(X_cam.shape)}")


def project_points(K: torch.Tensor, X_cam: torch.Tensor) -> torch.Tensor:
    """Project camera-frame points to pixels.

    Args:
        K: ``[*, 3, 3]`` intrinsics (pixels); leading dims broadcast with ``X_cam``'s.
        X_cam: ``[*, P, 3]`` points in the camera frame (metres), ``z > 0`` for meaningful output.

    Returns:
        ``uv [*, P, 2]`` pixel coordinates ``(u = column, v = row)``, dtype/device of the inputs.

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
        >>> project_points(K, torch.tensor([[0.1, -0.2, 2.0]]))
        tensor([[345., 190.]])
    """
    check_tail(K, (3, 3), "project_points", "K", "[*, 3, 3]")
    _check_points(X_cam, "project_points")
    p = X_cam @ K.transpose(-1, -2)
    return p[..., :2] / p[..., 2:3]


def point_jacobian_se3(X_cam: torch.Tensor) -> torch.Tensor:
    """``dX'/dxi`` at ``xi = 0`` for ``X' = se3_exp(xi) X``: ``[I | -[X]_x]``.

    Args:
        X_cam: ``[*, P, 3]`` points (metres).

    Returns:
        ``[*, P, 3, 6]``, same dtype/device.
    """
    _check_points(X_cam, "point_jacobian_se3")
    eye = torch.eye(3, dtype=X_cam.dtype, device=X_cam.device).expand(*X_cam.shape[:-1], 3, 3)
    return torch.cat([eye, -hat(X_cam)], dim=-1)


def projection_jacobian_se3(K: torch.Tensor, X_cam: torch.Tensor) -> torch.Tensor:
    """``d uv / d xi`` at ``xi = 0`` for the left perturbation ``X' = se3_exp(xi) X_cam``.

    With ``p = K X``: ``d uv/d p = [[1/p3, 0, -p1/p3^2], [0, 1/p3, -p2/p3^2]]``, ``dp/dX = K`` and
    ``dX/dxi = [I | -[X]_x]``. For ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` and ``X = (x, y, z)`` this is the
    familiar ``[[fx/z, 0, -fx x/z^2, -fx x y/z^2, fx (1 + x^2/z^2), -fx y/z], [0, fy/z, -fy y/z^2,
    -fy (1 + y^2/z^2), fy x y/z^2, fy x/z]]``.

    Args:
        K: ``[*, 3, 3]`` intrinsics (pixels); leading dims broadcast with ``X_cam``'s.
        X_cam: ``[*, P, 3]`` camera-frame points (metres), ``z > 0``.

    Returns:
        ``[*, P, 2, 6]``: pixels per metre (columns 0..2, w.r.t. ``v``) and pixels per radian (3..5, ``w``).

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
        >>> projection_jacobian_se3(K, torch.tensor([[0.0, 0.0, 2.0]]))[0] + 0.0
        tensor([[ 250.,    0.,    0.,    0.,  500.,    0.],
                [   0.,  250.,    0., -500.,    0.,    0.]])
    """
    check_tail(K, (3, 3), "projection_jacobian_se3", "K", "[*, 3, 3]")
    _check_points(X_cam, "projection_jacobian_se3")
    p = X_cam @ K.transpose(-1, -2)  # [*, P, 3]
    inv_z = (1.0 / p[..., 2])[..., None, None]  # [*, P, 1, 1]
    uv = (p[..., :2] * inv_z[..., 0])[..., None]  # [*, P, 2, 1]
    # rows of d uv / d X = (K[:2] - uv K[2]) / p3, elementwise (much faster than tiny batched matmuls)
    Kb = K[..., None, :, :]
    d_uv_d_X = (Kb[..., :2, :] - uv * Kb[..., 2:3, :]) * inv_z  # [*, P, 2, 3]
    # [I | -[X]_x]: the rotation block of row a is -a^T [X]_x = X x a
    d_uv_d_w = torch.linalg.cross(X_cam[..., None, :].expand_as(d_uv_d_X), d_uv_d_X, dim=-1)
    return torch.cat([d_uv_d_X, d_uv_d_w], dim=-1)


def depth_jacobian_se3(X_cam: torch.Tensor) -> torch.Tensor:
    """``d z / d xi`` at ``xi = 0`` for ``X' = se3_exp(xi) X_cam``: ``[0, 0, 1, y, -x, 0]``.

    Args:
        X_cam: ``[*, P, 3]`` camera-frame points (metres).

    Returns:
        ``[*, P, 1, 6]``: metres per metre (columns 0..2) and metres per radian (3..5).

    Example:
        >>> depth_jacobian_se3(torch.tensor([[1.0, 2.0, 3.0]])) + 0.0
        tensor([[[ 0.,  0.,  1.,  2., -1.,  0.]]])
    """
    _check_points(X_cam, "depth_jacobian_se3")
    return point_jacobian_se3(X_cam)[..., 2:3, :]
