"""Synthetic scenes: target objects at random in-view poses, distractors, occluders, lighting, backgrounds, noise.

One scene is made by :func:`generate_scene` from a list of :class:`~iterpose.mesh.ObjectModel` and a
:class:`SynthConfig`; every random choice comes from the one ``numpy.random.Generator`` it is given. Use
:func:`scene_rng` (``seed + image index``) to make image ``k`` reproducible on its own: that is what makes the BOP
writer's resume exact and DataLoader workers deterministic.

Conventions: metres and radians; ``T_co [N, 4, 4]`` float32 object-to-camera; ``K`` OpenCV (centre of pixel
(row i, col j) at (x=j, y=i)); images float32 ``[3, H, W]`` RGB 0..1. Masks and boxes are those of iterpose's own
rasteriser with this ``K`` (they are the ground truth here; no BOP half-pixel shift is involved).

Pipeline of one scene (costs measured in ``benchmarks/bench_synth.py``):

1. layout: ``n`` targets (distinct objects when possible), each at camera depth ``z ~ U(distance_m)`` with the
   projection of its bounding-box centre uniform in the image minus ``margin_px``, seen from a uniformly random
   (or upper-hemisphere) direction with a random roll; distractor primitives (boxes, ellipsoids) anywhere in view;
   occluder primitives between the camera and a target. Bounding spheres may overlap by at most
   ``max_sphere_overlap`` of the sum of radii (else the placement is redrawn).
2. each mesh rasterised alone in its projected window (:func:`iterpose.render.rasterize`), the windows composited
   by depth (exactly one z-buffer of all meshes, and each target's full mask for free), per-vertex (Gouraud)
   Lambert shading with a random directional light, interpolated perspective-correctly by a small numba kernel;
3. layouts whose targets are less visible than ``min_visib_fract`` are redrawn (after ``max_tries`` the
   occluders and distractors are dropped);
4. background (procedural or a folder of images), colour jitter, optional Gaussian blur, sensor noise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numba
import numpy as np
import torch

from iterpose.data.backgrounds import (
    fast_procedural_background,
    gaussian_noise,
    image_background,
    list_background_images,
)
from iterpose.data.perturb import PerturbConfig
from iterpose.errors import InvalidInputError
from iterpose.mesh.model import ObjectModel
from iterpose.render import rasterize, vertex_normals

__all__ = [
    "LMO_K",
    "SynthConfig",
    "SynthScene",
    "generate_scene",
    "scene_rng",
    "MeshArrays",
    "prepare_objects",
    "generate_prepared",
    "bbox_xywh",
    "interpolate_colors",
    "interpolate_colors_reference",
]

LMO_K = (572.4114, 0.0, 325.2611, 0.0, 573.57043, 242.04899, 0.0, 0.0, 1.0)
"""LM-O's intrinsics (row-major, pixels) for 640 x 480 images: the default camera."""

_Range = tuple[float, float]


def _check_range(name: str, r, lo: float = -math.inf, hi: float = math.inf, integer: bool = False) -> None:
    ok = isinstance(r, (tuple, list)) and len(r) == 2
    if ok:
        kinds = (int,) if integer else (int, float)
        ok = all(isinstance(v, kinds) and not isinstance(v, bool) and math.isfinite(v) for v in r)
    if not ok or not (lo <= r[0] <= r[1] <= hi):
        kind = "ints" if integer else "numbers"
        raise InvalidInputError(f"SynthConfig.{name}: expected (min, max) {kind} with {lo} <= min <= max <= {hi}, "
                                f"got {r!r}")


