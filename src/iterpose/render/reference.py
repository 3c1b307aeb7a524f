"""`rasterize_reference`: a slow, plain-Python rasteriser for tiny images, the oracle of the fast ones.

Test reference only: it exists so that the tests can compare the numba and torch kernels with it; it is not part
of the public surface (not in :data:`iterpose.render.__all__`), and nothing in the library calls it.

It loops over every pixel and every triangle with Python integers (unbounded, so the edge functions are exact by
construction) and follows the rules written in :mod:`iterpose.render._fixed_point`; tests require the numba and
torch rasterisers to match it exactly (face ids) and to 1e-6 m (depth).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from iterpose.render._checks import check_crop, check_faces, check_K, check_size, check_vertices
from iterpose.render._fixed_point import GUARD_BAND_PX, SUBPIXEL
from iterpose.render.raster import Raster

__all__ = ["rasterize_reference"]


def _covers(w: int, s: tuple[int, int], t: tuple[int, int]) -> bool:
    dx, dy = t[0] - s[0], t[1] - s[1]
    top_left = dy < 0 or (dy == 0 and dx > 0)
    return w > 0 or (w == 0 and top_left)


def _edge(s: tuple[int, int], t: tuple[int, int], p: tuple[int, int]) -> int:
    return (t[0] - s[0]) * (p[1] - s[1]) - (t[1] - s[1]) * (p[0] - s[0])


def _plane(verts: list, k: list, i0: int, i1: int, i2: int):
    """Screen-space plane of 1/z of the exact triangle (IEEE float64 via numpy scalars) and its vertex z range."""
    p0, p1, p2 = (np.array(verts[i], dtype=np.float64) for i in (i0, i1, i2))
    e1, e2 = p1 - p0, p2 - p0
    nx = e1[1] * e2[2] - e1[2] * e2[1]
    ny = e1[2] * e2[0] - e1[0] * e2[2]
    nz = e1[0] * e2[1] - e1[1] * e2[0]
    D = nx * p0[0] + ny * p0[1] + nz * p0[2]
    fx, s, cx, fy, cy = (np.float64(x) for x in (k[0][0], k[0][1], k[0][2], k[1][1], k[1][2]))
    with np.errstate(all="ignore"):
        a = nx / fx
        bq = (ny - a * s) / fy
        g = nz - a * cx - bq * cy
        return a / D, bq / D, g / D, min(p0[2], p1[2], p2[2]), max(p0[2], p1[2], p2[2])


def rasterize_reference(vertices_cam: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, height: int, width: int,
                        *, crop: torch.Tensor | None = None, near_m: float = 0.01) -> Raster:
    """Same contract as :func:`iterpose.render.rasterize`, in plain Python (O(pixels x faces)); tiny inputs only.

    Args and returns: see :func:`iterpose.render.rasterize` (the result lives on the CPU; ``backend`` is
    ``"reference"``).
    """
    fn = "rasterize_reference"
    verts = check_vertices(vertices_cam, fn)
    height, width = check_size(height, width, fn)
    faces = check_faces(faces, verts.shape[1], fn)
    B = verts.shape[0]
    Kb = check_K(K, B, fn)
    offsets, h, w = check_crop(crop, B, height, width, fn)
    V = verts.detach().cpu().double().tolist()
    Kl = Kb.detach().cpu().double().tolist()
    Fl = faces.cpu().tolist()
    face_id = np.full((B, h, w), -1, np.int32)
    depth = np.zeros((B, h, w), np.float32)
    for b in range(B):
        k = Kl[b]
        snapped = []
        for X, Y, Z in V[b]:
            if not Z >= near_m:
                snapped.append(None)
                continue
            u = (k[0][0] * X + k[0][1] * Y + k[0][2] * Z) / Z
            v = (k[1][1] * Y + k[1][2] * Z) / Z
            if not (abs(u) <= GUARD_BAND_PX and abs(v) <= GUARD_BAND_PX):
                snapped.append(None)
                continue
            snapped.append((math.floor(u * SUBPIXEL + 0.5), math.floor(v * SUBPIXEL + 0.5)))
        x0, y0 = int(offsets[b, 0]), int(offsets[b, 1])
        for i in range(h):
            for j in range(w):
                p = ((j + x0) * SUBPIXEL, (i + y0) * SUBPIXEL)
                best = (math.inf, -1)
                for f, (ia, ib, ic) in enumerate(Fl):
                    if snapped[ia] is None or snapped[ib] is None or snapped[ic] is None:
                        continue
                    a, bb, c = snapped[ia], snapped[ib], snapped[ic]
                    area = _edge(a, bb, c)
                    if area == 0:
                        continue
                    if area < 0:
                        bb, c, area = c, bb, -area
                    wa, wb, wc = _edge(bb, c, p), _edge(c, a, p), _edge(a, bb, p)
                    if not (_covers(wa, bb, c) and _covers(wb, c, a) and _covers(wc, a, bb)):
                        continue
                    al, be, ga, zmin, zmax = _plane(V[b], k, ia, ib, ic)
                    with np.errstate(all="ignore"):
                        z = np.float64(1.0) / (al * np.float64(j + x0) + (be * np.float64(i + y0) + ga))
                    z = zmin if not z >= zmin else z
                    z = zmax if z > zmax else z
                    z = float(np.float32(z))
                    if (z, f) < best:
                        best = (z, f)
                if best[1] >= 0:
                    face_id[b, i, j] = best[1]
                    depth[b, i, j] = best[0]
    return Raster(face_id=torch.from_numpy(face_id), depth_m=torch.from_numpy(depth), K=Kb.detach().cpu(),
                  offsets=offsets, height=height, width=width, backend="reference")
