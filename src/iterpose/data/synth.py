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

Modules, one per concern: :mod:`~iterpose.data.synth_config` (the config and the scene record),
:mod:`~iterpose.data.synth_meshes` (meshes as arrays, primitives), :mod:`~iterpose.data.synth_layout` (step 1),
:mod:`~iterpose.data.synth_render` (step 2), this module (steps 3-4 and the entry points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from iterpose.data.backgrounds import (
    clutter_background,
    fast_procedural_background,
    gaussian_noise,
    image_background,
    list_background_images,
    photo_background,
)
from iterpose.data.synth_config import LMO_K, SynthConfig, SynthScene, scene_rng
from iterpose.data.synth_layout import layout
from iterpose.data.synth_meshes import MeshArrays, prepare_objects
from iterpose.data.synth_render import (  # noqa: F401 (interpolate_colors_reference: for the tests, not public)
    Rendered,
    bbox_xywh,
    interpolate_colors,
    interpolate_colors_reference,
    render_instances,
)
from iterpose.errors import InvalidInputError
from iterpose.mesh.model import ObjectModel

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
]


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
    if str(config.background) == "clutter":
        return clutter_background(config.height, config.width, rng)
    if str(config.background) == "photo":
        return photo_background(config.height, config.width, rng)
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
        instances = layout(meshes, config, rng, clutter)
        n = sum(inst.target_index >= 0 for inst in instances)
        shading = _random_light(config, rng)
        ren = render_instances(instances, n, config, *shading)
        vis = _Visibility.of(ren, n)
        if (vis.visib_fract >= config.min_visib_fract).all():
            break
        if not clutter and n > 1:  # targets hide each other: keep the most visible one only
            instances = [instances[int(np.argmax(vis.visib_fract))]]
            n = 1
            ren = render_instances(instances, 1, config, *shading)
            vis = _Visibility.of(ren, 1)
    img = _background(config, rng)
    on = ren.instance >= 0
    if config.shadow_prob > 0 and rng.random() < config.shadow_prob:  # no draw at 0: older scenes stay identical
        img = cast_shadow(img, on, config, rng)
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
        mask_visible=torch.from_numpy(vis.mask_visible),
        px_count_all=torch.from_numpy(vis.px_all.astype(np.int64)),
        px_count_visib=torch.from_numpy(vis.px_visible.astype(np.int64)),
        visib_fract=torch.from_numpy(vis.visib_fract.astype(np.float64)),
        bbox_obj=torch.tensor([bbox_xywh(m) for m in ren.mask_full], dtype=torch.int64).reshape(n, 4),
        bbox_visib=torch.tensor([bbox_xywh(m) for m in vis.mask_visible], dtype=torch.int64).reshape(n, 4),
    )


def cast_shadow(img: np.ndarray, on: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """``img [H, W, 3]`` float32 darkened by the soft shadow of the silhouettes ``on [H, W]`` bool: shifted by
    ``U(shadow_offset_px)`` pixels in a random direction, blurred (Gaussian sigma ``U(shadow_blur_px)``), scaled by
    ``U(shadow_strength)``. The objects' own pixels are painted over afterwards."""
    angle = rng.uniform(0.0, 2 * np.pi)
    shift = rng.uniform(*config.shadow_offset_px)
    sigma = rng.uniform(*config.shadow_blur_px)
    strength = rng.uniform(*config.shadow_strength)
    H, W = on.shape
    M = np.array([[1.0, 0.0, shift * math.cos(angle)], [0.0, 1.0, shift * math.sin(angle)]], np.float32)
    shadow = cv2.warpAffine(on.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0.0)
    if sigma > 0:
        shadow = cv2.GaussianBlur(shadow, (0, 0), sigma)
    return (img * (1.0 - np.float32(strength) * shadow)[..., None]).astype(np.float32)


def _random_light(config: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, float, float, float, float]:
    """``(light [3] unit direction from the scene towards the light, ambient, diffuse, specular, shininess)``: the
    light within ``light_max_angle_deg`` of the viewing direction."""
    theta = math.radians(rng.uniform(0.0, config.light_max_angle_deg))
    phi = rng.uniform(0.0, 2 * np.pi)
    light = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), -math.cos(theta)])
    ambient, diffuse = rng.uniform(*config.ambient), rng.uniform(*config.diffuse)
    if config.specular[1] == 0:  # no draw: scenes of matte configs stay bit-identical to older versions
        return light, ambient, diffuse, 0.0, 1.0
    return light, ambient, diffuse, rng.uniform(*config.specular), rng.uniform(*config.shininess)


@dataclass(frozen=True, eq=False)
class _Visibility:
    """Visible masks and pixel counts of the ``n`` targets of a render."""

    mask_visible: np.ndarray  # [n, H, W] bool
    px_all: np.ndarray  # [n] pixels of each full mask
    px_visible: np.ndarray  # [n] visible pixels
    visib_fract: np.ndarray  # [n] px_visible / px_all (0 when px_all is 0)

    @classmethod
    def of(cls, ren: Rendered, n: int) -> "_Visibility":
        mask_visible = ren.instance[None] == np.arange(n)[:, None, None]
        px_all = ren.mask_full.reshape(n, -1).sum(1)
        px_visible = mask_visible.reshape(n, -1).sum(1)
        return cls(mask_visible, px_all, px_visible, np.where(px_all > 0, px_visible / np.maximum(px_all, 1), 0.0))


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
