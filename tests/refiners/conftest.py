"""Small synthetic scenes of the example object for the refiner tests (no data files)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.geometry import look_at_T_co
from iterpose.mesh import example_object
from iterpose.render import render_objects

H, W = 240, 320
K_SMALL = torch.tensor([[400.0, 0.0, 159.5], [0.0, 400.0, 119.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="session")
def example_model():
    return example_object(obj_id=1)


def viewpoint_poses(n: int, seed: int, distance: float) -> torch.Tensor:
    """``[n, 4, 4]`` poses looking at the object origin from ``distance`` metres, from random directions."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        d = torch.randn(3, generator=g)
        d = d / d.norm()
        out.append(look_at_T_co(d * distance, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])))
    return torch.stack(out)


def blurred_background(height: int, width: int, rng: np.random.Generator, n_shapes: int = 12) -> np.ndarray:
    """``[height, width, 3]`` float32: the library's former procedural background (colour field, shapes, a blur
    over everything, noise). The refiner tests' seeds and thresholds were chosen on these images, so they keep
    them; the library has one generator now (:func:`iterpose.data.backgrounds.fast_procedural_background`)."""
    coarse = rng.uniform(0.1, 0.9, size=(4, 5, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(n_shapes):
        color = tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        a, b = int(rng.integers(8, max(9, width // 6))), int(rng.integers(8, max(9, height // 6)))
        if rng.random() < 0.5:
            cv2.rectangle(img, (cx - a, cy - b), (cx + a, cy + b), color, -1)
        else:
            cv2.ellipse(img, (cx, cy), (a, b), float(rng.uniform(0, 180)), 0, 360, color, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    img += rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def make_scene(model, seed: int, distance_m: float = 0.5):
    """``(image [3, H, W], K [3, 3], T_gt [4, 4])``: the model at a random viewpoint over a procedural background,
    shaded (so the refiner's unshaded albedo model is only approximately right, as on real images)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    up = torch.tensor([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    T_gt = look_at_T_co(torch.tensor(d * distance_m, dtype=torch.float32), torch.zeros(3), up)
    r = render_objects([model], T_gt[None], K_SMALL, H, W)
    bg = torch.from_numpy(blurred_background(H, W, rng)).permute(2, 0, 1)
    image = torch.where(r.mask[0], r.rgb[0], bg)
    image = (image + torch.from_numpy(rng.normal(0, 0.01, image.shape).astype(np.float32))).clamp(0, 1)
    return image, K_SMALL.clone(), T_gt


@pytest.fixture(scope="module")
def perturbed_scene(example_model):
    """``(image [3, H, W], K [3, 3], T_gt, T_bad)`` of :func:`make_scene` seed 11: T_bad is T_gt with 10 deg / 1, 1,
    4 cm of DeepIM noise (the accept-test and ensemble tests' scene)."""
    image, K, T_gt = make_scene(example_model, 11)
    T_bad = perturb_poses(T_gt[None], PerturbConfig(rot_std_deg=10.0, trans_std_m=(0.01, 0.01, 0.04)),
                          torch.Generator().manual_seed(4))[0]
    return image, K, T_gt, T_bad
