"""Layout of a synthetic scene: where the targets, distractors and occluders go (poses only, no rendering).

Targets: camera depth ``z ~ U(distance_m)``, the projection of the bounding-box centre uniform in the image minus
``margin_px``, a random view direction and roll; bounding spheres overlap by at most ``max_sphere_overlap``.
Distractors (primitives, and with ``object_distractors`` recoloured copies of the object models) anywhere in view;
occluders between the camera and a random target.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iterpose.data.synth_config import SynthConfig
from iterpose.data.synth_meshes import MeshArrays, random_primitive

__all__ = ["Instance", "layout"]

#: Placements drawn for a target before accepting an overlapping one (crowded scenes).
TARGET_PLACEMENT_TRIES = 50
#: Placements drawn for a distractor before giving it up.
DISTRACTOR_PLACEMENT_TRIES = 20

def _rotation_z_to(r: np.ndarray) -> np.ndarray:
    """The rotation taking (0, 0, 1) to the unit vector ``r`` by the shortest arc (``r_z > 0`` here)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, r)
    s, c = np.linalg.norm(axis), float(r @ z)
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * Kx + (1 - c) * Kx @ Kx


def _view_rotation(rng: np.random.Generator, upper: bool) -> np.ndarray:
    """``R_view``: the object seen from a random unit direction ``d`` (object frame, object -> camera; uniform on
    the sphere or on the ``z >= 0`` hemisphere) with a uniform roll; its centre on the optical axis."""
    d = rng.standard_normal(3)
    d /= max(np.linalg.norm(d), 1e-12)
    if upper:
        d[2] = abs(d[2])
    zc = -d
    helper = np.array([1.0, 0.0, 0.0]) if abs(zc[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x0 = np.cross(helper, zc)
    x0 /= np.linalg.norm(x0)
    y0 = np.cross(zc, x0)
    roll = rng.uniform(0, 2 * np.pi)
    xc = math.cos(roll) * x0 + math.sin(roll) * y0
    yc = np.cross(zc, xc)
    return np.stack([xc, yc, zc])


def _pose_at(mesh: MeshArrays, R_view: np.ndarray, K: np.ndarray, u: float, v: float, z: float) -> np.ndarray:
    """``T_co [4, 4]`` float64 placing ``mesh``'s centre at camera depth ``z`` on the ray of pixel ``(u, v)``, seen
    as ``R_view`` describes (relative to the line of sight)."""
    ray = np.linalg.solve(K, np.array([u, v, 1.0]))
    p = ray * z
    R = _rotation_z_to(ray / np.linalg.norm(ray)) @ R_view
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = p - R @ mesh.center
    return T


def _fits(p: np.ndarray, r: float, placed: list[tuple[np.ndarray, float]], overlap: float) -> bool:
    return all(np.linalg.norm(p - q) >= (1.0 - overlap) * (r + s) for q, s in placed)


@dataclass(frozen=True)
class Instance:
    """One mesh placed in the scene."""

    mesh: MeshArrays
    T_co: np.ndarray  # [4, 4] float64 (values representable in float32)
    target_index: int  # index into `objects` for targets, -1 for distractors/occluders


def _f32(T: np.ndarray) -> np.ndarray:
    return T.astype(np.float32).astype(np.float64)


def layout(meshes: Sequence[MeshArrays], config: SynthConfig, rng: np.random.Generator,
           clutter: bool) -> list[Instance]:
    """The instances of one scene: targets first (``target_index >= 0``), then, with ``clutter``, distractors and
    occluders (``target_index = -1``). Every random draw comes from ``rng``, in this order."""
    placed: list[tuple[np.ndarray, float]] = []  # (bounding-sphere centre in the camera frame, radius)
    targets = _place_targets(meshes, config, rng, placed)
    if not clutter:
        return targets
    distractors = _place_distractors(config, rng, placed)
    if config.object_distractors[1] > 0:  # no draw otherwise: scenes of older configs stay bit-identical
        distractors += _place_object_distractors(meshes, config, rng, placed)
    return targets + distractors + _place_occluders(targets, config, rng, placed)


def _place_targets(meshes: Sequence[MeshArrays], config: SynthConfig, rng: np.random.Generator,
                   placed: list[tuple[np.ndarray, float]]) -> list[Instance]:
    K = config.K_matrix
    H, W, m = config.height, config.width, float(config.margin_px)
    lo, hi = config.objects_per_image
    n = int(rng.integers(lo, hi + 1))
    if n <= len(meshes):
        chosen = rng.choice(len(meshes), size=n, replace=False)
    else:
        chosen = np.concatenate([rng.permutation(len(meshes)), rng.integers(0, len(meshes), n - len(meshes))])
    upper = config.viewpoint == "upper_hemisphere"
    out: list[Instance] = []
    for idx in chosen:
        mesh = meshes[int(idx)]
        T = None
        for _ in range(TARGET_PLACEMENT_TRIES):
            u = rng.uniform(m - 0.5, W - 0.5 - m)
            v = rng.uniform(m - 0.5, H - 0.5 - m)
            z = rng.uniform(*config.distance_m)
            cand = _f32(_pose_at(mesh, _view_rotation(rng, upper), K, u, v, z))
            centre = cand[:3, :3] @ mesh.center + cand[:3, 3]
            if _fits(centre, mesh.radius, placed, config.max_sphere_overlap):
                T = cand
                break
        if T is None:  # crowded: accept overlap rather than loop forever (rare with sane settings)
            T = cand
        placed.append((T[:3, :3] @ mesh.center + T[:3, 3], mesh.radius))
        out.append(Instance(mesh, T, int(idx)))
    return out


def _place_distractors(config: SynthConfig, rng: np.random.Generator, placed: list[tuple[np.ndarray, float]]
                       ) -> list[Instance]:
    K = config.K_matrix
    H, W = config.height, config.width
    out: list[Instance] = []
    for _ in range(int(rng.integers(config.distractors[0], config.distractors[1] + 1))):
        prim = random_primitive(rng, config.distractor_size_m)
        for _ in range(DISTRACTOR_PLACEMENT_TRIES):
            u, v = rng.uniform(-0.5, W - 0.5), rng.uniform(-0.5, H - 0.5)
            z = rng.uniform(*config.distance_m)
            T = _f32(_pose_at(prim, _view_rotation(rng, False), K, u, v, z))
            if _fits(T[:3, 3], prim.radius, placed, config.max_sphere_overlap):
                placed.append((T[:3, 3], prim.radius))
                out.append(Instance(prim, T, -1))
                break
    return out


def recoloured(mesh: MeshArrays, rng: np.random.Generator) -> MeshArrays:
    """``mesh`` as a distractor (``obj_id`` -1) with its colours' channels shuffled and blended with a random
    colour by 30-80 %: the shape and the shading detail of a real object, not the look of a target."""
    alpha = rng.uniform(0.3, 0.8)
    colors = (1.0 - alpha) * mesh.colors[:, rng.permutation(3)] + alpha * rng.uniform(0.0, 1.0, 3)
    return dataclasses.replace(mesh, colors=colors.astype(np.float32), obj_id=-1)


def _place_object_distractors(meshes: Sequence[MeshArrays], config: SynthConfig, rng: np.random.Generator,
                              placed: list[tuple[np.ndarray, float]]) -> list[Instance]:
    K = config.K_matrix
    H, W = config.height, config.width
    upper = config.viewpoint == "upper_hemisphere"
    out: list[Instance] = []
    for _ in range(int(rng.integers(config.object_distractors[0], config.object_distractors[1] + 1))):
        mesh = recoloured(meshes[int(rng.integers(len(meshes)))], rng)
        for _ in range(DISTRACTOR_PLACEMENT_TRIES):
            u, v = rng.uniform(-0.5, W - 0.5), rng.uniform(-0.5, H - 0.5)
            T = _f32(_pose_at(mesh, _view_rotation(rng, upper), K, u, v, rng.uniform(*config.distance_m)))
            centre = T[:3, :3] @ mesh.center + T[:3, 3]
            if _fits(centre, mesh.radius, placed, config.max_sphere_overlap):
                placed.append((centre, mesh.radius))
                out.append(Instance(mesh, T, -1))
                break
    return out


def _place_occluders(targets: list[Instance], config: SynthConfig, rng: np.random.Generator,
                     placed: list[tuple[np.ndarray, float]]) -> list[Instance]:
    K = config.K_matrix
    f = 0.5 * (K[0, 0] + K[1, 1])
    out: list[Instance] = []
    for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
        tgt = targets[int(rng.integers(len(targets)))]
        c = tgt.T_co[:3, :3] @ tgt.mesh.center + tgt.T_co[:3, 3]
        frac = rng.uniform(0.45, 0.8)
        z = c[2] * frac
        size = tgt.mesh.radius * frac * rng.uniform(0.25, 0.5)  # projected: 25-50 % of the target's radius
        prim = random_primitive(rng, (0.5 * size, size))
        r_px = f * tgt.mesh.radius / c[2]
        ang = rng.uniform(0, 2 * np.pi)
        off = r_px * rng.uniform(0.3, 1.0)
        u0, v0 = (K @ (c / c[2]))[:2]
        T = _f32(_pose_at(prim, _view_rotation(rng, False), K, u0 + off * math.cos(ang), v0 + off * math.sin(ang),
                          max(z, 0.05 + prim.radius)))
        if _fits(T[:3, 3], prim.radius, placed, config.max_sphere_overlap):
            placed.append((T[:3, 3], prim.radius))
            out.append(Instance(prim, T, -1))
    return out
