"""CPU rasteriser: a numba kernel, parallel over (image, row band) so no two threads write the same pixel
(private; see :mod:`iterpose.render._fixed_point` for the exact arithmetic)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from iterpose.render._fixed_point import BAND_ROWS, GUARD_BAND_PX, SUBPIXEL

__all__ = ["rasterize_numba"]


@numba.njit(cache=True, inline="always", error_model="numpy")
def _plane(verts, K, b, i0, i1, i2):  # pragma: no cover
    """Screen-space plane of 1/z from the exact (unsnapped) triangle: ``1/z = al*u + be*v + ga``; and z range."""
    x0 = verts[b, i0, 0]
    y0 = verts[b, i0, 1]
    z0 = verts[b, i0, 2]
    e1x = verts[b, i1, 0] - x0
    e1y = verts[b, i1, 1] - y0
    e1z = verts[b, i1, 2] - z0
    e2x = verts[b, i2, 0] - x0
    e2y = verts[b, i2, 1] - y0
    e2z = verts[b, i2, 2] - z0
    nx = e1y * e2z - e1z * e2y
    ny = e1z * e2x - e1x * e2z
    nz = e1x * e2y - e1y * e2x
    D = nx * x0 + ny * y0 + nz * z0
    a = nx / K[b, 0, 0]
    bq = (ny - a * K[b, 0, 1]) / K[b, 1, 1]
    g = nz - a * K[b, 0, 2] - bq * K[b, 1, 2]
    zmin = min(z0, min(verts[b, i1, 2], verts[b, i2, 2]))
    zmax = max(z0, max(verts[b, i1, 2], verts[b, i2, 2]))
    return a / D, bq / D, g / D, zmin, zmax


@numba.njit(cache=True, inline="always", error_model="numpy")
def _setup(vx, vy, vok, faces, b, f, ox, oy, h, w, shift):  # pragma: no cover
    """Triangle setup: winding, twice-area, tie biases, bbox in window pixels. First item False = not drawn."""
    i0 = faces[f, 0]
    i1 = faces[f, 1]
    i2 = faces[f, 2]
    z = np.int64(0)
    if not (vok[b, i0] and vok[b, i1] and vok[b, i2]):
        return False, z, z, z, z, z, z, z, z, z, z, z, z, z, z
    ax = vx[b, i0]
    ay = vy[b, i0]
    bx = vx[b, i1]
    by = vy[b, i1]
    cx = vx[b, i2]
    cy = vy[b, i2]
    A = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    if A < 0:
        bx, cx = cx, bx
        by, cy = cy, by
        A = -A
    # floor / ceil division by steps_per_px = 2**shift as arithmetic shifts (exact for negative values too)
    jlo = max(-((-min(ax, min(bx, cx))) >> shift) - ox, 0)
    jhi = min((max(ax, max(bx, cx)) >> shift) - ox, w - 1)
    ilo = max(-((-min(ay, min(by, cy))) >> shift) - oy, 0)
    ihi = min((max(ay, max(by, cy)) >> shift) - oy, h - 1)
    ok = A != 0 and jlo <= jhi and ilo <= ihi
    # bias of the weight opposite each edge: edge b->c gives w_a, c->a gives w_b, a->b gives w_c
    dx = cx - bx
    dy = cy - by
    ba = z if (dy < 0 or (dy == 0 and dx > 0)) else z - 1
    dx = ax - cx
    dy = ay - cy
    bb = z if (dy < 0 or (dy == 0 and dx > 0)) else z - 1
    dx = bx - ax
    dy = by - ay
    bc = z if (dy < 0 or (dy == 0 and dx > 0)) else z - 1
    return ok, ax, ay, bx, by, cx, cy, A, ba, bb, bc, jlo, jhi, ilo, ihi


@numba.njit(parallel=True, cache=True, fastmath=False, nogil=True, error_model="numpy")
def _kernel(verts, faces, K, offsets, h, w, near, guard, shift, band_rows, face_id, depth):  # pragma: no cover
    steps_per_px = np.int64(1) << shift  # the fixed-point scale, SUBPIXEL
    B = verts.shape[0]
    V = verts.shape[1]
    F = faces.shape[0]

    # 1. project and snap vertices
    vx = np.empty((B, V), np.int64)
    vy = np.empty((B, V), np.int64)
    vok = np.zeros((B, V), np.bool_)
    for t in prange(B * V):
        b = t // V
        k = t - b * V
        X = verts[b, k, 0]
        Y = verts[b, k, 1]
        Z = verts[b, k, 2]
        if not (Z >= near):
            continue
        u = (K[b, 0, 0] * X + K[b, 0, 1] * Y + K[b, 0, 2] * Z) / Z
        v = (K[b, 1, 1] * Y + K[b, 1, 2] * Z) / Z
        if not (abs(u) <= guard and abs(v) <= guard):
            continue
        vx[b, k] = np.int64(math.floor(u * steps_per_px + 0.5))
        vy[b, k] = np.int64(math.floor(v * steps_per_px + 0.5))
        vok[b, k] = True

    # 2. which row bands each triangle touches (band_lo > band_hi: not drawn); the rest of the setup is
    #    recomputed where the triangle is drawn, which is cheaper than storing it
    nb = (h + band_rows - 1) // band_rows
    band_lo = np.empty(B * F, np.int32)
    band_hi = np.empty(B * F, np.int32)
    for t in prange(B * F):
        b = t // F
        r = _setup(vx, vy, vok, faces, b, t - b * F, offsets[b, 0], offsets[b, 1], h, w, shift)
        if r[0]:
            band_lo[t] = r[13] // band_rows
            band_hi[t] = r[14] // band_rows
        else:
            band_lo[t] = 1
            band_hi[t] = 0

    # 3. stable binning of triangles into (image, row band) lists (counting sort)
    counts = np.zeros(B * nb + 1, np.int64)
    for t in range(B * F):
        base = (t // F) * nb + 1
        for q in range(band_lo[t], band_hi[t] + 1):
            counts[base + q] += 1
    for q in range(B * nb):
        counts[q + 1] += counts[q]
    fill = counts[:-1].copy()
    lst = np.empty(counts[B * nb], np.int32)
    for t in range(B * F):
        base = (t // F) * nb
        for q in range(band_lo[t], band_hi[t] + 1):
            lst[fill[base + q]] = t - (t // F) * F
            fill[base + q] += 1

    # 4. rasterise each band; a band's rows belong to one thread only
    for q in prange(B * nb):
        b = q // nb
        r0 = (q - b * nb) * band_rows
        r1 = min(r0 + band_rows, h) - 1
        for i in range(r0, r1 + 1):
            for j in range(w):
                depth[b, i, j] = np.inf
                face_id[b, i, j] = -1
        ox = offsets[b, 0]
        oy = offsets[b, 1]
        for k in range(counts[q], counts[q + 1]):
            f = lst[k]
            (ok, ax, ay, bx, by, cx, cy, A, ba, bb, bc, jlo, jhi, ilo, ihi) = _setup(
                vx, vy, vok, faces, b, f, ox, oy, h, w, shift)
            planed = False  # the depth plane is computed at the first covered pixel (most tiny triangles have none)
            al = be = ga = zmin = zmax = 0.0
            ilo = max(ilo, r0)
            ihi = min(ihi, r1)
            # steps of the three edge functions per pixel to the right
            step_a = -(cy - by) * steps_per_px
            step_b = -(ay - cy) * steps_per_px
            step_c = -(by - ay) * steps_per_px
            px0 = (jlo + ox) * steps_per_px
            for i in range(ilo, ihi + 1):
                py = (i + oy) * steps_per_px
                wa = (cx - bx) * (py - by) - (cy - by) * (px0 - bx)
                wb = (ax - cx) * (py - cy) - (ay - cy) * (px0 - cx)
                wc = (bx - ax) * (py - ay) - (by - ay) * (px0 - ax)
                for j in range(jlo, jhi + 1):
                    if wa + ba >= 0 and wb + bb >= 0 and wc + bc >= 0:
                        if not planed:
                            al, be, ga, zmin, zmax = _plane(verts, K, b, faces[f, 0], faces[f, 1], faces[f, 2])
                            planed = True
                        zz = 1.0 / (al * np.float64(j + ox) + (be * np.float64(i + oy) + ga))
                        if not (zz >= zmin):
                            zz = zmin
                        if zz > zmax:
                            zz = zmax
                        z = np.float32(zz)
                        cur = depth[b, i, j]
                        if z < cur or (z == cur and f < face_id[b, i, j]):
                            depth[b, i, j] = z
                            face_id[b, i, j] = f
                    wa += step_a
                    wb += step_b
                    wc += step_c
        for i in range(r0, r1 + 1):
            for j in range(w):
                if face_id[b, i, j] < 0:
                    depth[b, i, j] = 0.0


def rasterize_numba(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, offsets: np.ndarray, h: int, w: int,
                    near_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise on the CPU.

    Args:
        verts: ``[B, V, 3]`` float64 C-contiguous, metres, camera frame.
        faces: ``[F, 3]`` int64 C-contiguous.
        K: ``[B, 3, 3]`` float64 pixels.
        offsets: ``[B, 2]`` int64 window origin (x0, y0) in full-image pixels.
        h, w: window size in pixels.
        near_m: near plane, metres.

    Returns:
        ``(face_id [B, h, w] int32 (-1 empty), depth [B, h, w] float32 metres (0 empty))``.
    """
    B = verts.shape[0]
    face_id = np.empty((B, h, w), np.int32)
    depth = np.empty((B, h, w), np.float32)
    _kernel(verts, faces, K, offsets, np.int64(h), np.int64(w), np.float64(near_m), np.float64(GUARD_BAND_PX),
            np.int64(SUBPIXEL.bit_length() - 1), np.int64(BAND_ROWS), face_id, depth)
    return face_id, depth
