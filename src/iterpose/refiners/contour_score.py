"""A training-free score of how well a pose's outline lies on the image's edges (to rank pose hypotheses).

For a candidate pose, the object's silhouette is rendered into a crop of the image; at each pixel of its outline
the outline's normal (the gradient of the blurred silhouette) is compared with the image gradient's direction,
keeping the best ``|cos|`` within a ``(2 radius + 1)^2`` window (image pixels whose gradient is weaker than
``min_gradient`` count 0). The score is the mean over the outline, in 0..1: 1 when every outline pixel lies on an
image edge of the same orientation. This is LINE-2D's idea (Hinterstoisser et al., PAMI 2012: gradient
orientations spread over a small neighbourhood), chosen because it ignores colour, which the meshes often get
wrong, and needs no training. Occlusion lowers every candidate of an object alike, so the score ranks candidates
of one object in one image; it does not compare objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iterpose.refiners.photometric import image_gradients

__all__ = ["contour_alignment"]

_OUTLINE_MIN = 0.05
"""a pixel is on the outline where the blurred silhouette's gradient exceeds this (its maximum is about 0.2)."""


def contour_alignment(observed: torch.Tensor, masks: torch.Tensor, *, radius: int = 2, blur_sigma: float = 1.0,
                      min_gradient: float = 0.01) -> torch.Tensor:
    """Outline-to-edge alignment of H silhouettes with each of N crops (the crop's edges are computed once).

    Args:
        observed: ``[N, 3, S, S]`` RGB 0..1, the image crops.
        masks: ``[N, H, S, S]`` bool silhouettes rendered into them (H candidates per crop).
        radius: half side of the window searched for a matching image edge (crop pixels).
        blur_sigma: Gaussian blur (pixels) of the grey image and of the silhouette before their gradients.
        min_gradient: image gradients weaker than this (grey levels 0..1 per pixel) are not edges.

    Returns:
        ``[N, H]`` float32 in 0..1 (0 for an empty silhouette).
    """
    if masks.dim() != 4 or observed.dim() != 4 or observed.shape[0] != masks.shape[0] \
            or observed.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"contour_alignment: observed {tuple(observed.shape)} and masks {tuple(masks.shape)} "
                         f"must be [N, 3, S, S] and [N, H, S, S].")
    N, H, S = masks.shape[0], masks.shape[1], masks.shape[-1]
    _, gu, gv = image_gradients(observed.float().mean(1, keepdim=True), blur_sigma)
    magnitude = torch.sqrt(gu ** 2 + gv ** 2)
    edge = (magnitude > min_gradient).float()
    unit = torch.cat([gu, gv], 1) / magnitude.clamp_min(1e-9) * edge  # [N, 2, S, S], 0 off the edges
    _, nu, nv = image_gradients(masks.float().reshape(N * H, 1, S, S), blur_sigma)
    outline_strength = torch.sqrt(nu ** 2 + nv ** 2).view(N, H, S, S)
    outline = outline_strength > _OUTLINE_MIN
    nu = nu.view(N, H, S, S) / outline_strength.clamp_min(1e-9)
    nv = nv.view(N, H, S, S) / outline_strength.clamp_min(1e-9)
    padded = F.pad(unit, (radius, radius, radius, radius))
    best = torch.zeros_like(nu)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            window = padded[:, :, None, dy:dy + S, dx:dx + S]  # [N, 2, 1, S, S]: the same for all H
            best = torch.maximum(best, (nu * window[:, 0] + nv * window[:, 1]).abs())
    count = outline.sum((2, 3))
    return torch.where(count > 0, (best * outline).sum((2, 3)) / count.clamp_min(1), torch.zeros_like(best[..., 0, 0]))
