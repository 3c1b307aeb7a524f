"""Targets and losses of DeepIM's training-only flow and mask heads (:mod:`iterpose.refiners.deepim.aux_heads`).

For a crop rendered at the current pose ``T``, the flow target of a rendered pixel is where its surface point
projects into the same crop at the ground truth ``T_gt``, minus the pixel itself (crop pixels, rendered ->
observed). It counts only where that point lands on the object's visible mask in the observed image (occluders
and the image border take pixels out); points that the object itself hides at ``T_gt`` are not checked (small for
the few-degree updates DeepIM learns). The mask target is the object's visible mask sampled into the crop. Both are
averaged over the ``4 x 4`` crop pixels of each cell of the heads' stride-4 output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iterpose.geometry.projection import project_points
from iterpose.refiners.crops import sample_crops
from iterpose.refiners.deepim.aux_heads import AUX_STRIDE
from iterpose.refiners.deepim.model import ZoomedInputs

__all__ = ["AuxTargets", "aux_targets", "aux_losses"]

_MIN_VALID = 0.5
"""A cell's flow counts when at least this fraction of its pixels has a target."""


@dataclass(frozen=True, eq=False)
class AuxTargets:
    """Per cell of the stride-4 output (``G = S / 4``).

    Attributes:
        flow: ``[N, 2, G, G]`` mean flow of the cell's valid pixels (crop pixels). flow_valid: ``[N, G, G]`` bool.
        mask: ``[N, G, G]`` fraction of the cell's pixels on the object's visible mask (0..1).
    """

    flow: torch.Tensor
    flow_valid: torch.Tensor
    mask: torch.Tensor


def aux_targets(inputs: ZoomedInputs, T_src: torch.Tensor, T_gt: torch.Tensor, mask_visible: torch.Tensor
                ) -> AuxTargets:
    """The flow and mask targets of one iteration.

    Args:
        inputs: the iteration's crops (:class:`~iterpose.refiners.deepim.model.ZoomedInputs`: boxes, ``K_crop``,
            the render's ``X_cam`` and mask at ``T_src``).
        T_src: ``[N, 4, 4]`` the poses the crops were rendered at. T_gt: ``[N, 4, 4]`` ground truth.
        mask_visible: ``[N, H, W]`` bool visible pixels of each target in its image.
    """
    N, S = inputs.X_cam.shape[0], inputs.X_cam.shape[1]
    dev = inputs.X_cam.device
    vis, _ = sample_crops(mask_visible[:, None].float(), torch.arange(N, device=dev), inputs.boxes, S)  # [N,1,S,S]
    rel = T_gt.float() @ torch.linalg.inv(T_src.float())
    X_gt = inputs.X_cam @ rel[:, :3, :3].transpose(1, 2)[:, None] + rel[:, None, None, :3, 3]
    ahead = (X_gt[..., 2] > 0) & inputs.rendered_mask
    X_gt = torch.where(ahead[..., None], X_gt, X_gt.new_tensor([0.0, 0.0, 1.0]))  # no target there anyway
    uv_gt = project_points(inputs.K_crop.float(), X_gt.flatten(1, 2)).unflatten(1, (S, S))  # [N, S, S, 2]
    grid = (2 * uv_gt + 1) / S - 1
    lands = F.grid_sample(vis, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0] > 0.5
    valid = ahead & lands
    jj, ii = torch.meshgrid(torch.arange(S, device=dev, dtype=torch.float32),
                            torch.arange(S, device=dev, dtype=torch.float32), indexing="xy")
    flow = torch.where(valid[..., None], uv_gt - torch.stack([jj, ii], dim=-1), 0.0).permute(0, 3, 1, 2)
    v = F.avg_pool2d(valid[:, None].float(), AUX_STRIDE)
    flow = F.avg_pool2d(flow, AUX_STRIDE) / v.clamp_min(1e-6)
    return AuxTargets(flow=flow, flow_valid=v[:, 0] >= _MIN_VALID, mask=F.avg_pool2d(vis, AUX_STRIDE)[:, 0])


def aux_losses(maps: torch.Tensor, targets: AuxTargets) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(flow loss, mask loss, flow end-point error)`` of the heads' ``maps [N, 3, G, G]``.

    Flow: smooth L1 (1 px knee) summed over ``(du, dv)``, averaged over the valid cells (0 when there are none);
    end-point error: the mean ``|flow - target|`` over them (crop pixels, detached). Mask: binary cross-entropy
    of the logit against the cell's mask fraction, averaged over all cells.
    """
    valid = targets.flow_valid
    if bool(valid.any()):
        pred = maps[:, :2].permute(0, 2, 3, 1)[valid]
        tgt = targets.flow.permute(0, 2, 3, 1)[valid]
        flow_loss = F.smooth_l1_loss(pred, tgt, beta=1.0, reduction="none").sum(1).mean()
        epe = (pred.detach() - tgt).norm(dim=1).mean()
    else:
        flow_loss = maps[:, :2].sum() * 0.0
        epe = torch.zeros((), device=maps.device)
    mask_loss = F.binary_cross_entropy_with_logits(maps[:, 2], targets.mask)
    return flow_loss, mask_loss, epe