@dataclass(frozen=True)
class SynthConfig:
    """Everything random about a synthetic scene, checked when built (:class:`~iterpose.errors.InvalidInputError`
    or :class:`~iterpose.errors.MissingFileError` naming the field).

    Attributes:
        height, width: image size in pixels.
        K: 9 row-major intrinsics in pixels (OpenCV); default :data:`LMO_K` (LM-O, for 640 x 480).
        objects_per_image: (min, max) target objects per image, inclusive; distinct objects while there are enough.
        distance_m: (min, max) camera-frame depth z of a target's bounding-box centre, metres (LM-like 0.5-1.5).
        margin_px: the target centre's projection stays this many pixels inside the image border.
        viewpoint: "uniform" (any direction on the sphere) or "upper_hemisphere" (the camera sees the object from
            its +z side, e.g. objects standing on a table).
        distractors: (min, max) random primitive meshes (boxes, ellipsoids, random colours) anywhere in view.
        distractor_size_m: (min, max) half-extent of a distractor along each axis, metres.
        occluders: (min, max) primitives placed between the camera and a random target, partly covering it.
        max_sphere_overlap: bounding spheres of two meshes may overlap by at most this fraction of the sum of their
            radii (0 = disjoint spheres).
        min_visib_fract: every target must be at least this visible (visible / full silhouette pixels).
        max_tries: layouts drawn before falling back to targets only (no occluders, no distractors); if the
            targets still hide each other then, only the most visible one is kept (fewer targets than
            ``objects_per_image[0]``: rare unless the image is crowded).
        light_max_angle_deg: the light comes from within this angle of the camera's viewing direction.
        ambient, diffuse: (min, max) of the ambient and diffuse weights of the Lambert shading.
        background: "procedural" (colour field + shapes + noise) or a folder of the user's images (random crops).
        noise_std: (min, max) standard deviation of additive Gaussian sensor noise (0..1 units).
        blur_prob: probability of a Gaussian blur of the whole image.
        blur_sigma_px: (min, max) blur sigma, pixels.
        gain: (min, max) per-channel multiplicative colour jitter.
        bias: (min, max) per-channel additive colour jitter (0..1 units).
        perturb: the DeepIM-style noise of the initial poses (:class:`~iterpose.data.perturb.PerturbConfig`).
        crop_hw: (height, width) of the zoomed crops of :class:`~iterpose.data.synth_dataset.SynthPoseDataset`.
        crop_margin: crop half-size = projected bounding-sphere radius x this margin.
    """

    height: int = 480
    width: int = 640
    K: tuple[float, ...] = LMO_K
    objects_per_image: tuple[int, int] = (1, 3)
    distance_m: _Range = (0.5, 1.5)
    margin_px: float = 16.0
    viewpoint: Literal["uniform", "upper_hemisphere"] = "uniform"
    distractors: tuple[int, int] = (0, 3)
    distractor_size_m: _Range = (0.02, 0.06)
    occluders: tuple[int, int] = (0, 1)
    max_sphere_overlap: float = 0.2
    min_visib_fract: float = 0.3
    max_tries: int = 10
    light_max_angle_deg: float = 60.0
    ambient: _Range = (0.3, 0.7)
    diffuse: _Range = (0.3, 0.7)
    background: str = "procedural"
    noise_std: _Range = (0.0, 0.02)
    blur_prob: float = 0.3
    blur_sigma_px: _Range = (0.4, 1.2)
    gain: _Range = (0.85, 1.15)
    bias: _Range = (-0.05, 0.05)
    perturb: PerturbConfig = PerturbConfig()
    crop_hw: tuple[int, int] = (240, 320)
    crop_margin: float = 1.3

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 8:
                raise InvalidInputError(f"SynthConfig.{name}: expected an int >= 8 pixels, got {v!r}")
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (9,) or not np.isfinite(K).all() or K[0] <= 0 or K[4] <= 0 or K[3] != 0 \
                or tuple(K[6:]) != (0.0, 0.0, 1.0):
            raise InvalidInputError(f"SynthConfig.K: expected 9 row-major numbers [fx, 0, cx, 0, fy, cy, 0, 0, 1] "
                                    f"with fx, fy > 0, got {self.K!r}")
        _check_range("objects_per_image", self.objects_per_image, 1, 1000, integer=True)
        _check_range("distance_m", self.distance_m, 0.02, 600.0)
        if not (isinstance(self.margin_px, (int, float)) and 0 <= self.margin_px < min(self.height, self.width) / 2):
            raise InvalidInputError(f"SynthConfig.margin_px: expected 0 <= margin < half the image size "
                                    f"({min(self.height, self.width) / 2} px), got {self.margin_px!r}")
        if self.viewpoint not in ("uniform", "upper_hemisphere"):
            raise InvalidInputError(f"SynthConfig.viewpoint: expected 'uniform' or 'upper_hemisphere', got "
                                    f"{self.viewpoint!r}")
        _check_range("distractors", self.distractors, 0, 1000, integer=True)
        _check_range("distractor_size_m", self.distractor_size_m, 1e-3, 10.0)
        _check_range("occluders", self.occluders, 0, 1000, integer=True)
        for name, lo, hi in (("max_sphere_overlap", 0.0, 1.0), ("min_visib_fract", 0.0, 1.0),
                             ("blur_prob", 0.0, 1.0), ("light_max_angle_deg", 0.0, 90.0)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi):
                raise InvalidInputError(f"SynthConfig.{name}: expected a number in [{lo}, {hi}], got {v!r}")
        if not (isinstance(self.max_tries, int) and self.max_tries >= 1):
            raise InvalidInputError(f"SynthConfig.max_tries: expected an int >= 1, got {self.max_tries!r}")
        _check_range("ambient", self.ambient, 0.0, 2.0)
        _check_range("diffuse", self.diffuse, 0.0, 2.0)
        _check_range("noise_std", self.noise_std, 0.0, 1.0)
        _check_range("blur_sigma_px", self.blur_sigma_px, 0.0, 50.0)
        _check_range("gain", self.gain, 0.0, 10.0)
        _check_range("bias", self.bias, -1.0, 1.0)
        if not isinstance(self.perturb, PerturbConfig):
            raise InvalidInputError(f"SynthConfig.perturb: expected a PerturbConfig, got {type(self.perturb).__name__}")
        ok = isinstance(self.crop_hw, (tuple, list)) and len(self.crop_hw) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in self.crop_hw)
        if not ok:
            raise InvalidInputError(f"SynthConfig.crop_hw: expected (height, width) ints >= 8, got {self.crop_hw!r}")
        if not (isinstance(self.crop_margin, (int, float)) and self.crop_margin > 0):
            raise InvalidInputError(f"SynthConfig.crop_margin: expected a number > 0, got {self.crop_margin!r}")
        if not isinstance(self.background, (str, Path)) or not str(self.background):
            raise InvalidInputError(f"SynthConfig.background: expected 'procedural' or a folder path, got "
                                    f"{self.background!r}")
        if str(self.background) != "procedural":
            list_background_images(self.background)  # MissingFileError when missing or empty

    @property
    def K_matrix(self) -> np.ndarray:
        """``[3, 3]`` float64 intrinsics (pixels)."""
        return np.asarray(self.K, dtype=np.float64).reshape(3, 3)

    def to_dict(self) -> dict:
        """A JSON/YAML-able dict of all fields (``perturb`` nested)."""
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class SynthScene:
    """One synthetic image with its ground truth (targets only; distractors and occluders are not listed).

    Attributes:
        rgb: ``[3, H, W]`` float32 RGB in 0..1 (after background, jitter, blur and noise); a channel-first view of
            an ``[H, W, 3]`` buffer (not contiguous: call ``.contiguous()`` where that matters).
        depth_m: ``[H, W]`` float32 camera z in metres of the nearest surface (targets, distractors, occluders),
            0 on the background.
        K: ``[3, 3]`` float32 intrinsics, pixels.
        obj_ids: ``[N]`` int64 object id of each target.
        obj_index: ``[N]`` int64 index of each target's model in the ``objects`` sequence given.
        T_co: ``[N, 4, 4]`` float32 object-to-camera poses, metres (the exact poses that were rendered).
        mask_full: ``[N, H, W]`` bool silhouette of each target alone (inside the image).
        mask_visible: ``[N, H, W]`` bool pixels where the target is the nearest surface.
        px_count_all: ``[N]`` int64 pixels of ``mask_full`` (BOP ``px_count_all``; ``px_count_valid`` equals it
            because the synthetic depth is defined on every object pixel).
        px_count_visib: ``[N]`` int64 pixels of ``mask_visible``.
        visib_fract: ``[N]`` float64 ``px_count_visib / px_count_all`` (0 when ``px_count_all`` is 0).
        bbox_obj: ``[N, 4]`` int64 ``(x, y, w, h)`` box of ``mask_full`` (BOP convention, bop_toolkit's
            ``calc_2d_bbox``: x = first column, w = last - first, no +1), ``(-1, -1, -1, -1)`` when empty.
        bbox_visib: ``[N, 4]`` int64 the same for ``mask_visible``.
    """

    rgb: torch.Tensor
    depth_m: torch.Tensor
    K: torch.Tensor
    obj_ids: torch.Tensor
    obj_index: torch.Tensor
    T_co: torch.Tensor
    mask_full: torch.Tensor
    mask_visible: torch.Tensor
    px_count_all: torch.Tensor
    px_count_visib: torch.Tensor
    visib_fract: torch.Tensor
    bbox_obj: torch.Tensor
    bbox_visib: torch.Tensor

    @property
    def num_instances(self) -> int:
        return int(self.T_co.shape[0])


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of image ``index`` for a run seeded with ``seed``: ``default_rng(seed + index)``."""
    return np.random.default_rng(int(seed) + int(index))


# ----------------------------------------------------------------------------------------------------------------
# Meshes as numpy arrays
# ----------------------------------------------------------------------------------------------------------------


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
    obj_id: int = -1
    corners: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.corners is None:
            lo, hi = self.vertices.min(axis=0), self.vertices.max(axis=0)
            idx = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], bool)
            object.__setattr__(self, "corners", np.where(idx, hi, lo))


def _mesh_arrays(model: ObjectModel) -> MeshArrays:
    v32 = model.vertices.detach().cpu()
    v = v32.double().numpy()
    f = model.faces.detach().cpu().long().numpy()
    if model.vertex_colors is not None:
        c = model.vertex_colors.detach().cpu().float().numpy()
    else:
        c = np.full((v.shape[0], 3), 0.7, np.float32)
    if model.vertex_normals is not None:
        n = model.vertex_normals.detach().cpu().float().numpy()
    else:
        n = vertex_normals(v32.float(), model.faces.detach().cpu().long()).numpy()
    center = (v.min(axis=0) + v.max(axis=0)) / 2
    radius = float(np.linalg.norm(v - center, axis=1).max())
    return MeshArrays(v, np.ascontiguousarray(f), np.ascontiguousarray(c), np.ascontiguousarray(n), center, radius,
                      int(model.obj_id))


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
    return tuple(_mesh_arrays(m) for m in objects)


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
                      np.array(n, np.float32), np.zeros(3), float(np.linalg.norm(half)))


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
                      nrm.astype(np.float32), np.zeros(3), float(half.max()))


def _primitive(rng: np.random.Generator, size_range: _Range) -> MeshArrays:
    half = rng.uniform(size_range[0], size_range[1], 3)
    color = rng.uniform(0.0, 1.0, 3)
    return _box(half, color) if rng.random() < 0.5 else _ellipsoid(half, color)


# ----------------------------------------------------------------------------------------------------------------
# Layout
# ----------------------------------------------------------------------------------------------------------------


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
class _Instance:
    mesh: MeshArrays
    T_co: np.ndarray  # [4, 4] float64 (values representable in float32)
    target_index: int  # index into `objects` for targets, -1 for distractors/occluders


def _f32(T: np.ndarray) -> np.ndarray:
    return T.astype(np.float32).astype(np.float64)


def _layout(meshes: Sequence[MeshArrays], config: SynthConfig, rng: np.random.Generator,
            clutter: bool) -> list[_Instance]:
    K = config.K_matrix
    H, W, m = config.height, config.width, float(config.margin_px)
    lo, hi = config.objects_per_image
    n = int(rng.integers(lo, hi + 1))
    if n <= len(meshes):
        chosen = rng.choice(len(meshes), size=n, replace=False)
    else:
        chosen = np.concatenate([rng.permutation(len(meshes)), rng.integers(0, len(meshes), n - len(meshes))])
    upper = config.viewpoint == "upper_hemisphere"
    placed: list[tuple[np.ndarray, float]] = []
    out: list[_Instance] = []
    for idx in chosen:
        mesh = meshes[int(idx)]
        T = None
        for _ in range(50):
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
        out.append(_Instance(mesh, T, int(idx)))
    if not clutter:
        return out
    targets = list(out)
    for _ in range(int(rng.integers(config.distractors[0], config.distractors[1] + 1))):
        prim = _primitive(rng, config.distractor_size_m)
        for _ in range(20):
            u, v = rng.uniform(-0.5, W - 0.5), rng.uniform(-0.5, H - 0.5)
            z = rng.uniform(*config.distance_m)
            T = _f32(_pose_at(prim, _view_rotation(rng, False), K, u, v, z))
            if _fits(T[:3, 3], prim.radius, placed, config.max_sphere_overlap):
                placed.append((T[:3, 3], prim.radius))
                out.append(_Instance(prim, T, -1))
                break
    f = 0.5 * (K[0, 0] + K[1, 1])
    for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
        tgt = targets[int(rng.integers(len(targets)))]
        c = tgt.T_co[:3, :3] @ tgt.mesh.center + tgt.T_co[:3, 3]
        frac = rng.uniform(0.45, 0.8)
        z = c[2] * frac
        size = tgt.mesh.radius * frac * rng.uniform(0.25, 0.5)  # projected: 25-50 % of the target's radius
        prim = _primitive(rng, (0.5 * size, size))
        r_px = f * tgt.mesh.radius / c[2]
        ang = rng.uniform(0, 2 * np.pi)
        off = r_px * rng.uniform(0.3, 1.0)
        u0, v0 = (K @ (c / c[2]))[:2]
        T = _f32(_pose_at(prim, _view_rotation(rng, False), K, u0 + off * math.cos(ang), v0 + off * math.sin(ang),
                          max(z, 0.05 + prim.radius)))
        if _fits(T[:3, 3], prim.radius, placed, config.max_sphere_overlap):
            placed.append((T[:3, 3], prim.radius))
            out.append(_Instance(prim, T, -1))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Shading and interpolation
# ----------------------------------------------------------------------------------------------------------------


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
    """Slow, vectorised NumPy reference of :func:`interpolate_colors` (same arguments, same result)."""
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


# ----------------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    color: np.ndarray  # [H, W, 3] float32 shaded objects, 0 on background
    depth: np.ndarray  # [H, W] float32
    instance: np.ndarray  # [H, W] int64, -1 background
    mask_full: np.ndarray  # [N_targets, H, W] bool


def _to_cam(inst: _Instance) -> tuple[np.ndarray, np.ndarray]:
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


_NEAR_M = 0.01  # iterpose.render.rasterize's default near plane


def _render(instances: list[_Instance], n_targets: int, config: SynthConfig, light: np.ndarray, ambient: float,
            diffuse: float) -> _Rendered:
    """Rasterise each instance alone in its projected window (so every face is set up once) and composite the
    windows by depth: the same face ids and depths as one z-buffer of all meshes (depth ties go to the earlier
    instance, as they go to the smaller face id there), plus each target's full mask for free."""
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
        shade = np.float32(ambient) + np.float32(diffuse) * np.abs(nc @ light.astype(np.float32))
        cols = np.clip(mesh.colors * shade[:, None], 0.0, 1.0)
        c = interpolate_colors(np.where(mine, fid, -1), vc, mesh.faces, cols, K, (x0, y0))
        cw = color[y0:y1 + 1, x0:x1 + 1]
        cw[mine] = c[mine]
    depth = np.where(inst_id >= 0, zbuf, np.float32(0.0)).astype(np.float32)
    return _Rendered(color, depth, inst_id, mask_full)


