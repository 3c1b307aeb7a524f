"""Configuration and output records of the synthetic scene generator (:mod:`iterpose.data.synth`).

:class:`SynthConfig` holds everything random about a scene (checked when built); :class:`SynthScene` is one image
with its ground truth; :func:`scene_rng` gives image ``k`` of a run its own generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from iterpose.data.backgrounds import list_background_images
from iterpose.data.perturb import PerturbConfig
from iterpose.errors import InvalidInputError

__all__ = ["LMO_K", "LMO_WIDTH", "LMO_HEIGHT", "SynthConfig", "SynthScene", "scene_rng"]

LMO_K = (572.4114, 0.0, 325.2611, 0.0, 573.57043, 242.04899, 0.0, 0.0, 1.0)
"""LM-O's intrinsics (row-major, pixels) for 640 x 480 images: the default camera."""
LMO_WIDTH, LMO_HEIGHT = 640, 480
"""The image size :data:`LMO_K` is for."""

_Range = tuple[float, float]

PROCEDURAL_BACKGROUNDS = ("procedural", "clutter", "photo")
"""The generated kinds of ``SynthConfig.background`` (any other value is a folder of images)."""


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
        object_distractors: (min, max) extra copies of the object models, recoloured (channels shuffled and blended
            with a random colour), anywhere in view at the targets' distances: clutter with the size, shape and
            surface detail of real objects, which primitives lack. Not targets.
        max_sphere_overlap: bounding spheres of two meshes may overlap by at most this fraction of the sum of their
            radii (0 = disjoint spheres).
        min_visib_fract: every target must be at least this visible (visible / full silhouette pixels).
        max_tries: layouts drawn before falling back to targets only (no occluders, no distractors); if the
            targets still hide each other then, only the most visible one is kept (fewer targets than
            ``objects_per_image[0]``: rare unless the image is crowded).
        light_max_angle_deg: the light comes from within this angle of the camera's viewing direction.
        ambient, diffuse: (min, max) of the ambient and diffuse weights of the Lambert shading.
        specular: (min, max) strength of a white Phong highlight added to the shading (0: matte, the default).
        shininess: (min, max) Phong exponent of that highlight (larger: smaller, sharper highlights).
        shadow_prob: probability that the objects cast a soft shadow on the background: their silhouettes shifted
            by ``shadow_offset_px`` in a random direction, blurred by ``shadow_blur_px`` (Gaussian sigma) and
            darkening the background by ``shadow_strength``. Real photographs have dark, low-contrast edges next
            to objects; a refiner trained without them reads the outermost strong edge as the outline.
        background: "procedural" (colour field + shapes + noise), "clutter" (that plus textured patches, lines and
            black-and-white blocks: closer to real scenes), "photo" (clutter toned like an indoor photograph:
            muted, darker, grainy, slightly defocused) or a folder of the user's images (random crops).
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
    object_distractors: tuple[int, int] = (0, 0)
    max_sphere_overlap: float = 0.2
    min_visib_fract: float = 0.3
    max_tries: int = 10
    light_max_angle_deg: float = 60.0
    ambient: _Range = (0.3, 0.7)
    diffuse: _Range = (0.3, 0.7)
    specular: _Range = (0.0, 0.0)
    shininess: _Range = (4.0, 32.0)
    shadow_prob: float = 0.0
    shadow_offset_px: _Range = (2.0, 10.0)
    shadow_blur_px: _Range = (1.0, 5.0)
    shadow_strength: _Range = (0.2, 0.7)
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
        _check_range("object_distractors", self.object_distractors, 0, 1000, integer=True)
        for name, lo, hi in (("max_sphere_overlap", 0.0, 1.0), ("min_visib_fract", 0.0, 1.0),
                             ("blur_prob", 0.0, 1.0), ("light_max_angle_deg", 0.0, 90.0), ("shadow_prob", 0.0, 1.0)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi):
                raise InvalidInputError(f"SynthConfig.{name}: expected a number in [{lo}, {hi}], got {v!r}")
        if not (isinstance(self.max_tries, int) and self.max_tries >= 1):
            raise InvalidInputError(f"SynthConfig.max_tries: expected an int >= 1, got {self.max_tries!r}")
        _check_range("ambient", self.ambient, 0.0, 2.0)
        _check_range("diffuse", self.diffuse, 0.0, 2.0)
        _check_range("specular", self.specular, 0.0, 2.0)
        _check_range("shininess", self.shininess, 1.0, 1000.0)
        _check_range("shadow_offset_px", self.shadow_offset_px, 0.0, 1000.0)
        _check_range("shadow_blur_px", self.shadow_blur_px, 0.0, 100.0)
        _check_range("shadow_strength", self.shadow_strength, 0.0, 1.0)
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
            raise InvalidInputError(f"SynthConfig.background: expected 'procedural', 'clutter', 'photo' or a folder "
                                    f"path, got {self.background!r}")
        if str(self.background) not in PROCEDURAL_BACKGROUNDS:
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
