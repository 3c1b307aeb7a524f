"""`ObjectModel`: one rigid object's mesh in metres, with what rendering and evaluation need."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["ObjectModel", "ContinuousSymmetry", "vertex_normals"]


@dataclass(frozen=True)
class ContinuousSymmetry:
    """A continuous rotational symmetry in the model frame (BOP ``symmetries_continuous``).

    Attributes:
        axis: ``(3,)`` unit axis of rotation in the model frame.
        offset_m: ``(3,)`` a point on the axis, metres, model frame.
    """

    axis: tuple[float, float, float]
    offset_m: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class ObjectModel:
    """A rigid object model. Immutable; :meth:`to` returns a new object.

    Attributes:
        obj_id: integer id (the BOP ``obj_id``; any int for a user's own objects).
        name: human-readable name (file stem by default).
        vertices: ``[V, 3]`` float32, metres, model frame.
        faces: ``[F, 3]`` int64 vertex indices, counter-clockwise seen from outside.
        vertex_colors: ``[V, 3]`` float32 RGB in 0..1, or ``None`` when the file has no colours.
        vertex_normals: ``[V, 3]`` float32 unit normals, or ``None`` when the file has none.
        diameter_m: largest distance between two vertices, metres (BOP ``diameter`` / 1000 when known).
        symmetries_discrete: ``[S, 4, 4]`` float64 model-frame transforms (translation in metres) that leave the
            object's appearance unchanged, identity *not* included; ``[0, 4, 4]`` when none.
        symmetries_continuous: tuple of :class:`ContinuousSymmetry`.
        source: the file the mesh was read from, or ``None`` for generated meshes.
    """

    obj_id: int
    name: str
    vertices: torch.Tensor
    faces: torch.Tensor
    vertex_colors: torch.Tensor | None
    vertex_normals: torch.Tensor | None
    diameter_m: float
    symmetries_discrete: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4, 4, dtype=torch.float64))
    symmetries_continuous: tuple[ContinuousSymmetry, ...] = ()
    source: str | None = None

    @property
    def device(self) -> torch.device:
        return self.vertices.device

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def is_symmetric(self) -> bool:
        """True when the object has any discrete or continuous symmetry (ADD-S is used for it in "AD")."""
        return self.symmetries_discrete.shape[0] > 0 or len(self.symmetries_continuous) > 0

    def to(self, device: torch.device | str) -> "ObjectModel":
        """Return a copy whose tensors live on ``device`` (symmetries stay float64)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return dataclasses.replace(
            self,
            vertices=move(self.vertices),
            faces=move(self.faces),
            vertex_colors=move(self.vertex_colors),
            vertex_normals=move(self.vertex_normals),
            symmetries_discrete=move(self.symmetries_discrete),
        )

    def mesh_hash(self) -> str:
        """SHA-256 (hex, first 16 chars) of vertices (rounded to 1 µm) and faces: identifies the geometry in
        checkpoints independently of file format and device."""
        v = np.round(self.vertices.detach().cpu().double().numpy() * 1e6).astype(np.int64)
        f = self.faces.detach().cpu().numpy().astype(np.int64)
        h = hashlib.sha256()
        h.update(v.tobytes())
        h.update(f.tobytes())
        return h.hexdigest()[:16]

    def sample_points(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``n`` points uniformly on the surface (area-weighted). Returns ``[n, 3]`` float32 metres."""
        v = self.vertices
        tri = v[self.faces]  # [F, 3, 3]
        area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=-1) / 2
        idx = torch.multinomial(area.cpu().double(), n, replacement=True, generator=generator).to(v.device)
        uv = torch.rand(n, 2, generator=generator).to(v.device, v.dtype)
        flip = uv.sum(-1) > 1
        uv[flip] = 1 - uv[flip]
        t = tri[idx]
        return t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])

    def __repr__(self) -> str:
        return (
            f"ObjectModel(obj_id={self.obj_id}, name={self.name!r}, V={self.num_vertices}, F={self.num_faces}, "
            f"diameter_m={self.diameter_m:.4f}, colors={self.vertex_colors is not None}, "
            f"symmetric={self.is_symmetric}, device={self.device})"
        )


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals ``[V, 3]`` (unit, 0 for unused vertices) of ``vertices [V, 3]``,
    ``faces [F, 3]``, oriented by the face winding (counter-clockwise seen from outside)."""
    tri = vertices[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)
