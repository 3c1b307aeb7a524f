"""DeepIM's zoom-in: a square crop centred on the projected object centre of the current estimate, large enough
for the rendered object and the observed box, resampled to ``S x S`` (the crop conventions of
:mod:`iterpose.refiners.crops`: a box ``(x0, y0, w, h)`` covers ``u in [x0 - 0.5, x0 + w - 0.5]``).

Boxes of projected objects are taken from the render mesh's vertices (the box of the rendered silhouette, without
rendering). Boxes ``xyxy`` are ``(u_min, v_min, u_max, v_max)`` in full-image pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["projected_boxes", "zoom_boxes", "box_masks", "MIN_CROP_PX"]

MIN_CROP_PX = 8.0
"""Smallest crop side in image pixels (an object projecting to a point still gets a crop)."""


def projected_boxes(vertices: Sequence[torch.Tensor], T_co: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """``[N, 4]`` xyxy boxes of the projected ``vertices[k] [V_k, 3]`` (object frame, metres) posed at
    ``T_co [N, 4, 4]`` and seen by ``K [N, 3, 3]``. Points at depth below 1 mm are clamped to it."""
    N = T_co.shape[0]
    out = torch.empty(N, 4, dtype=torch.float32, device=T_co.device)
    groups: dict[int, list[int]] = {}
    for k, v in enumerate(vertices):
        groups.setdefault(id(v), []).append(k)
    T = T_co.detach().float()
    Kf = K.detach().float()
    for idx in groups.values():
        sel = torch.tensor(idx, device=T.device)
        v = vertices[idx[0]].to(T.device, torch.float32)
        X = v @ T[sel, :3, :3].transpose(1, 2) + T[sel, None, :3, 3]  # [n, V, 3]
        z = X[..., 2].clamp_min(1e-3)
        Ks = Kf[sel]
        u = Ks[:, 0, 0, None] * X[..., 0] / z + Ks[:, 0, 1, None] * X[..., 1] / z + Ks[:, 0, 2, None]
        w = Ks[:, 1, 1, None] * X[..., 1] / z + Ks[:, 1, 2, None]
        out[sel] = torch.stack([u.amin(1), w.amin(1), u.amax(1), w.amax(1)], dim=1)
    return out


def zoom_boxes(K: torch.Tensor, T_co: torch.Tensor, rendered_xyxy: torch.Tensor, observed_xyxy: torch.Tensor,
               margin: float) -> torch.Tensor:
    """DeepIM's crop: ``[N, 4]`` square ``(x0, y0, w, h)`` centred on the projection of the object origin under
    ``T_co``, with half side ``margin`` x the largest distance from that centre to an edge of either box
    (at least :data:`MIN_CROP_PX`)."""
    t = T_co[:, :3, 3].detach().float()
    Kf = K.detach().float()
    z = t[:, 2].clamp_min(1e-3)
    uc = Kf[:, 0, 0] * t[:, 0] / z + Kf[:, 0, 1] * t[:, 1] / z + Kf[:, 0, 2]
    vc = Kf[:, 1, 1] * t[:, 1] / z + Kf[:, 1, 2]
    both = torch.stack([rendered_xyxy, observed_xyxy]).float()  # [2, N, 4]
    half = torch.stack([uc - both[..., 0], both[..., 2] - uc, vc - both[..., 1], both[..., 3] - vc]).amax(dim=(0, 1))
    side = (2.0 * margin * half).clamp_min(MIN_CROP_PX)
    return torch.stack([uc - side / 2 + 0.5, vc - side / 2 + 0.5, side, side], dim=1)


def box_masks(xyxy: torch.Tensor, crop_boxes: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, S, S]`` bool: which pixel centres of each ``S x S`` crop (``crop_boxes [N, 4]``) fall inside the
    image-space box ``xyxy [N, 4]`` (DeepIM's observed mask at test time)."""
    dev = crop_boxes.device
    s = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size
    b = crop_boxes.float()
    u = b[:, 0:1] - 0.5 + s[None] * b[:, 2:3]  # [N, S]
    v = b[:, 1:2] - 0.5 + s[None] * b[:, 3:4]
    xy = xyxy.to(dev).float()
    in_u = (u >= xy[:, 0:1]) & (u <= xy[:, 2:3])
    in_v = (v >= xy[:, 1:2]) & (v <= xy[:, 3:4])
    return in_v[:, :, None] & in_u[:, None, :]
