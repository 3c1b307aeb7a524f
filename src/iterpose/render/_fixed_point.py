"""The one definition of how the rasteriser snaps vertices and tests coverage (private).

All three rasterisers (numba, torch, reference) follow these steps with the same float64 operations in the same
order, then integer arithmetic, which is why they agree bit for bit:

1. Projection (float64): ``u = (K00*X + K01*Y + K02*Z) / Z``, ``v = (K11*Y + K12*Z) / Z`` (full-image pixels,
   OpenCV convention: the centre of pixel (row i, col j) is at (u=j, v=i)).
2. A vertex is usable when ``Z >= near_m`` and ``|u|, |v| <= GUARD_BAND_PX``; a triangle with an unusable vertex
   is dropped (not clipped).
3. Snapping: ``x = floor(u * SUBPIXEL + 0.5)`` as int64 (1/256 pixel fixed point), pixel centre (i, j) sits at
   ``(j * SUBPIXEL, i * SUBPIXEL)``.
4. Edge functions, exact in int64: for a triangle (a, b, c) with twice-area ``A = E_ab(c) > 0`` (winding is
   normalised by swapping b and c; A == 0 triangles are dropped), ``E_st(p) = (t.x - s.x)(p.y - s.y) -
   (t.y - s.y)(p.x - s.x)``; barycentric weights are ``w_a = E_bc(p)``, ``w_b = E_ca(p)``, ``w_c = E_ab(p)``.
5. Tie rule (top-left, image y axis pointing down): a pixel centre exactly on an edge s->t is covered only when
   the edge is a *top* edge (horizontal, d.y == 0 and d.x > 0) or a *left* edge (d.y < 0), with d = t - s after
   the winding normalisation. Equivalently ``w + bias >= 0`` with ``bias = 0`` for top-left edges, else -1.
   Because edge functions are exact, two triangles sharing an edge never both cover, nor both miss, a pixel
   centre on it.
   Magnitudes: coordinates <= 2**18 px * 2**8 = 2**26, so every edge-function product is < 2**55: no overflow.
6. Depth (perspective-correct camera z, from the exact, unsnapped triangle): with ``n = (v1 - v0) x (v2 - v0)``
   (original face order), ``D = n . v0``, ``a = n.x / fx``, ``bq = (n.y - a * s) / fy``,
   ``g = n.z - a * cx - bq * cy`` and ``(al, be, ga) = (a / D, bq / D, g / D)``, the depth at full-image pixel
   (u = j, v = i) is ``z = 1.0 / (al * u + (be * v + ga))`` (1/z is affine in the image), clamped to the triangle's
   vertex z range (NaN -> zmin; this covers edge-on triangles and the sliver of extrapolation snapping allows),
   then ``depth = float32(z)``. IEEE semantics for division by zero. The nearest fragment wins; equal float32
   depths are resolved to the smaller face id.
"""

from __future__ import annotations

from iterpose.render._checks import GUARD_BAND_PX

__all__ = ["SUBPIXEL", "GUARD_BAND_PX", "BAND_ROWS"]

# 8 sub-pixel bits: with K's cx, cy shifted by -0.5 this reproduces BOP's scene_gt_info px_count_all exactly for
# 99.1% of LM-O test instances (bbox_obj 99.7%); 10 bits give 81% (benchmarks/bench_render.py).
SUBPIXEL = 256  # a power of two (the numba kernel divides by shifting); fixed-point steps per pixel (8 sub-pixel bits, like GPU rasterisers)
BAND_ROWS = 8  # rows per band in the numba kernel (each band is owned by one thread: no z-buffer races)
