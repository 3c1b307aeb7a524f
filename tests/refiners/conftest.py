"""Small synthetic scenes of the example object for the refiner tests (no data files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iterpose.data.backgrounds import procedural_background
from iterpose.geometry import look_at_T_co
from iterpose.mesh import example_object
from iterpose.render import render_objects

H, W = 240, 320
K_SMALL = torch.tensor([[400.0, 0.0, 159.5], [0.0, 400.0, 119.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="session")
def example_model():
    return example_object(obj_id=1)


def make_scene(model, seed: int, distance_m: float = 0.5):
    """``(image [3, H, W], K [3, 3], T_gt [4, 4])``: the model at a random viewpoint over a procedural background,
    shaded (so the refiner's unshaded albedo model is only approximately right, as on real images)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    up = torch.tensor([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
    T_gt = look_at_T_co(torch.tensor(d * distance_m, dtype=torch.float32), torch.zeros(3), up)
    r = render_objects([model], T_gt[None], K_SMALL, H, W)
    bg = torch.from_numpy(procedural_background(H, W, rng)).permute(2, 0, 1)
    image = torch.where(r.mask[0], r.rgb[0], bg)
    image = (image + torch.from_numpy(rng.normal(0, 0.01, image.shape).astype(np.float32))).clamp(0, 1)
    return image, K_SMALL.clone(), T_gt
