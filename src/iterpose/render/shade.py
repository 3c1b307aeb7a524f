"""`shade`: Lambert + ambient shading of interpolated colours, camera frame."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from iterpose.errors import InvalidInputError, ShapeError

__all__ = ["shade", "DEFAULT_LIGHT_DIR_CAM", "DEFAULT_AMBIENT", "DEFAULT_DIFFUSE"]

DEFAULT_LIGHT_DIR_CAM = (0.0, 0.0, -1.0)  # from the surface towards the light: a head-light at the camera
DEFAULT_AMBIENT = 0.5
DEFAULT_DIFFUSE = 0.5


def shade(colors: torch.Tensor, normals_cam: torch.Tensor, mask: torch.Tensor, *,
          light_dir_cam: Sequence[float] | torch.Tensor = DEFAULT_LIGHT_DIR_CAM, ambient: float = DEFAULT_AMBIENT,
          diffuse: float = DEFAULT_DIFFUSE, two_sided: bool = True) -> torch.Tensor:
    """Shade albedo with one directional light: ``rgb = clamp(colors * (ambient + diffuse * max(0, n.l)), 0, 1)``.

    Args:
        colors: ``[B, 3, H, W]`` float albedo, RGB 0..1.
        normals_cam: ``[B, 3, H, W]`` float surface normals in the camera frame (x right, y down, z forward);
            need not be unit length (normalised here; zero normals give ambient only).
        mask: ``[B, H, W]`` bool, pixels to shade; the output is 0 elsewhere.
        light_dir_cam: ``(3,)`` direction from the surface towards the light, camera frame (normalised here).
            Default ``(0, 0, -1)``: a head-light at the camera.
        ambient, diffuse: non-negative weights (unitless).
        two_sided: use ``|n.l|`` instead of ``max(0, n.l)``, because BOP meshes do not guarantee outward normals.

    Returns:
        ``[B, 3, H, W]`` float RGB in 0..1, differentiable w.r.t. ``colors`` and ``normals_cam``.
    """
    fn = "shade"
    if colors.dim() != 4 or colors.shape[1] != 3:
        raise ShapeError(f"{fn}: colors must be [B, 3, H, W] RGB, got {list(colors.shape)}.")
    if normals_cam.shape != colors.shape:
        raise ShapeError(f"{fn}: normals_cam must be [B, 3, H, W] like colors {list(colors.shape)}, got "
                         f"{list(normals_cam.shape)}.")
    B, _, H, W = colors.shape
    if mask.shape != (B, H, W):
        raise ShapeError(f"{fn}: mask must be [B, H, W] = {[B, H, W]}, got {list(mask.shape)}.")
    if not (ambient >= 0 and diffuse >= 0):
        raise InvalidInputError(f"{fn}: ambient and diffuse must be >= 0, got ambient={ambient}, diffuse={diffuse}.")
    light = torch.as_tensor(light_dir_cam, dtype=colors.dtype, device=colors.device).reshape(-1)
    if light.shape != (3,) or not bool(torch.isfinite(light).all()) or float(light.norm()) == 0:
        raise InvalidInputError(f"{fn}: light_dir_cam must be a finite non-zero (3,) vector, got {light.tolist()}.")
    light = light / light.norm()
    n = normals_cam / normals_cam.norm(dim=1, keepdim=True).clamp_min(1e-12)
    ndotl = (n * light.view(1, 3, 1, 1)).sum(1, keepdim=True)
    ndotl = ndotl.abs() if two_sided else ndotl.clamp_min(0)
    rgb = (colors * (ambient + diffuse * ndotl)).clamp(0, 1)
    return rgb * mask.unsqueeze(1).to(rgb.dtype)
