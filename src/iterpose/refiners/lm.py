"""Levenberg-Marquardt on SE(3), batched over N objects, in pure torch (shared by the photometric refiners).

One iteration of a refiner: build the normal equations ``H [N, 6, 6]``, ``g [N, 6]`` of its cost at the current
poses, take the damped step ``xi = -(H + lambda diag(H) + eps I)^-1 g`` (:func:`damped_step`), apply it on the
left, ``T <- se3_exp(xi) @ T`` (twist ``(v, w)``: metres then radians, camera frame; the convention of
:func:`iterpose.geometry.projection_jacobian_se3`), evaluate the cost at the candidate and keep it only if the cost
went down (:func:`lm_accept`): then ``lambda /= down``, else the previous pose is kept and ``lambda *= up``.

:func:`damped_step` and :func:`apply_step` are differentiable (``torch.linalg.solve``, ``se3_exp``), so a learned
refiner can backpropagate through the steps; :func:`lm_accept` is a discrete choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import se3_exp

__all__ = ["LMSettings", "damped_step", "apply_step", "lm_accept", "step_too_large"]


@dataclass(frozen=True)
class LMSettings:
    """Damping schedule.

    Attributes:
        lambda_init: initial damping (relative to ``diag(H)``).
        lambda_up: factor on a rejected step. lambda_down: divisor on an accepted step.
        lambda_min, lambda_max: clamp of the damping.
        eps: absolute regulariser added to ``H``'s diagonal (keeps unobserved directions from exploding).
        max_step_rot_rad: a step rotating more than this is rejected (treated as a cost increase); 0.35 rad is
            20 degrees, twice the largest error RGB-LM recovers from (a basin of about 5-10 degrees, see
            :data:`iterpose.demo.DEMO_PERTURBATION`): a step that large is taken as a failed linearisation.
        max_step_trans_rel: a step translating more than this times the object diameter is rejected (a quarter
            of the object per iteration, for the same reason).
    """

    lambda_init: float = 1e-2
    lambda_up: float = 4.0
    lambda_down: float = 3.0
    lambda_min: float = 1e-6
    lambda_max: float = 1e6
    eps: float = 1e-6
    max_step_rot_rad: float = 0.35
    max_step_trans_rel: float = 0.25

    def __post_init__(self) -> None:
        if not (self.lambda_init > 0 and self.lambda_up > 1 and self.lambda_down > 1 and
                0 < self.lambda_min <= self.lambda_init <= self.lambda_max and self.eps >= 0 and
                self.max_step_rot_rad > 0 and self.max_step_trans_rel > 0):
            raise InvalidInputError(f"LMSettings: need lambda_min <= lambda_init <= lambda_max (all > 0), "
                                    f"lambda_up > 1, lambda_down > 1, eps >= 0 and positive step limits; got "
                                    f"{self}.")


def damped_step(H: torch.Tensor, g: torch.Tensor, lam: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Levenberg-Marquardt step ``xi = -(H + lam diag(H) + eps I)^-1 g``, batched.

    Args:
        H: ``[N, 6, 6]`` symmetric positive semi-definite (Gauss-Newton) matrices.
        g: ``[N, 6]`` gradients of the cost w.r.t. the twist at 0.
        lam: ``[N]`` damping per object (or a scalar).
        eps: absolute diagonal regulariser.

    Returns:
        ``[N, 6]`` twists ``(v, w)``; differentiable w.r.t. ``H`` and ``g``.
    """
    if H.dim() != 3 or H.shape[1:] != (6, 6) or g.shape != H.shape[:2]:
        raise ShapeError(f"damped_step: H must be [N, 6, 6] and g [N, 6], got {list(H.shape)} and {list(g.shape)}.")
    lam = torch.as_tensor(lam, dtype=H.dtype, device=H.device).expand(H.shape[0])
    diag = torch.diagonal(H, dim1=1, dim2=2)
    A = H + torch.diag_embed(lam[:, None] * diag + eps)
    return -torch.linalg.solve(A, g[..., None])[..., 0]


def apply_step(T_co: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """``se3_exp(xi) @ T_co``: ``[N, 4, 4]`` poses updated by ``[N, 6]`` twists (left, camera frame)."""
    return se3_exp(xi.to(T_co.dtype)) @ T_co


def step_too_large(xi: torch.Tensor, diameter_m: torch.Tensor, settings: LMSettings) -> torch.Tensor:
    """``[N]`` bool: steps whose rotation or translation exceeds the limits of ``settings`` (or non-finite)."""
    rot = xi[:, 3:].norm(dim=1)
    trans = xi[:, :3].norm(dim=1)
    return ~torch.isfinite(xi).all(dim=1) | (rot > settings.max_step_rot_rad) | (
        trans > settings.max_step_trans_rel * diameter_m.to(xi))


def lm_accept(cost_new: torch.Tensor, cost_old: torch.Tensor, lam: torch.Tensor, settings: LMSettings,
              allowed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept/reject candidates and adapt the damping.

    Args:
        cost_new: ``[N]`` cost at the candidate poses. cost_old: ``[N]`` cost at the current poses.
        lam: ``[N]`` current damping.
        settings: the schedule.
        allowed: optional ``[N]`` bool; False rejects the candidate regardless of its cost.

    Returns:
        ``(accept [N] bool, new lambda [N])``: accepted where ``cost_new < cost_old`` (finite) and allowed;
        ``lambda / lambda_down`` there, ``lambda * lambda_up`` elsewhere, clamped to ``[lambda_min, lambda_max]``.
    """
    accept = torch.isfinite(cost_new) & (cost_new < cost_old)
    if allowed is not None:
        accept &= allowed
    lam = torch.where(accept, lam / settings.lambda_down, lam * settings.lambda_up)
    return accept, lam.clamp(settings.lambda_min, settings.lambda_max)
