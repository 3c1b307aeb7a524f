"""Rigid transforms ``T [*, 4, 4] = [[R, t], [0, 1]]`` and the SE(3) exponential / logarithm.

Conventions:
    - ``T_a_b`` maps coordinates in frame ``b`` to frame ``a``: ``x_a = R x_b + t`` (e.g. ``T_co``: object to
      camera). Composition ``T_a_c = T_a_b @ T_b_c``.
    - Twists ``xi [*, 6] = (v, w)``: translation part ``v`` (metres) FIRST, then rotation ``w`` (radians).
    - ``se3_exp(xi) = [[exp(w), V(w) v], [0, 1]]`` with ``V = I + (1 - cos t)/t^2 [w]_x + (t - sin t)/t^3 [w]_x^2``,
      ``t = |w|`` (exact, not a first-order approximation; Taylor series near ``t = 0``).
    - Left perturbation: ``T_new = se3_exp(xi) @ T`` (the twist is expressed in the output frame, e.g. the camera
      frame for ``T_co``). :func:`iterpose.geometry.projection.projection_jacobian_se3` differentiates that.
"""

from __future__ import annotations

import torch

from iterpose.errors import ShapeError
from iterpose.geometry._checks import check_tail
from iterpose.geometry.rotations import _sinc_and_versine, hat, matrix_to_axis_angle

__all__ = ["make_T", "se3_compose", "se3_inverse", "se3_exp", "se3_log", "transform_points"]

# Squared angle (rad^2) under which V's third coefficient and V^-1's use their Taylor series (see _v_coeffs).
_SERIES_ANGLE_SQ = 1e-2


