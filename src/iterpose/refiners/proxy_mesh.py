"""Light proxy meshes for render-and-compare and the renders of them that the photometric refiners need.

Refiners render every object at every iteration into small crops (about 1 mm per crop pixel), so the BOP models'
10-50 k faces cost time without changing the picture. A proxy is the model simplified by vertex clustering on a
grid of ``cell_m`` (positions and colours averaged per cell, collapsed and duplicate faces dropped), with one
flat albedo per face (the mean of its vertex colours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from iterpose.render import rasterize
from iterpose.render.scene import DEFAULT_COLOR

__all__ = ["ProxyMesh", "make_proxy_mesh", "CropRender", "render_proxies", "backproject"]


@dataclass(frozen=True, eq=False)
class ProxyMesh:
    """A simplified object mesh (object frame).

    Attributes:
        obj_id: the object's id. vertices: ``[V, 3]`` float32 metres. faces: ``[F, 3]`` int64.
        face_albedo: ``[F, 3]`` float32 RGB 0..1 (mean of the face's vertex colours, or the render default).
        diameter_m: the full model's diameter (metres).
    """

    obj_id: int
    vertices: torch.Tensor
    faces: torch.Tensor
    face_albedo: torch.Tensor
    diameter_m: float


def make_proxy_mesh(model, cell_m: float) -> ProxyMesh:
    """Vertex-clustering simplification of an :class:`~iterpose.mesh.ObjectModel` on a grid of ``cell_m`` metres
    (``cell_m <= 0`` keeps the mesh as is)."""
    v = model.vertices.detach().cpu().numpy().astype(np.float64)
    f = model.faces.detach().cpu().numpy().astype(np.int64)
    if model.vertex_colors is not None:
        c = model.vertex_colors.detach().cpu().numpy().astype(np.float64)
    else:
        c = np.broadcast_to(np.array(DEFAULT_COLOR), v.shape)
    if cell_m > 0:
        q = np.floor((v - v.min(0)) / cell_m).astype(np.int64)
        _, inv = np.unique(q, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        cnt = np.bincount(inv).astype(np.float64)
        v = np.stack([np.bincount(inv, v[:, k]) for k in range(3)], 1) / cnt[:, None]
        c = np.stack([np.bincount(inv, c[:, k]) for k in range(3)], 1) / cnt[:, None]
        f = inv[f]
        keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        f = f[keep]
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        f = f[np.sort(first)]
    albedo = c[f].mean(axis=1)
    return ProxyMesh(obj_id=int(model.obj_id), vertices=torch.from_numpy(v.astype(np.float32)),
                     faces=torch.from_numpy(np.ascontiguousarray(f)), face_albedo=torch.from_numpy(
                         albedo.astype(np.float32)), diameter_m=float(model.diameter_m))


@dataclass(frozen=True, eq=False)
class CropRender:
    """Proxies rendered into ``S x S`` crops.

    Attributes:
        mask: ``[N, S, S]`` bool silhouette. depth_m: ``[N, S, S]`` camera z (metres), 0 off the object.
        albedo: ``[N, 3, S, S]`` flat face albedo 0..1, 0 off the object.
        X_cam: ``[N, S, S, 3]`` camera-frame surface point at each pixel centre (metres), 0 off the object.
    """

    mask: torch.Tensor
    depth_m: torch.Tensor
    albedo: torch.Tensor
    X_cam: torch.Tensor


def backproject(depth_m: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera points ``[N, S, S, 3]`` at the pixel centres of ``depth_m [N, S, S]`` (camera z, metres) seen by
    ``K [N, 3, 3]`` (zero skew assumed; pixel (i, j) is at u = j, v = i)."""
    N, h, w = depth_m.shape
    dev, dt = depth_m.device, depth_m.dtype
    j = torch.arange(w, device=dev, dtype=dt)
    i = torch.arange(h, device=dev, dtype=dt)
    K = K.to(dev, dt)
    x = (j[None, None, :] - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None]
    y = (i[None, :, None] - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None]
    return torch.stack([x.expand(N, h, w) * depth_m, y.expand(N, h, w) * depth_m, depth_m], dim=-1)


def render_proxies(proxies: Sequence[ProxyMesh], T_co: torch.Tensor, K_crop: torch.Tensor, size: int,
                   with_albedo: bool = True) -> CropRender:
    """Render proxy ``k`` at ``T_co[k]`` into its ``size x size`` crop seen by ``K_crop[k]``.

    Instances of the same proxy share one rasterisation call. Not differentiable (the refiners take their
    Jacobians analytically).
    """
    N = T_co.shape[0]
    dev = T_co.device
    face_id = torch.full((N, size, size), -1, dtype=torch.int64, device=dev)
    depth = torch.zeros(N, size, size, dtype=torch.float32, device=dev)
    albedo = torch.zeros(N, 3, size, size, dtype=torch.float32, device=dev) if with_albedo else None
    groups: dict[int, list[int]] = {}
    for k, p in enumerate(proxies):
        groups.setdefault(id(p), []).append(k)
    T = T_co.detach().to(torch.float32)
    for idx in groups.values():
        p = proxies[idx[0]]
        sel = torch.tensor(idx, device=dev)
        Tk = T[sel]
        vc = p.vertices.to(dev) @ Tk[:, :3, :3].transpose(1, 2) + Tk[:, None, :3, 3]
        r = rasterize(vc, p.faces.to(dev), K_crop[sel].to(dev, torch.float32), size, size)
        fid = r.face_id.to(dev).long()
        face_id[sel] = fid
        depth[sel] = r.depth_m.to(dev)
        if with_albedo:
            a = p.face_albedo.to(dev)[fid.clamp_min(0)]  # [n, S, S, 3]
            albedo[sel] = (a * (fid >= 0)[..., None]).permute(0, 3, 1, 2)
    mask = face_id >= 0
    X = backproject(depth, K_crop.to(dev, torch.float32))
    return CropRender(mask=mask, depth_m=depth, albedo=albedo, X_cam=X)