def _augment(img: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter (per-channel gain and bias), optional blur, sensor noise; ``img [H, W, 3]`` float32 0..1.
    Returns a new or the same array, clipped to 0..1."""
    gain = rng.uniform(*config.gain, 3)
    bias = rng.uniform(*config.bias, 3)
    M = np.concatenate([np.diag(gain), bias[:, None]], axis=1).astype(np.float32)
    img = cv2.transform(img, M)  # one pass: out_c = gain_c * in_c + bias_c
    if rng.random() < config.blur_prob:
        sigma = float(rng.uniform(*config.blur_sigma_px))
        if sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
    std = float(rng.uniform(*config.noise_std))
    if std > 0:
        img = cv2.scaleAdd(gaussian_noise(config.height, config.width, rng, 1.0), std, img)
    return np.clip(img, 0.0, 1.0, out=img)


def _background(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    if str(config.background) == "procedural":
        return fast_procedural_background(config.height, config.width, rng)
    return image_background(_background_files(str(config.background)), config.height, config.width, rng)


_BG_FILES: dict[str, tuple] = {}


def _background_files(folder: str) -> tuple:
    files = _BG_FILES.get(folder)
    if files is None:
        files = _BG_FILES[folder] = list_background_images(folder)
    return files


def generate_prepared(meshes: Sequence[MeshArrays], config: SynthConfig, rng: np.random.Generator) -> SynthScene:
    """:func:`generate_scene` on meshes already converted by :func:`prepare_objects` (faster when repeated)."""
    if not isinstance(config, SynthConfig):
        raise InvalidInputError(f"generate_scene: config must be a SynthConfig, got {type(config).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InvalidInputError(f"generate_scene: rng must be a numpy.random.Generator (e.g. scene_rng(seed, k)), "
                                f"got {type(rng).__name__}")
    for attempt in range(config.max_tries + 1):
        clutter = attempt < config.max_tries
        instances = _layout(meshes, config, rng, clutter)
        n = sum(inst.target_index >= 0 for inst in instances)
        theta = math.radians(rng.uniform(0.0, config.light_max_angle_deg))
        phi = rng.uniform(0.0, 2 * np.pi)
        light = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), -math.cos(theta)])
        ambient, diffuse = rng.uniform(*config.ambient), rng.uniform(*config.diffuse)
        ren = _render(instances, n, config, light, ambient, diffuse)
        mask_visible = ren.instance[None] == np.arange(n)[:, None, None]
        px_all = ren.mask_full.reshape(n, -1).sum(1)
        px_vis = mask_visible.reshape(n, -1).sum(1)
        visib = np.where(px_all > 0, px_vis / np.maximum(px_all, 1), 0.0)
        if (visib >= config.min_visib_fract).all():
            break
        if not clutter and n > 1:  # targets hide each other: keep the most visible one only
            keep = int(np.argmax(visib))
            instances = [instances[keep]]
            n = 1
            ren = _render(instances, 1, config, light, ambient, diffuse)
            mask_visible = ren.instance[None] == 0
            px_all = ren.mask_full.reshape(1, -1).sum(1)
            px_vis = mask_visible.reshape(1, -1).sum(1)
            visib = np.where(px_all > 0, px_vis / np.maximum(px_all, 1), 0.0)
    img = _background(config, rng)
    on = ren.instance >= 0
    img[on] = ren.color[on]
    img = _augment(img, config, rng)
    targets = instances[:n]
    T = np.stack([inst.T_co for inst in targets]).astype(np.float32)
    return SynthScene(
        rgb=torch.from_numpy(img).permute(2, 0, 1),  # a [3, H, W] view of the [H, W, 3] buffer
        depth_m=torch.from_numpy(ren.depth),
        K=torch.from_numpy(config.K_matrix.astype(np.float32)),
        obj_ids=torch.tensor([inst.mesh.obj_id for inst in targets], dtype=torch.int64),
        obj_index=torch.tensor([inst.target_index for inst in targets], dtype=torch.int64),
        T_co=torch.from_numpy(T),
        mask_full=torch.from_numpy(ren.mask_full),
        mask_visible=torch.from_numpy(mask_visible),
        px_count_all=torch.from_numpy(px_all.astype(np.int64)),
        px_count_visib=torch.from_numpy(px_vis.astype(np.int64)),
        visib_fract=torch.from_numpy(visib.astype(np.float64)),
        bbox_obj=torch.tensor([bbox_xywh(m) for m in ren.mask_full], dtype=torch.int64).reshape(n, 4),
        bbox_visib=torch.tensor([bbox_xywh(m) for m in mask_visible], dtype=torch.int64).reshape(n, 4),
    )


def generate_scene(objects: Sequence[ObjectModel], config: SynthConfig, rng: np.random.Generator) -> SynthScene:
    """Generate one synthetic image with its ground truth.

    Args:
        objects: the target models (any number >= 1; the same model may be drawn several times when
            ``objects_per_image`` exceeds their number). Object ids come from ``ObjectModel.obj_id``.
        config: the :class:`SynthConfig`.
        rng: the only source of randomness (use :func:`scene_rng` for per-image seeds).

    Returns:
        :class:`SynthScene` on the CPU.

    Raises:
        InvalidInputError: empty ``objects``, a non-model entry, a bad ``config`` or ``rng``.

    Example:
        >>> from iterpose.mesh import example_object
        >>> cfg = SynthConfig(height=120, width=160, K=(150.0, 0, 80, 0, 150.0, 60, 0, 0, 1))
        >>> s = generate_scene([example_object()], cfg, scene_rng(0, 0))
        >>> s.rgb.shape, s.T_co.dtype
        (torch.Size([3, 120, 160]), torch.float32)
    """
    return generate_prepared(prepare_objects(objects), config, rng)
