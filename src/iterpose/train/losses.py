"""Training losses shared by the learned refiners (metres and object diameters)."""

from __future__ import annotations

import torch

__all__ = ["point_matching_error", "trace_pose_loss", "sample_model_points", "disentangled_update_loss"]


def sample_model_points(vertices: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``[count, 3]`` vertices drawn without replacement (all of them, repeated cyclically, when there are fewer)."""
    V = vertices.shape[0]
    idx = torch.randperm(V, generator=generator)
    if V < count:
        idx = idx.repeat(-(-count // V))
    return vertices[idx[:count]]


def point_matching_error(T_est: torch.Tensor, T_gt: torch.Tensor, points: torch.Tensor, symmetric: torch.Tensor
                         ) -> torch.Tensor:
    """``[N]`` ADD (mean distance between corresponding model points), or ADD-S for symmetric objects (for each
    GT-posed point the nearest estimated point, as bop_toolkit), in metres; differentiable w.r.t. ``T_est``.

    Args:
        T_est, T_gt: ``[N, 4, 4]`` poses (metres). points: ``[N, P, 3]`` model points (metres, model frame).
        symmetric: ``[N]`` bool, True where ADD-S is used.
    """
    est = points @ T_est[:, :3, :3].transpose(1, 2) + T_est[:, None, :3, 3]
    gt = points @ T_gt[:, :3, :3].transpose(1, 2) + T_gt[:, None, :3, 3]
    add = (est - gt).norm(dim=2).mean(dim=1)
    if not bool(symmetric.any()):
        return add
    s = symmetric.nonzero().flatten()
    adds = torch.cdist(gt[s], est[s]).min(dim=2).values.mean(dim=1)
    return add.index_put((s,), adds)


def trace_pose_loss(poses: list, T_gt: torch.Tensor, points: torch.Tensor, diameter: torch.Tensor,
                    symmetric: torch.Tensor, iteration_weight: float, max_rel_error: float
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Pose loss over an unrolled refinement: final error + ``iteration_weight`` x the mean of the intermediate
    ones, each the point-matching error in diameters, growing only logarithmically beyond ``max_rel_error`` (a
    diverged sample neither dominates the batch nor loses its gradient), averaged over objects.

    Returns ``(loss, [relative error [N] after each iteration, poses[0] included (detached, unsaturated)])``.
    """
    rel = [point_matching_error(T, T_gt, points, symmetric) / diameter for T in poses]
    errs = [_saturate(e, max_rel_error) for e in rel]
    loss = errs[-1].mean()
    if len(errs) > 2 and iteration_weight > 0:
        loss = loss + iteration_weight * torch.stack([e.mean() for e in errs[1:-1]]).mean()
    return loss, [e.detach() for e in rel]


def _saturate(err: torch.Tensor, knee: float) -> torch.Tensor:
    """``err`` up to ``knee``, then ``knee (1 + log(err / knee))``: continuous, with slope 1 at the knee."""
    return torch.where(err <= knee, err, knee * (1 + torch.log(err.clamp_min(knee) / knee)))


def disentangled_update_loss(T_src: torch.Tensor, R_delta: torch.Tensor, v: torch.Tensor, T_gt: torch.Tensor,
                             K: torch.Tensor, crop_boxes: torch.Tensor, points: torch.Tensor, diameter: torch.Tensor,
                             symmetric: torch.Tensor, max_rel_error: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepIM-style pose loss with CosyPose's disentanglement: the point-matching error (in diameters, saturated
    as :func:`trace_pose_loss`) of three poses, each taking one part of the predicted update (rotation, image-plane
    shift, depth) and the other parts from the exact update to ``T_gt``; their mean over parts and objects.

    Args:
        T_src: ``[N, 4, 4]`` input poses. R_delta, v: the predicted update (see
            :func:`iterpose.refiners.deepim.apply_update`). K: ``[N, 3, 3]``. crop_boxes: ``[N, 4]``.
        points, diameter, symmetric: as :func:`trace_pose_loss`.

    Returns:
        ``(loss, relative error [N] of the full predicted update, detached)``.
    """
    from iterpose.refiners.deepim.model import apply_update, update_target  # noqa: PLC0415

    R_t, v_t = update_target(T_src, T_gt, K, crop_boxes)
    parts = (
        apply_update(T_src, R_delta, v_t, K, crop_boxes),
        apply_update(T_src, R_t, torch.cat([v[:, :2], v_t[:, 2:]], dim=1), K, crop_boxes),
        apply_update(T_src, R_t, torch.cat([v_t[:, :2], v[:, 2:]], dim=1), K, crop_boxes),
    )
    errs = [_saturate(point_matching_error(T, T_gt, points, symmetric) / diameter, max_rel_error) for T in parts]
    loss = torch.stack(errs).mean()
    full = point_matching_error(apply_update(T_src, R_delta, v, K, crop_boxes), T_gt, points, symmetric) / diameter
    return loss, full.detach()
