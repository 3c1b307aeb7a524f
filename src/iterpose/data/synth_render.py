"""Rendering of a synthetic scene's instances: rasterised one by one in their projected windows, composited
by depth, Lambert-shaded per vertex and interpolated perspective-correctly.

:func:`interpolate_colors` (a numba kernel) is the one colour interpolation of NumPy scenes. It computes what
:func:`iterpose.render.interpolate` computes (the same ray-triangle barycentrics; on 20 LM-O scenes of
``bench_synth`` the images are bit-identical), without torch's per-call overhead: with ``render.interpolate`` a
640 x 480 scene of 3 LM-O targets took 39-40 ms instead of 34-37 ms (1 thread, benchmarks/HARDENING_refactor.md).
The differentiable ``render`` path stays the one for refiners and training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import torch

from iterpose.data.synth_config import SynthConfig
from iterpose.data.synth_layout import Instance
from iterpose.render import rasterize

__all__ = ["Rendered", "render_instances", "vertex_shading", "interpolate_colors", "bbox_xywh"]

@numba.njit(cache=True, nogil=True)
def _interp_kernel(face_id, verts, faces, colors, fx, fy, cx, cy, x0, y0, out):  # pragma: no cover - compiled
    H, W = face_id.shape
    for i in range(H):
        y = (i + y0 - cy) / fy
        for j in range(W):
            f = face_id[i, j]
            if f < 0:
                continue
            x = (j + x0 - cx) / fx
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            e1x, e1y, e1z = verts[b, 0] - verts[a, 0], verts[b, 1] - verts[a, 1], verts[b, 2] - verts[a, 2]
            e2x, e2y, e2z = verts[c, 0] - verts[a, 0], verts[c, 1] - verts[a, 1], verts[c, 2] - verts[a, 2]
            # Moller-Trumbore, ray (x, y, 1) from the origin
            px, py, pz = y * e2z - e2y, e2x - x * e2z, x * e2y - y * e2x
            det = e1x * px + e1y * py + e1z * pz
            if det == 0.0:
                det = 1.0
            tx, ty, tz = -verts[a, 0], -verts[a, 1], -verts[a, 2]
            qx, qy, qz = ty * e1z - tz * e1y, tz * e1x - tx * e1z, tx * e1y - ty * e1x
            l1 = (tx * px + ty * py + tz * pz) / det
            l2 = (x * qx + y * qy + qz) / det
            l0 = 1.0 - l1 - l2
            for k in range(3):
                out[i, j, k] = l0 * colors[a, k] + l1 * colors[b, k] + l2 * colors[c, k]


def interpolate_colors(face_id: np.ndarray, verts_cam: np.ndarray, faces: np.ndarray, colors: np.ndarray,
                       K: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Perspective-correct interpolation of per-vertex colours at every covered pixel (numba, CPU).

    Args:
        face_id: ``[h, w]`` int32 visible face (-1 = skip), from :func:`iterpose.render.rasterize` (full image or
            a crop window).
        verts_cam: ``[V, 3]`` float64 camera-frame vertices (metres) that were rasterised.
        faces: ``[F, 3]`` int64. colors: ``[V, C=3]`` float32 values to interpolate. K: ``[3, 3]`` zero-skew,
            full-image intrinsics.
        offset: ``(x0, y0)`` full-image pixel of the window's top-left pixel (``(0, 0)`` for a full image).

    Returns:
        ``[H, W, 3]`` float32, 0 at empty pixels; the same barycentrics as :func:`iterpose.render.interpolate`
        (the pixel ray meets the triangle; pixel centre (row i, col j) at (x=j, y=i)).
    """
    out = np.zeros(face_id.shape + (3,), np.float32)
    _interp_kernel(np.ascontiguousarray(face_id, dtype=np.int32), np.ascontiguousarray(verts_cam, dtype=np.float64),
                   np.ascontiguousarray(faces, dtype=np.int64), np.ascontiguousarray(colors, dtype=np.float32),
                   float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), float(offset[0]),
                   float(offset[1]), out)
    return out


