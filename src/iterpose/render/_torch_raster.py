"""Device-agnostic rasteriser in pure torch (private): used for CUDA inputs, runs on any device.

Each triangle's bounding box is expanded into candidate fragments (in chunks that bound memory); covered
fragments are merged into the z-buffer with ``scatter_reduce(amin)`` on one int64 key per pixel,
``key = float32_bits(depth) << 32 | face_id`` (positive float32 bit patterns order like the floats). The
arithmetic is the one of :mod:`iterpose.render._fixed_point`, so the result equals the numba kernel's bit for bit.
"""

from __future__ import annotations

import torch

from iterpose.render._fixed_point import GUARD_BAND_PX, SUBPIXEL

__all__ = ["rasterize_torch", "DEFAULT_CHUNK_FRAGMENTS"]

DEFAULT_CHUNK_FRAGMENTS = 1 << 21
_EMPTY = torch.iinfo(torch.int64).max


def _topleft_bias(sx, sy, tx, ty):
    dx = tx - sx
    dy = ty - sy
    return torch.where((dy < 0) | ((dy == 0) & (dx > 0)), 0, -1)


def _plane(verts, K, b, tri):
    """Per selected triangle: screen-space plane of 1/z, ``1/z = al*u + (be*v + ga)``, and its vertex z range."""
    p0, p1, p2 = verts[b, tri[:, 0]], verts[b, tri[:, 1]], verts[b, tri[:, 2]]
    x0, y0, z0 = p0.unbind(-1)
    e1x, e1y, e1z = (p1 - p0).unbind(-1)
    e2x, e2y, e2z = (p2 - p0).unbind(-1)
    nx = e1y * e2z - e1z * e2y
    ny = e1z * e2x - e1x * e2z
    nz = e1x * e2y - e1y * e2x
    D = nx * x0 + ny * y0 + nz * z0
    Kb = K[b]
    a = nx / Kb[:, 0, 0]
    bq = (ny - a * Kb[:, 0, 1]) / Kb[:, 1, 1]
    g = nz - a * Kb[:, 0, 2] - bq * Kb[:, 1, 2]
    zs = torch.stack([z0, p1[:, 2], p2[:, 2]], -1)
    return a / D, bq / D, g / D, zs.amin(-1), zs.amax(-1)


