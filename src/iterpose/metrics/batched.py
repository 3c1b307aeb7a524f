"""Batched torch pose errors in **metres** for refiners, demos and training (differentiable where it makes sense).

Poses are ``T [N, 4, 4]`` object-to-camera transforms (``T_co``, translation in metres), any float dtype and
device; outputs follow ``T_est`` (``points`` and ``K`` are moved to its device and dtype). ``points [N, P, 3]``
(or ``[P, 3]`` shared by all) are model points in metres, model frame. ``K [N, 3, 3]`` (or ``[3, 3]``) in pixels,
OpenCV convention. These are the same formulas as
:mod:`iterpose.metrics.pose_error` (ADD, ADI, Proj2D, re, te) but are *not* the BOP-exact evaluation path: use
:func:`iterpose.metrics.evaluate.evaluate` for benchmark numbers.
"""

from __future__ import annotations

import torch

from iterpose.errors import ShapeError

__all__ = ["add_m", "adi_m", "proj_px", "re_deg", "te_m"]


def _check_T(T: torch.Tensor, fn: str, name: str) -> None:
    if T.ndim != 3 or tuple(T.shape[1:]) != (4, 4):
        raise ShapeError(f"{fn}: {name} must be [N, 4, 4] T_co poses, got {list(T.shape)}")


def _points(points: torch.Tensor, n: int, fn: str) -> torch.Tensor:
    if points.ndim == 2:
        points = points.unsqueeze(0).expand(n, -1, -1)
    if points.ndim != 3 or points.shape[0] != n or points.shape[2] != 3:
        raise ShapeError(f"{fn}: points must be [N, P, 3] or [P, 3] metres with N = {n}, got {list(points.shape)}")
    return points


def _pose(T: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """``[N, P, 3]`` points posed by ``T``."""
    return pts @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]


def _pair(T_est, T_gt, points, fn):
    _check_T(T_est, fn, "T_est")
    _check_T(T_gt, fn, "T_gt")
    if T_est.shape[0] != T_gt.shape[0]:
        raise ShapeError(f"{fn}: T_est and T_gt must have the same N, got {T_est.shape[0]} and {T_gt.shape[0]}")
    return _points(points, T_est.shape[0], fn).to(T_est)  # T_est's dtype and device


def add_m(T_est: torch.Tensor, T_gt: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """ADD in metres: ``[N]`` mean distance between corresponding posed points."""
    pts = _pair(T_est, T_gt, points, "add_m")
    return (_pose(T_est, pts) - _pose(T_gt, pts)).norm(dim=-1).mean(dim=-1)


def adi_m(T_est: torch.Tensor, T_gt: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """ADI / ADD-S in metres: ``[N]`` mean over GT-posed points of the distance to the nearest estimate-posed point
    (the direction bop_toolkit uses). Brute force, memory ``O(N P^2)``: subsample large point sets."""
    pts = _pair(T_est, T_gt, points, "adi_m")
    return torch.cdist(_pose(T_gt, pts), _pose(T_est, pts)).min(dim=-1).values.mean(dim=-1)


def proj_px(T_est: torch.Tensor, T_gt: torch.Tensor, K: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Proj2D in pixels: ``[N]`` mean image distance between projections of corresponding points."""
    pts = _pair(T_est, T_gt, points, "proj_px")
    n = T_est.shape[0]
    K = K.to(T_est)  # T_est's dtype and device
    if K.ndim == 2:
        K = K.unsqueeze(0).expand(n, -1, -1)
    if tuple(K.shape) != (n, 3, 3):
        raise ShapeError(f"proj_px: K must be [N, 3, 3] or [3, 3] with N = {n}, got {list(K.shape)}")

    def project(T):
        x = _pose(T, pts) @ K.transpose(1, 2)
        return x[..., :2] / x[..., 2:3]

    return (project(T_est) - project(T_gt)).norm(dim=-1).mean(dim=-1)


def re_deg(T_est: torch.Tensor, T_gt: torch.Tensor) -> torch.Tensor:
    """Rotation error in degrees: ``[N]`` ``arccos((tr(R_e R_g^T) - 1) / 2)`` (transpose: inputs are assumed to be
    proper rotations here; the BOP path uses the inverse, see :func:`iterpose.metrics.pose_error.re`)."""
    _check_T(T_est, "re_deg", "T_est")
    _check_T(T_gt, "re_deg", "T_gt")
    R = T_est[:, :3, :3] @ T_gt[:, :3, :3].transpose(1, 2)
    cos = ((R.diagonal(dim1=1, dim2=2).sum(-1) - 1.0) * 0.5).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def te_m(T_est: torch.Tensor, T_gt: torch.Tensor) -> torch.Tensor:
    """Translation error in metres: ``[N]`` ``|t_gt - t_est|``."""
    _check_T(T_est, "te_m", "T_est")
    _check_T(T_gt, "te_m", "T_gt")
    return (T_gt[:, :3, 3] - T_est[:, :3, 3]).norm(dim=-1)
