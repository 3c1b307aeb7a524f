"""A pose from DeepIM's flow head: 2D-3D correspondences and a robust Gauss-Newton fit (PFA-style).

The flow head (:mod:`iterpose.refiners.deepim.aux_heads`) predicts, per stride-4 cell of the zoomed crop, where the
rendered object's pixels lie in the observed crop. Each cell covered by the render gives one correspondence: the
mean surface point of its pixels (known from the render at the current pose) and the mean pixel position moved by
the predicted flow. Fitting the pose to all of them at once measures depth from how the correspondences spread,
where the regression heads give one number per crop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iterpose.geometry.projection import project_points, projection_jacobian_se3
from iterpose.refiners.deepim.aux_heads import AUX_STRIDE
from iterpose.refiners.lm import apply_step, damped_step

__all__ = ["flow_correspondences", "fit_pose_to_flow"]

_MIN_COVER = 0.5
"""A cell gives a correspondence when at least this fraction of its pixels is on the render."""
_MIN_POINTS = 8
"""Fewer usable correspondences than this: the pose is left as it was."""


def flow_correspondences(X_cam: torch.Tensor, rendered_mask: torch.Tensor, maps: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Correspondences of each stride-4 cell.

    Args:
        X_cam: ``[N, S, S, 3]`` camera-frame surface points of the render at the current pose (metres).
        rendered_mask: ``[N, S, S]`` bool. maps: ``[N, 3, S/4, S/4]`` the aux heads' output (flow in crop pixels,
            observed-mask logit).

    Returns:
        ``(points [N, P, 3] camera frame at the current pose, targets [N, P, 2] crop pixels, weights [N, P])``,
        ``P = (S/4)^2``; weight 1 where the cell is covered by the render and the mask head says the target
        pixel shows the object, else 0.
    """
    S = X_cam.shape[1]
    dev = X_cam.device
    m = rendered_mask.float()[:, None]
    cover = F.avg_pool2d(m, AUX_STRIDE)  # [N, 1, G, G]
    X = F.avg_pool2d(X_cam.permute(0, 3, 1, 2) * m, AUX_STRIDE) / cover.clamp_min(1e-6)
    jj, ii = torch.meshgrid(torch.arange(S, device=dev, dtype=X_cam.dtype),
                            torch.arange(S, device=dev, dtype=X_cam.dtype), indexing="xy")
    pix = F.avg_pool2d(torch.stack([jj, ii])[None] * m, AUX_STRIDE) / cover.clamp_min(1e-6)
    target = pix + maps[:, :2].to(X_cam.dtype)
    grid = (2 * target.permute(0, 2, 3, 1) + 1) / S - 1  # the G x G map covers the crop's S x S pixels
    logit_at_target = F.grid_sample(maps[:, 2:3].to(X_cam.dtype), grid, mode="bilinear", padding_mode="border",
                                    align_corners=False)
    w = ((cover >= _MIN_COVER) & (logit_at_target > 0)).to(X_cam.dtype)
    return (X.flatten(2).transpose(1, 2), target.flatten(2).transpose(1, 2), w.flatten(1))


def fit_pose_to_flow(T_co: torch.Tensor, X_cam: torch.Tensor, K_crop: torch.Tensor, rendered_mask: torch.Tensor,
                     maps: torch.Tensor, iterations: int = 10, huber_px: float = 2.0) -> torch.Tensor:
    """``[N, 4, 4]`` poses fitted to the flow head's correspondences, from ``T_co [N, 4, 4]`` (the pose the crop
    was rendered at; ``X_cam``, ``rendered_mask`` from that render, ``K_crop [N, 3, 3]``, ``maps`` as
    :func:`flow_correspondences`). Gauss-Newton with Huber weights (``huber_px`` crop pixels) on the
    reprojection error; objects with fewer than 8 usable correspondences keep ``T_co``."""
    T0 = T_co.detach().double()
    X0, uv, w = (x.double() for x in flow_correspondences(X_cam.detach(), rendered_mask, maps.detach()))
    K = K_crop.double()
    X_obj = (X0 - T0[:, None, :3, 3]) @ T0[:, :3, :3]  # object frame: R^T (X - t)
    X_obj = torch.where(w[..., None] > 0, X_obj, 0.0)  # unused cells at the object's origin: in front, finite
    T = T0.clone()
    for _ in range(iterations):
        Xc = X_obj @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
        r = project_points(K, Xc) - uv  # [N, P, 2]
        e = r.norm(dim=2)
        rw = w * torch.where(e <= huber_px, torch.ones_like(e), huber_px / e.clamp_min(1e-12))
        J = projection_jacobian_se3(K, Xc)  # [N, P, 2, 6]
        H = torch.einsum("np,npai,npaj->nij", rw, J, J)
        g = torch.einsum("np,npai,npa->ni", rw, J, r)
        T = apply_step(T, damped_step(H, g, torch.full((T.shape[0],), 1e-4, dtype=T.dtype)))
    ok = (w.sum(1) >= _MIN_POINTS) & torch.isfinite(T).all(dim=(1, 2)) & (T[:, 2, 3] > 0)
    return torch.where(ok[:, None, None], T, T0).to(T_co.dtype)