def rasterize_torch(verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, offsets: torch.Tensor, h: int,
                    w: int, near_m: float, chunk_fragments: int = DEFAULT_CHUNK_FRAGMENTS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterise with torch ops on ``verts.device``.

    Args:
        verts: ``[B, V, 3]`` float64, metres, camera frame.
        faces: ``[F, 3]`` int64 on the same device.
        K: ``[B, 3, 3]`` float64 pixels.
        offsets: ``[B, 2]`` int64 window origin (x0, y0), full-image pixels.
        h, w: window size; near_m: near plane in metres.
        chunk_fragments: most candidate fragments processed at once (memory bound; >= 1).

    Returns:
        ``(face_id [B, h, w] int32 (-1 empty), depth [B, h, w] float32 metres (0 empty))`` on ``verts.device``.
    """
    dev = verts.device
    B, V = verts.shape[0], verts.shape[1]
    F = faces.shape[0]
    X, Y, Z = verts[..., 0], verts[..., 1], verts[..., 2]
    k = lambda r, c: K[:, r, c].unsqueeze(1)  # noqa: E731
    ok = Z >= near_m
    Zs = torch.where(ok, Z, torch.ones_like(Z))
    u = (k(0, 0) * X + k(0, 1) * Y + k(0, 2) * Z) / Zs
    v = (k(1, 1) * Y + k(1, 2) * Z) / Zs
    ok &= (u.abs() <= GUARD_BAND_PX) & (v.abs() <= GUARD_BAND_PX)
    zero = torch.zeros_like(u)
    vx = torch.floor(torch.where(ok, u, zero) * SUBPIXEL + 0.5).long()
    vy = torch.floor(torch.where(ok, v, zero) * SUBPIXEL + 0.5).long()

    # triangle setup, [B, F]
    vert_a, vert_b, vert_c = faces[:, 0], faces[:, 1], faces[:, 2]
    valid = ok[:, vert_a] & ok[:, vert_b] & ok[:, vert_c]
    ax, ay = vx[:, vert_a], vy[:, vert_a]
    bx, by = vx[:, vert_b], vy[:, vert_b]
    cx, cy = vx[:, vert_c], vy[:, vert_c]
    A = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    flip = A < 0
    bx, cx = torch.where(flip, cx, bx), torch.where(flip, bx, cx)
    by, cy = torch.where(flip, cy, by), torch.where(flip, by, cy)
    A = A.abs()
    valid &= A != 0
    ox = offsets[:, 0:1].to(dev)
    oy = offsets[:, 1:2].to(dev)
    jlo = (-torch.div(-torch.minimum(torch.minimum(ax, bx), cx), SUBPIXEL, rounding_mode="floor") - ox).clamp(min=0)
    jhi = (torch.div(torch.maximum(torch.maximum(ax, bx), cx), SUBPIXEL, rounding_mode="floor") - ox).clamp(max=w - 1)
    ilo = (-torch.div(-torch.minimum(torch.minimum(ay, by), cy), SUBPIXEL, rounding_mode="floor") - oy).clamp(min=0)
    ihi = (torch.div(torch.maximum(torch.maximum(ay, by), cy), SUBPIXEL, rounding_mode="floor") - oy).clamp(max=h - 1)
    valid &= (jlo <= jhi) & (ilo <= ihi)
    ba = _topleft_bias(bx, by, cx, cy)
    bb = _topleft_bias(cx, cy, ax, ay)
    bc = _topleft_bias(ax, ay, bx, by)

    bidx, fidx = valid.nonzero(as_tuple=True)
    sel = lambda t: t[bidx, fidx]  # noqa: E731
    ax, ay, bx, by, cx, cy, A = map(sel, (ax, ay, bx, by, cx, cy, A))
    ba, bb, bc = map(sel, (ba, bb, bc))
    al, be, ga, zmin, zmax = _plane(verts, K, bidx, faces[fidx])
    jlo, jhi, ilo, ihi = map(sel, (jlo, jhi, ilo, ihi))
    nx = jhi - jlo + 1
    count = nx * (ihi - ilo + 1)
    ends = torch.cumsum(count, 0)

    key = torch.full((B * h * w,), _EMPTY, dtype=torch.int64, device=dev)
    T = int(bidx.shape[0])
    if T:
        # chunk boundaries (one host sync): triangle ranges whose fragment counts stay near chunk_fragments
        ends_cpu = ends.cpu()
        bounds = [0]
        while bounds[-1] < T:
            base = int(ends_cpu[bounds[-1] - 1]) if bounds[-1] else 0
            nxt = int(torch.searchsorted(ends_cpu, base + max(1, chunk_fragments), right=True))
            bounds.append(min(T, max(nxt, bounds[-1] + 1)))
        for s, e in zip(bounds[:-1], bounds[1:]):
            cnt = count[s:e]
            total = int(ends_cpu[e - 1]) - (int(ends_cpu[s - 1]) if s else 0)
            tri = torch.repeat_interleave(torch.arange(s, e, device=dev), cnt, output_size=total)
            start = ends[tri] - count[tri]
            local = torch.arange(total, device=dev) + (int(ends_cpu[s - 1]) if s else 0) - start
            j = jlo[tri] + local % nx[tri]
            i = ilo[tri] + torch.div(local, nx[tri], rounding_mode="floor")
            b = bidx[tri]
            px = (j + ox[b, 0]) * SUBPIXEL
            py = (i + oy[b, 0]) * SUBPIXEL
            tax, tay, tbx, tby, tcx, tcy = ax[tri], ay[tri], bx[tri], by[tri], cx[tri], cy[tri]
            wa = (tcx - tbx) * (py - tby) - (tcy - tby) * (px - tbx)
            wb = (tax - tcx) * (py - tcy) - (tay - tcy) * (px - tcx)
            wc = (tbx - tax) * (py - tay) - (tby - tay) * (px - tax)
            cov = (wa + ba[tri] >= 0) & (wb + bb[tri] >= 0) & (wc + bc[tri] >= 0)
            tri, wa, wb, wc, i, j, b = (t[cov] for t in (tri, wa, wb, wc, i, j, b))
            u = (j + ox[b, 0]).double()
            v = (i + oy[b, 0]).double()
            z = 1.0 / (al[tri] * u + (be[tri] * v + ga[tri]))
            z = torch.where(z >= zmin[tri], z, zmin[tri])
            z = torch.where(z > zmax[tri], zmax[tri], z)
            z32 = z.float()
            frag_key = (z32.view(torch.int32).long() << 32) | fidx[tri]
            key.scatter_reduce_(0, (b * h + i) * w + j, frag_key, reduce="amin", include_self=True)

    key = key.view(B, h, w)
    empty = key == _EMPTY
    face_id = torch.where(empty, -1, key & 0xFFFFFFFF).int()
    depth = torch.where(empty, 0, key >> 32).int().view(torch.float32)
    return face_id, depth
