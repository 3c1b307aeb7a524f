"""`interpolate`: perspective-correct vertex attributes at each covered pixel, differentiable.

Barycentrics are recomputed in torch by intersecting each covered pixel's ray with its visible triangle (the one
:func:`iterpose.render.rasterize` found), so gradients flow to the attributes *and* to the vertex positions; the
visibility itself (which triangle, which pixels) is piecewise constant and gets no gradient.
"""

from __future__ import annotations

import torch

from iterpose.errors import ShapeError
from iterpose.render._checks import check_faces, check_vertices
from iterpose.render.raster import Raster

__all__ = ["interpolate", "pixel_rays"]


def pixel_rays(raster: Raster, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor, dtype: torch.dtype
               ) -> torch.Tensor:
    """Camera-frame ray directions ``[P, 3]`` (z = 1) through output pixels ``(b, i, j)`` (each ``[P]`` int64)
    of ``raster``, for the full-image pixel centre ``(x = j + x0, y = i + y0)`` (OpenCV convention)."""
    K = raster.K.to(b.device, dtype)[b]  # [P, 3, 3]
    off = raster.offsets.to(b.device)[b]  # [P, 2]
    u = (j + off[:, 0]).to(dtype)
    v = (i + off[:, 1]).to(dtype)
    fx, s, cx = K[:, 0, 0], K[:, 0, 1], K[:, 0, 2]
    fy, cy = K[:, 1, 1], K[:, 1, 2]
    y = (v - cy) / fy
    x = (u - cx - s * y) / fx
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def interpolate(attributes: torch.Tensor, raster: Raster, vertices_cam: torch.Tensor, faces: torch.Tensor
                ) -> torch.Tensor:
    """Interpolate per-vertex attributes over the visible surface, perspective-correct.

    Args:
        attributes: ``[B, V, C]`` or ``[V, C]`` float per-vertex values (any unit; e.g. RGB 0..1, normals, z in
            metres). Gets gradients.
        raster: the :class:`~iterpose.render.Raster` of these vertices and faces.
        vertices_cam: ``[B, V, 3]`` or ``[V, 3]`` float, metres, camera frame: the positions that were rasterised.
            Gets gradients through the barycentrics (ray-triangle intersection in torch).
        faces: ``[F, 3]`` int64, the same faces.

    Returns:
        ``[B, C, h, w]`` in the dtype of ``attributes`` (promoted with ``vertices_cam``), on their device; 0 at
        empty pixels. At a covered pixel it equals ``sum_k b_k * attr_k`` with ``b`` the barycentrics of the 3D
        point where the pixel's ray meets the triangle.
    """
    fn = "interpolate"
    verts = check_vertices(vertices_cam, fn)
    if not isinstance(attributes, torch.Tensor) or attributes.dim() not in (2, 3):
        raise ShapeError(f"{fn}: attributes must be [B, V, C] or [V, C], got "
                         f"{list(attributes.shape) if isinstance(attributes, torch.Tensor) else type(attributes)}.")
    attr = attributes.unsqueeze(0) if attributes.dim() == 2 else attributes
    B, h, w = raster.face_id.shape
    Bv, V = verts.shape[0], verts.shape[1]
    if Bv not in (1, B) or attr.shape[0] not in (1, B):
        raise ShapeError(f"{fn}: batch sizes differ: raster has B={B}, vertices_cam {list(vertices_cam.shape)}, "
                         f"attributes {list(attributes.shape)}; use B or 1.")
    if attr.shape[1] != V:
        raise ShapeError(f"{fn}: attributes have {attr.shape[1]} vertices but vertices_cam has {V}; "
                         f"attributes must be [B, V, C].")
    faces = check_faces(faces, V, fn)
    dtype = torch.promote_types(attr.dtype, verts.dtype)
    dev = attr.device
    C = attr.shape[2]
    face_id = raster.face_id.to(dev)
    b, i, j = (face_id >= 0).nonzero(as_tuple=True)
    f = face_id[b, i, j].long()
    tri = faces.to(dev)[f]  # [P, 3]
    bv = b if Bv == B else torch.zeros_like(b)
    ba = b if attr.shape[0] == B else torch.zeros_like(b)
    verts = verts.to(dev, dtype)
    v0, v1, v2 = verts[bv, tri[:, 0]], verts[bv, tri[:, 1]], verts[bv, tri[:, 2]]
    d = pixel_rays(raster, b, i, j, dtype)
    # Moller-Trumbore with the ray origin at the camera centre
    e1 = v1 - v0
    e2 = v2 - v0
    pvec = torch.linalg.cross(d, e2)
    det = (e1 * pvec).sum(-1)
    det = torch.where(det == 0, torch.ones_like(det), det)  # grazing ray: visible only if rasterised; avoid inf
    tvec = -v0
    qvec = torch.linalg.cross(tvec, e1)
    l1 = (tvec * pvec).sum(-1) / det
    l2 = (d * qvec).sum(-1) / det
    l0 = 1 - l1 - l2
    a = attr.to(dtype)
    vals = l0[:, None] * a[ba, tri[:, 0]] + l1[:, None] * a[ba, tri[:, 1]] + l2[:, None] * a[ba, tri[:, 2]]
    out = torch.zeros(B, h, w, C, dtype=dtype, device=dev)
    out = out.index_put((b, i, j), vals)
    return out.permute(0, 3, 1, 2)
