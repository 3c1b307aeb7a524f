"""CPU rasteriser: a numba kernel, parallel over (image, row band) so no two threads write the same pixel
(private; see :mod:`iterpose.render._fixed_point` for the exact arithmetic)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from iterpose.render._fixed_point import BAND_ROWS, GUARD_BAND_PX, SUBPIXEL

__all__ = ["rasterize_numba"]


@numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _kernel(verts, faces, K, offsets, h, w, near, guard, sub, band_rows, face_id, depth):  # pragma: no cover
    B = verts.shape[0]
    V = verts.shape[1]
    F = faces.shape[0]

    # 1. project and snap vertices
    vx = np.empty((B, V), np.int64)
    vy = np.empty((B, V), np.int64)
    viz = np.empty((B, V), np.float64)
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
        vx[b, k] = np.int64(math.floor(u * sub + 0.5))
        vy[b, k] = np.int64(math.floor(v * sub + 0.5))
        viz[b, k] = 1.0 / Z
        vok[b, k] = True

    # 2. triangle setup: winding, twice-area, tie biases, bbox in window pixels
    ti = np.empty((B * F, 14), np.int64)
    tf = np.empty((B * F, 3), np.float64)
    tvalid = np.zeros(B * F, np.bool_)
    for t in prange(B * F):
        b = t // F
        f = t - b * F
        i0 = faces[f, 0]
        i1 = faces[f, 1]
        i2 = faces[f, 2]
        if not (vok[b, i0] and vok[b, i1] and vok[b, i2]):
            continue
        ax = vx[b, i0]
        ay = vy[b, i0]
        bx = vx[b, i1]
        by = vy[b, i1]
        cx = vx[b, i2]
        cy = vy[b, i2]
        za = viz[b, i0]
        zb = viz[b, i1]
        zc = viz[b, i2]
        A = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if A == 0:
            continue
        if A < 0:
            bx, cx = cx, bx
            by, cy = cy, by
            zb, zc = zc, zb
            A = -A
        ox = offsets[b, 0]
        oy = offsets[b, 1]
        jlo = -((-min(ax, min(bx, cx))) // sub) - ox
        jhi = (max(ax, max(bx, cx)) // sub) - ox
        ilo = -((-min(ay, min(by, cy))) // sub) - oy
        ihi = (max(ay, max(by, cy)) // sub) - oy
        jlo = max(jlo, 0)
        ilo = max(ilo, 0)
        jhi = min(jhi, w - 1)
        ihi = min(ihi, h - 1)
        if jlo > jhi or ilo > ihi:
            continue
        # bias of the weight opposite each edge: edge b->c gives w_a, c->a gives w_b, a->b gives w_c
        dx = cx - bx
        dy = cy - by
        ba = 0 if (dy < 0 or (dy == 0 and dx > 0)) else -1
        dx = ax - cx
        dy = ay - cy
        bb = 0 if (dy < 0 or (dy == 0 and dx > 0)) else -1
        dx = bx - ax
        dy = by - ay
        bc = 0 if (dy < 0 or (dy == 0 and dx > 0)) else -1
        ti[t, 0] = ax
        ti[t, 1] = ay
        ti[t, 2] = bx
        ti[t, 3] = by
        ti[t, 4] = cx
        ti[t, 5] = cy
        ti[t, 6] = A
        ti[t, 7] = ba
        ti[t, 8] = bb
        ti[t, 9] = bc
        ti[t, 10] = jlo
        ti[t, 11] = jhi
        ti[t, 12] = ilo
        ti[t, 13] = ihi
        tf[t, 0] = za
        tf[t, 1] = zb
        tf[t, 2] = zc
        tvalid[t] = True

    # 3. stable binning of triangles into (image, row band) lists (counting sort)
    nb = (h + band_rows - 1) // band_rows
    counts = np.zeros(B * nb + 1, np.int64)
    for t in range(B * F):
        if tvalid[t]:
            b = t // F
            for q in range(ti[t, 12] // band_rows, ti[t, 13] // band_rows + 1):
                counts[b * nb + q + 1] += 1
    for q in range(B * nb):
        counts[q + 1] += counts[q]
    fill = counts[:-1].copy()
    lst = np.empty(counts[B * nb], np.int64)
    for t in range(B * F):
        if tvalid[t]:
            b = t // F
            for q in range(ti[t, 12] // band_rows, ti[t, 13] // band_rows + 1):
                lst[fill[b * nb + q]] = t
                fill[b * nb + q] += 1

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
            t = lst[k]
            f = np.int32(t - b * F)
            ax = ti[t, 0]
            ay = ti[t, 1]
            bx = ti[t, 2]
            by = ti[t, 3]
            cx = ti[t, 4]
            cy = ti[t, 5]
            Af = np.float64(ti[t, 6])
            ba = ti[t, 7]
            bb = ti[t, 8]
            bc = ti[t, 9]
            jlo = ti[t, 10]
            jhi = ti[t, 11]
            ilo = max(ti[t, 12], r0)
            ihi = min(ti[t, 13], r1)
            za = tf[t, 0]
            zb = tf[t, 1]
            zc = tf[t, 2]
            sa = -(cy - by) * sub
            sb = -(ay - cy) * sub
            sc = -(by - ay) * sub
            px0 = (jlo + ox) * sub
            for i in range(ilo, ihi + 1):
                py = (i + oy) * sub
                wa = (cx - bx) * (py - by) - (cy - by) * (px0 - bx)
                wb = (ax - cx) * (py - cy) - (ay - cy) * (px0 - cx)
                wc = (bx - ax) * (py - ay) - (by - ay) * (px0 - ax)
                for j in range(jlo, jhi + 1):
                    if wa + ba >= 0 and wb + bb >= 0 and wc + bc >= 0:
                        inv = (np.float64(wa) * za + np.float64(wb) * zb + np.float64(wc) * zc) / Af
                        z = np.float32(1.0 / inv)
                        cur = depth[b, i, j]
                        if z < cur or (z == cur and f < face_id[b, i, j]):
                            depth[b, i, j] = z
                            face_id[b, i, j] = f
                    wa += sa
                    wb += sb
                    wc += sc
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
            np.int64(SUBPIXEL), np.int64(BAND_ROWS), face_id, depth)
    return face_id, depth
