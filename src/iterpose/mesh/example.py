"""A generated example object (no data file): an asymmetric, colourful, closed mesh about 14 cm across.

Used by the demo, tests and tutorials when no dataset is at hand. It is a rounded box (a superellipsoid) with a
"nose" and a smaller bump in two unrelated directions, so no rotation other than the identity maps it onto itself,
and it carries colour stripes, a checkerboard top and a green nose so photometric refiners have gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from iterpose.mesh.model import ObjectModel
from iterpose.mesh.models_info import pts_diameter

__all__ = ["example_object"]

_GRID = 14  # quads per cube-face side: 6 * 14 * 14 * 2 = 2352 triangles, 6 * 14**2 + 2 = 1178 vertices
_HALF_EXTENTS_M = np.array([0.055, 0.038, 0.028])
_EXPONENT = 0.6  # < 1: boxy superellipsoid
_BUMPS = (  # (direction, height m, width): radial bumps on the unit sphere of directions
    ((0.6, 0.5, 0.62), 0.025, 0.30),
    ((-0.4, -0.8, 0.3), 0.012, 0.25),
)
_PALETTE = np.array(
    [
        [0.85, 0.15, 0.10],  # red
        [0.95, 0.80, 0.10],  # yellow
        [0.10, 0.30, 0.85],  # blue
        [0.95, 0.95, 0.95],  # white
        [0.10, 0.10, 0.12],  # near black
        [0.10, 0.65, 0.25],  # green
    ],
    dtype=np.float32,
)


def _cube_surface_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``[V, 3]`` on the surface of the cube [-1, 1]^3 (shared along edges) and faces ``[F, 3]`` whose
    corners are counter-clockwise seen from outside."""
    index: dict[tuple[int, int, int], int] = {}
    verts: list[tuple[int, int, int]] = []

    def vid(p: tuple[int, int, int]) -> int:
        if p not in index:
            index[p] = len(verts)
            verts.append(p)
        return index[p]

    faces = []
    for axis in range(3):
        for sign in (1, -1):
            u_ax, v_ax = (axis + 1) % 3, (axis + 2) % 3
            if sign < 0:  # keep u x v = outward normal
                u_ax, v_ax = v_ax, u_ax
            for i in range(n):
                for j in range(n):
                    corners = []
                    for di, dj in ((0, 0), (1, 0), (1, 1), (0, 1)):
                        p = [0, 0, 0]
                        p[axis] = sign * n
                        p[u_ax] = 2 * (i + di) - n
                        p[v_ax] = 2 * (j + dj) - n
                        corners.append(vid(tuple(p)))
                    a, b, c, d = corners
                    faces += [(a, b, c), (a, c, d)]
    return np.array(verts, np.float64) / n, np.array(faces, np.int64)


def _colors(v: np.ndarray, nose_weight: np.ndarray) -> np.ndarray:
    """Per-vertex colours: 2 cm stripes along x (red/yellow/blue), a black-and-white checkerboard on top, a green
    nose. ``v`` is ``[V, 3]`` metres (centred), returns ``[V, 3]`` float32 in 0..1."""
    band = np.floor((v[:, 0] + 0.1) / 0.02).astype(np.int64) % 3
    colors = _PALETTE[band].copy()
    top = v[:, 2] > 0.6 * v[:, 2].max()
    checker = (np.floor(v[:, 0] / 0.015) + np.floor(v[:, 1] / 0.015)).astype(np.int64) % 2
    colors[top] = _PALETTE[3 + checker[top]]
    colors[nose_weight > 0.5] = _PALETTE[5]
    return colors


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    return vn / np.linalg.norm(vn, axis=1, keepdims=True)


def example_object(obj_id: int = 1) -> ObjectModel:
    """A deterministic, asymmetric, vertex-coloured example object built by code.

    Args:
        obj_id: the id to give it.

    Returns:
        ObjectModel named "example" on the CPU: 1178 vertices (float32, metres, origin at the bounding-box
        centre), 2352 faces (int64, counter-clockwise seen from outside, closed and watertight), vertex colours
        ``[V, 3]`` float32 0..1, unit vertex normals ``[V, 3]`` float32 pointing outwards, diameter about 0.15 m,
        no symmetries.
    """
    cube, faces = _cube_surface_grid(_GRID)
    d = cube / np.linalg.norm(cube, axis=1, keepdims=True)  # directions on the unit sphere
    v = _HALF_EXTENTS_M * np.sign(d) * np.abs(d) ** _EXPONENT  # superellipsoid: convex, star-shaped
    nose_weight = np.zeros(len(d))
    for k, (c, height, width) in enumerate(_BUMPS):
        c = np.array(c) / np.linalg.norm(c)
        w = np.exp(-np.sum((d - c) ** 2, axis=1) / (2 * width**2))
        v = v + height * w[:, None] * d
        if k == 0:
            nose_weight = w
    v = v - (v.min(axis=0) + v.max(axis=0)) / 2  # BOP convention: origin at the bounding-box centre
    v32 = v.astype(np.float32)
    return ObjectModel(
        obj_id=int(obj_id),
        name="example",
        vertices=torch.from_numpy(v32),
        faces=torch.from_numpy(faces),
        vertex_colors=torch.from_numpy(_colors(v, nose_weight)),
        vertex_normals=torch.from_numpy(_vertex_normals(v, faces).astype(np.float32)),
        diameter_m=pts_diameter(v32.astype(np.float64)),
        source=None,
    )