def interpolate_colors_reference(face_id: np.ndarray, verts_cam: np.ndarray, faces: np.ndarray, colors: np.ndarray,
                                 K: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Test reference only (not public): a slow, vectorised NumPy version of :func:`interpolate_colors` (same
    arguments, same result), which the tests compare the numba kernel with."""
    out = np.zeros(face_id.shape + (3,), np.float64)
    i, j = np.nonzero(face_id >= 0)
    tri = faces[face_id[i, j]]
    v0, v1, v2 = (verts_cam[tri[:, k]] for k in range(3))
    d = np.stack([(j + offset[0] - K[0, 2]) / K[0, 0], (i + offset[1] - K[1, 2]) / K[1, 1], np.ones(len(i))], -1)
    e1, e2 = v1 - v0, v2 - v0
    p = np.cross(d, e2)
    det = (e1 * p).sum(-1)
    det[det == 0] = 1.0
    q = np.cross(-v0, e1)
    l1 = (-v0 * p).sum(-1) / det
    l2 = (d * q).sum(-1) / det
    l0 = 1 - l1 - l2
    c = colors.astype(np.float64)
    out[i, j] = l0[:, None] * c[tri[:, 0]] + l1[:, None] * c[tri[:, 1]] + l2[:, None] * c[tri[:, 2]]
    return out.astype(np.float32)


def bbox_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """BOP box ``(x, y, w, h)`` of a ``[H, W]`` bool mask, as bop_toolkit's ``misc.calc_2d_bbox`` computes
    ``scene_gt_info.json``'s boxes (x = first column, w = last - first, no +1); ``(-1, -1, -1, -1)`` when empty."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return (-1, -1, -1, -1)
    y0, y1 = np.flatnonzero(rows)[[0, -1]]
    x0, x1 = np.flatnonzero(cols)[[0, -1]]
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


_NEAR_M = 0.01  # iterpose.render.rasterize's default near plane


@dataclass(frozen=True)
class Rendered:
    """The composited instances of one scene."""

    color: np.ndarray  # [H, W, 3] float32 shaded objects, 0 on background
    depth: np.ndarray  # [H, W] float32
    instance: np.ndarray  # [H, W] int64, -1 background
    mask_full: np.ndarray  # [N_targets, H, W] bool


def _to_cam(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    R, t = inst.T_co[:3, :3], inst.T_co[:3, 3]
    return inst.mesh.vertices @ R.T + t, inst.mesh.normals @ R.T.astype(np.float32)


def _window(vc: np.ndarray, K: np.ndarray, H: int, W: int, corners: np.ndarray | None = None
            ) -> tuple[int, int, int, int] | None:
    """Full-image pixel window ``(x0, y0, x1, y1)`` (inclusive) holding the projection of ``vc [V, 3]`` (camera
    frame, vertices in front of the near plane only); ``None`` when it misses the image. ``corners [8, 3]`` (camera
    frame, the bounding box's) give a cheaper conservative window when they are all in front of the camera."""
    if corners is not None and (corners[:, 2] > _NEAR_M).all():
        p = corners
    else:
        front = vc[:, 2] > _NEAR_M
        if not front.any():
            return None
        p = vc[front]
    uv = p[:, :2] / p[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    x0, y0 = max(0, int(math.floor(uv[:, 0].min()))), max(0, int(math.floor(uv[:, 1].min())))
    x1, y1 = min(W - 1, int(math.ceil(uv[:, 0].max()))), min(H - 1, int(math.ceil(uv[:, 1].max())))
    return None if x1 < x0 or y1 < y0 else (x0, y0, x1, y1)



def vertex_shading(vc: np.ndarray, nc: np.ndarray, colors: np.ndarray, light: np.ndarray, ambient: float,
                   diffuse: float, specular: float = 0.0, shininess: float = 16.0) -> np.ndarray:
    """Shaded vertex colours ``[V, 3]`` float32 in 0..1: ``colors x (ambient + diffuse |n.l|)`` plus, with
    ``specular > 0``, a white Phong highlight ``specular x max(0, r.v)^shininess``.

    ``vc [V, 3]`` camera-frame vertices (metres), ``nc [V, 3]`` their unit normals (either orientation: each is
    turned towards the camera), ``light [3]`` the unit direction from the scene towards the light."""
    light = light.astype(np.float32)
    n_dot_l = nc @ light
    shade = np.float32(ambient) + np.float32(diffuse) * np.abs(n_dot_l)
    out = colors * shade[:, None]
    if specular > 0:
        view = -vc / np.linalg.norm(vc, axis=1, keepdims=True)
        n = np.where((np.sum(nc * view, axis=1) < 0)[:, None], -nc, nc)
        n_dot_l = n @ light
        reflected = 2.0 * n_dot_l[:, None] * n - light
        r_dot_v = np.clip(np.sum(reflected * view, axis=1), 0.0, 1.0) * (n_dot_l > 0)
        out = out + (np.float32(specular) * r_dot_v ** np.float32(shininess))[:, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def render_instances(instances: list[Instance], n_targets: int, config: SynthConfig, light: np.ndarray,
                     ambient: float, diffuse: float, specular: float = 0.0, shininess: float = 16.0) -> Rendered:
    """Rasterise each instance alone in its projected window (so every face is set up once) and composite the
    windows by depth: the same face ids and depths as one z-buffer of all meshes (depth ties go to the earlier
    instance, as they go to the smaller face id there), plus each target's full mask for free. Shading:
    :func:`vertex_shading`."""
    H, W = config.height, config.width
    K = config.K_matrix
    K_t = torch.from_numpy(K)
    zbuf = np.full((H, W), np.inf, np.float32)
    inst_id = np.full((H, W), -1, np.int64)
    mask_full = np.zeros((n_targets, H, W), bool)
    windows = []
    for idx, inst in enumerate(instances):
        vc, nc = _to_cam(inst)
        R, t = inst.T_co[:3, :3], inst.T_co[:3, 3]
        win = _window(vc, K, H, W, inst.mesh.corners @ R.T + t)
        if win is None:
            windows.append(None)
            continue
        x0, y0, x1, y1 = win
        crop = torch.tensor([[x0, y0, x1 - x0 + 1, y1 - y0 + 1]])
        r = rasterize(torch.from_numpy(vc), torch.from_numpy(inst.mesh.faces), K_t, H, W, crop=crop, near_m=_NEAR_M)
        fid, d = r.face_id[0].numpy(), r.depth_m[0].numpy()
        covered = fid >= 0
        if idx < n_targets:
            mask_full[idx, y0:y1 + 1, x0:x1 + 1] = covered
        zw, iw = zbuf[y0:y1 + 1, x0:x1 + 1], inst_id[y0:y1 + 1, x0:x1 + 1]
        nearer = covered & (d < zw)
        zw[nearer] = d[nearer]
        iw[nearer] = idx
        windows.append((win, fid, vc, nc))
    color = np.zeros((H, W, 3), np.float32)
    for idx, item in enumerate(windows):
        if item is None:
            continue
        (x0, y0, x1, y1), fid, vc, nc = item
        mine = inst_id[y0:y1 + 1, x0:x1 + 1] == idx
        if not mine.any():
            continue
        mesh = instances[idx].mesh
        cols = vertex_shading(vc, nc, mesh.colors, light, ambient, diffuse, specular, shininess)
        c = interpolate_colors(np.where(mine, fid, -1), vc, mesh.faces, cols, K, (x0, y0))
        cw = color[y0:y1 + 1, x0:x1 + 1]
        cw[mine] = c[mine]
    depth = np.where(inst_id >= 0, zbuf, np.float32(0.0)).astype(np.float32)
    return Rendered(color, depth, inst_id, mask_full)
