"""Zoomed square crops around objects (DeepIM / RePOSE style) and sampling of the observed image into them.

A crop is a continuous box ``(x0, y0, w, h)`` of full-image pixels (convention of
:func:`iterpose.geometry.zoom_K`: it covers ``u in [x0 - 0.5, x0 + w - 0.5]``) resampled to ``S x S`` pixels.
``K_crop = zoom_K(K, box, (S, S))`` projects into the crop, and :func:`sample_crops` samples the image with
``grid_sample(align_corners=False)``, whose half-pixel convention is the same: crop pixel ``(i, j)`` shows
full-image point ``u = x0 - 0.5 + (j + 0.5) w / S``, ``v = y0 - 0.5 + (i + 0.5) h / S``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iterpose.geometry import zoom_K

__all__ = ["sphere_crop_boxes", "crop_intrinsics", "sample_crops"]


def sphere_crop_boxes(K: torch.Tensor, T_co: torch.Tensor, radius_m: torch.Tensor, margin: float) -> torch.Tensor:
    """Square boxes around the projected bounding spheres.

    Args:
        K: ``[N, 3, 3]`` full-image intrinsics (pixels). T_co: ``[N, 4, 4]`` poses (metres), centre ``z > 0``.
        radius_m: ``[N]`` bounding-sphere radii (metres). margin: side = ``2 margin r max(fx, fy) / z``.

    Returns:
        ``[N, 4]`` float ``(x0, y0, w, h)`` with ``w == h``, centred on the projected object origin.
    """
    t = T_co[:, :3, 3].to(K.dtype)
    z = t[:, 2]
    uc = K[:, 0, 0] * t[:, 0] / z + K[:, 0, 2]
    vc = K[:, 1, 1] * t[:, 1] / z + K[:, 1, 2]
    side = 2.0 * margin * radius_m.to(K) * torch.maximum(K[:, 0, 0], K[:, 1, 1]) / z
    return torch.stack([uc - side / 2 + 0.5, vc - side / 2 + 0.5, side, side], dim=1)


def crop_intrinsics(K: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, 3, 3]`` intrinsics of the ``size x size`` resampled crops ``boxes [N, 4]`` of images with ``K``."""
    return zoom_K(K, boxes.to(K), (size, size))


def sample_crops(images: torch.Tensor, image_index: torch.Tensor, boxes: torch.Tensor, size: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear crops of the images.

    Args:
        images: ``[B, C, H, W]`` float. image_index: ``[N]`` int64 image of each crop.
        boxes: ``[N, 4]`` ``(x0, y0, w, h)`` in full-image pixels. size: output side S.

    Returns:
        ``(crops [N, C, S, S], inside [N, S, S] bool)``: the samples (0 outside the image) and whether each crop
        pixel centre lies inside the image (``u in [-0.5, W - 0.5]``, ``v`` likewise).
    """
    B, C, H, W = images.shape
    dev = images.device
    boxes = boxes.to(dev, images.dtype)
    idx = image_index.to(dev)
    s = (torch.arange(size, device=dev, dtype=images.dtype) + 0.5) / size  # [S]
    u = boxes[:, 0:1] - 0.5 + s[None] * boxes[:, 2:3]  # [N, S]
    v = boxes[:, 1:2] - 0.5 + s[None] * boxes[:, 3:4]
    gx = (2 * u + 1) / W - 1
    gy = (2 * v + 1) / H - 1
    grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=-1)
    crops = F.grid_sample(images[idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = ((u >= -0.5) & (u <= W - 0.5))[:, None, :] & ((v >= -0.5) & (v <= H - 0.5))[:, :, None]
    return crops, inside