def make_T(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Assemble ``[*, 4, 4]`` transforms from rotations ``R [*, 3, 3]`` and translations ``t [*, 3]``.

    Leading dims of ``R`` and ``t`` broadcast; the result has ``R``'s dtype (``t`` is cast) and device.

    Example:
        >>> make_T(torch.eye(3), torch.tensor([1.0, 2.0, 3.0]))
        tensor([[1., 0., 0., 1.],
                [0., 1., 0., 2.],
                [0., 0., 1., 3.],
                [0., 0., 0., 1.]])
    """
    check_tail(R, (3, 3), "make_T", "R", "[*, 3, 3]")
    check_tail(t, (3,), "make_T", "t", "[*, 3]")
    t = t.to(R)
    batch = torch.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    top = torch.cat([R.expand(*batch, 3, 3), t.expand(*batch, 3)[..., None]], dim=-1)
    bottom = torch.zeros(*batch, 1, 4, dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def se3_compose(T_a_b: torch.Tensor, T_b_c: torch.Tensor) -> torch.Tensor:
    """``T_a_c = T_a_b @ T_b_c`` for ``[*, 4, 4]`` transforms (leading dims broadcast).

    Example:
        >>> T = make_T(torch.eye(3), torch.tensor([1.0, 0.0, 0.0]))
        >>> se3_compose(T, T)[:3, 3]
        tensor([2., 0., 0.])
    """
    check_tail(T_a_b, (4, 4), "se3_compose", "T_a_b", "[*, 4, 4]")
    check_tail(T_b_c, (4, 4), "se3_compose", "T_b_c", "[*, 4, 4]")
    return T_a_b @ T_b_c


def se3_inverse(T: torch.Tensor) -> torch.Tensor:
    """Inverse rigid transform ``[[R^T, -R^T t], [0, 1]]`` (uses the transpose, not a matrix inverse).

    Args:
        T: ``[*, 4, 4]`` rigid transforms, e.g. ``T_co``.

    Returns:
        ``[*, 4, 4]``, e.g. ``T_oc``; same dtype/device.

    Example:
        >>> T = make_T(torch.eye(3), torch.tensor([1.0, 2.0, 3.0]))
        >>> se3_inverse(T)[:3, 3]
        tensor([-1., -2., -3.])
    """
    check_tail(T, (4, 4), "se3_inverse", "T", "[*, 4, 4]")
    Rt = T[..., :3, :3].transpose(-1, -2)
    return make_T(Rt, -(Rt @ T[..., :3, 3:4])[..., 0])


def _v_coeffs(theta_sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``A = sin t/t``, ``B = (1 - cos t)/t^2``, ``C = (t - sin t)/t^3`` for ``theta_sq = t^2``, stable near 0."""
    a, b, _ = _sinc_and_versine(theta_sq)  # the same A, B as Rodrigues' formula in axis_angle_to_matrix
    series = theta_sq < _SERIES_ANGLE_SQ
    s2 = theta_sq
    # C has a cancellation in t - sin t: use 5 series terms below t^2 = 1e-2 (truncation < 2e-20).
    safe_c = torch.where(series, torch.ones_like(theta_sq), theta_sq)
    theta_c = safe_c.sqrt()
    c_series = 1.0 / 6.0 - s2 / 120.0 + s2**2 / 5040.0 - s2**3 / 362880.0 + s2**4 / 39916800.0
    c = torch.where(series, c_series, (theta_c - torch.sin(theta_c)) / (safe_c * theta_c))
    return a, b, c


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """Exact SE(3) exponential of twists ``xi = (v, w)`` (translation part first).

    Args:
        xi: ``[*, 6]``; ``v = xi[..., :3]`` in metres, ``w = xi[..., 3:]`` rotation vector in radians.

    Returns:
        ``[*, 4, 4]`` rigid transforms ``[[exp([w]_x), V v], [0, 1]]``, same dtype/device; differentiable
        everywhere including ``xi = 0``.

    Example:
        >>> T = se3_exp(torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]))  # pure translation
        >>> T[:3, 3]
        tensor([1., 0., 0.])
    """
    check_tail(xi, (6,), "se3_exp", "xi", "[*, 6]")
    v, w = xi[..., :3], xi[..., 3:]
    a, b, c = _v_coeffs((w * w).sum(-1))
    K = hat(w)
    K2 = K @ K
    eye = torch.eye(3, dtype=xi.dtype, device=xi.device)
    R = eye + a[..., None, None] * K + b[..., None, None] * K2
    V = eye + b[..., None, None] * K + c[..., None, None] * K2
    return make_T(R, (V @ v[..., None])[..., 0])


def se3_log(T: torch.Tensor) -> torch.Tensor:
    """SE(3) logarithm: the twist ``xi = (v, w)`` with ``se3_exp(xi) == T`` and rotation angle ``|w|`` in [0, pi].

    ``w = matrix_to_axis_angle(R)`` and ``v = V(w)^-1 t`` with
    ``V^-1 = I - [w]_x / 2 + (1/t^2 - cot(t/2) / (2 t)) [w]_x^2`` (series near 0; finite up to and at pi).

    Args:
        T: ``[*, 4, 4]`` rigid transforms.

    Returns:
        ``[*, 6]`` twists (metres, radians), same dtype/device.

    Example:
        >>> xi = torch.tensor([0.1, -0.2, 0.3, 0.4, 0.5, -0.6], dtype=torch.float64)
        >>> bool(torch.allclose(se3_log(se3_exp(xi)), xi))
        True
    """
    check_tail(T, (4, 4), "se3_log", "T", "[*, 4, 4]")
    w = matrix_to_axis_angle(T[..., :3, :3])
    theta_sq = (w * w).sum(-1)
    series = theta_sq < _SERIES_ANGLE_SQ
    safe = torch.where(series, torch.ones_like(theta_sq), theta_sq)
    theta = safe.sqrt()
    s2 = theta_sq
    d_series = 1.0 / 12.0 + s2 / 720.0 + s2**2 / 30240.0 + s2**3 / 1209600.0 + s2**4 / 47900160.0
    half = theta / 2.0
    d = torch.where(series, d_series, 1.0 / safe - torch.cos(half) / (2.0 * theta * torch.sin(half)))
    K = hat(w)
    eye = torch.eye(3, dtype=T.dtype, device=T.device)
    V_inv = eye - 0.5 * K + d[..., None, None] * (K @ K)
    v = (V_inv @ T[..., :3, 3:4])[..., 0]
    return torch.cat([v, w], dim=-1)


def transform_points(T: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Apply rigid transforms to point sets: ``R X + t``.

    Args:
        T: ``[*, 4, 4]`` transforms from frame ``b`` to frame ``a`` (e.g. ``T_co``).
        X: ``[*, P, 3]`` points in frame ``b`` (metres); leading dims broadcast with ``T``'s.

    Returns:
        ``[*, P, 3]`` points in frame ``a``; dtype/device of ``X`` and ``T`` (they must agree).

    Example:
        >>> T = make_T(torch.eye(3), torch.tensor([0.0, 0.0, 1.0]))
        >>> transform_points(T, torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([[1., 2., 4.]])
    """
    check_tail(T, (4, 4), "transform_points", "T", "[*, 4, 4]")
    check_tail(X, (3,), "transform_points", "X", "[*, P, 3]")
    if X.ndim < 2:
        raise ShapeError(f"transform_points: X must have shape [*, P, 3] (a set of points), got {list(X.shape)}")
    R = T[..., :3, :3]
    t = T[..., None, :3, 3]
    return X @ R.transpose(-1, -2) + t
