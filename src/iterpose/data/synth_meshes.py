"""Meshes as NumPy arrays for fast scene assembly: the target models (:func:`prepare_objects`) and random
distractor / occluder primitives (boxes, ellipsoids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iterpose.errors import InvalidInputError
from iterpose.mesh.model import ObjectModel
from iterpose.mesh.model import vertex_normals

__all__ = ["MeshArrays", "mesh_arrays", "bbox_corners", "prepare_objects", "random_primitive"]

#: Albedo of a model without vertex colours (mid grey, as the renderer's default).
DEFAULT_ALBEDO = 0.7


@dataclass(frozen=True, eq=False)
class MeshArrays:
    """A mesh ready for fast scene assembly (numpy, model frame, metres).

    Attributes:
        vertices: ``[V, 3]`` float64 metres. faces: ``[F, 3]`` int64. colors: ``[V, 3]`` float32 albedo 0..1.
        normals: ``[V, 3]`` float32 unit vertex normals. center: ``[3]`` float64 bounding-box centre, metres.
        radius: bounding-sphere radius around ``center``, metres. obj_id: the object id (-1 for primitives).
        corners: ``[8, 3]`` float64 corners of the axis-aligned bounding box, metres (bounds the projection).
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    center: np.ndarray
    radius: float
    obj_id: int
    corners: np.ndarray


def bbox_corners(vertices: np.ndarray) -> np.ndarray:
    """``[8, 3]`` corners of the axis-aligned bounding box of ``vertices [V, 3]``."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    idx = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], bool)
    return np.where(idx, hi, lo)


def mesh_arrays(model: ObjectModel) -> MeshArrays:
    """``model`` as :class:`MeshArrays` (normals computed when it has none, :data:`DEFAULT_ALBEDO` grey when it has no
    colours)."""
    v32 = model.vertices.detach().cpu()
    v = v32.double().numpy()
    f = model.faces.detach().cpu().long().numpy()
    if model.vertex_colors is not None:
        c = model.vertex_colors.detach().cpu().float().numpy()
    else:
        c = np.full((v.shape[0], 3), DEFAULT_ALBEDO, np.float32)
    if model.vertex_normals is not None:
        n = model.vertex_normals.detach().cpu().float().numpy()
    else:
        n = vertex_normals(v32.float(), model.faces.detach().cpu().long()).numpy()
    center = (v.min(axis=0) + v.max(axis=0)) / 2
    radius = float(np.linalg.norm(v - center, axis=1).max())
    return MeshArrays(v, np.ascontiguousarray(f), np.ascontiguousarray(c), np.ascontiguousarray(n), center, radius,
                      int(model.obj_id), bbox_corners(v))


def prepare_objects(objects: Sequence[ObjectModel]) -> tuple[MeshArrays, ...]:
    """Convert the target models once (numpy views, bounding spheres, normals); reuse with
    :func:`generate_prepared`.

    Raises:
        InvalidInputError: ``objects`` is empty or holds something other than ObjectModel.
    """
    if isinstance(objects, dict):
        objects = list(objects.values())
    if not isinstance(objects, Sequence) or len(objects) == 0:
        raise InvalidInputError("generate_scene: objects must be a non-empty sequence of ObjectModel (e.g. "
                                "list(load_objects(dir).values()) or [example_object()])")
    for i, m in enumerate(objects):
        if not isinstance(m, ObjectModel):
            raise InvalidInputError(f"generate_scene: objects[{i}] is a {type(m).__name__}, expected ObjectModel")
    return tuple(mesh_arrays(m) for m in objects)


def _box(half: np.ndarray, color: np.ndarray) -> MeshArrays:
    """A box with half-extents ``half [3]`` (metres), 24 vertices (flat faces), 12 triangles."""
    v, n, f = [], [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            u_ax, w_ax = (axis + 1) % 3, (axis + 2) % 3
            if sign < 0:
                u_ax, w_ax = w_ax, u_ax
            base = len(v)
            for du, dw in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u_ax], p[w_ax] = sign, du, dw
                v.append(p * half)
                nn = np.zeros(3)
                nn[axis] = sign
                n.append(nn)
            f += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    v = np.array(v)
    return MeshArrays(v, np.array(f, np.int64), np.repeat(color[None], len(v), 0).astype(np.float32),
                      np.array(n, np.float32), np.zeros(3), float(np.linalg.norm(half)), -1, bbox_corners(v))


def _ellipsoid(half: np.ndarray, color: np.ndarray, n_lat: int = 8, n_lon: int = 16) -> MeshArrays:
    """A UV ellipsoid with semi-axes ``half [3]`` (metres)."""
    lat = np.linspace(0, np.pi, n_lat + 1)
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    st, ct = np.sin(lat)[:, None], np.cos(lat)[:, None]
    d = np.stack([st * np.cos(lon), st * np.sin(lon), np.broadcast_to(ct, (n_lat + 1, n_lon))], -1).reshape(-1, 3)
    v = d * half
    nrm = d / (half ** 2)
    nrm = nrm / np.linalg.norm(nrm, axis=1, keepdims=True).clip(1e-12)
    idx = np.arange((n_lat + 1) * n_lon).reshape(n_lat + 1, n_lon)
    a, b = idx[:-1], np.roll(idx[:-1], -1, axis=1)
    c, e = idx[1:], np.roll(idx[1:], -1, axis=1)
    f = np.concatenate([np.stack([a, c, e], -1).reshape(-1, 3), np.stack([a, e, b], -1).reshape(-1, 3)])
    return MeshArrays(v, f.astype(np.int64), np.repeat(color[None], len(v), 0).astype(np.float32),
                      nrm.astype(np.float32), np.zeros(3), float(half.max()), -1, bbox_corners(v))


def random_primitive(rng: np.random.Generator, size_range: tuple[float, float]) -> MeshArrays:
    """A box or an ellipsoid (even odds) with half-extents ``U(size_range)`` per axis and a uniform random colour."""
    half = rng.uniform(size_range[0], size_range[1], 3)
    color = rng.uniform(0.0, 1.0, 3)
    return _box(half, color) if rng.random() < 0.5 else _ellipsoid(half, color)
