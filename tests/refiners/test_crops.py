"""Crops: grid_sample(align_corners=False) sampling agrees with zoom_K; boxes contain the object."""

from __future__ import annotations

import torch

from iterpose.geometry import project_points
from iterpose.refiners.crops import crop_intrinsics, sample_crops, sphere_crop_boxes


def _ramp_image(H: int, W: int) -> torch.Tensor:
    """Channel 0 = u (column), channel 1 = v (row), channel 2 = 1: bilinear sampling reproduces them exactly."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)])[None]


def test_crop_pixels_show_the_points_that_K_crop_projects_there():
    H, W = 60, 80
    K = torch.tensor([[[70.0, 0.0, 37.3], [0.0, 75.0, 28.6], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    boxes = torch.tensor([[10.3, 7.9, 41.0, 41.0], [30.0, 20.0, 17.5, 17.5]], dtype=torch.float64)
    S = 16
    crops, inside = sample_crops(_ramp_image(H, W), torch.tensor([0, 0]), boxes, S)
    Kc = crop_intrinsics(K.expand(2, 3, 3), boxes, S)
    assert bool(inside.all())
    for n in range(2):
        for i, j in [(0, 0), (3, 11), (15, 15), (7, 2)]:
            u, v = float(crops[n, 0, i, j]), float(crops[n, 1, i, j])
            # a 3D point on the full-image ray through (u, v) projects to crop pixel (j, i)
            X = torch.linalg.solve(K[0], torch.tensor([u, v, 1.0], dtype=torch.float64)) * 0.7
            uv = project_points(Kc[n], X[None])[0]
            torch.testing.assert_close(uv, torch.tensor([float(j), float(i)], dtype=torch.float64),
                                       atol=1e-9, rtol=0)


def test_outside_pixels_are_flagged_and_zero():
    img = torch.ones(1, 3, 10, 10)
    crops, inside = sample_crops(img, torch.tensor([0]), torch.tensor([[-5.0, 0.0, 10.0, 10.0]]), 10)
    # crop pixel j shows u = -5.5 + (j + 0.5) -> inside the image for j >= 5
    assert inside[0, 0].tolist() == [False] * 5 + [True] * 5
    assert float(crops[0, 0, 0, 0]) == 0.0 and float(crops[0, 0, 0, 7]) == 1.0


def test_sphere_box_contains_projected_sphere():
    K = torch.tensor([[[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]])
    T = torch.eye(4)[None].clone()
    T[0, :3, 3] = torch.tensor([0.05, -0.02, 0.5])
    box = sphere_crop_boxes(K, T, torch.tensor([0.05]), margin=1.0)[0]
    uc, vc = 500 * 0.05 / 0.5 + 320, 500 * -0.02 / 0.5 + 240
    assert abs(float(box[2]) - 100.0) < 1e-4 and float(box[2]) == float(box[3])
    # centred: the crop covers [x0 - 0.5, x0 + w - 0.5]
    assert abs(float(box[0]) - 0.5 + float(box[2]) / 2 - uc) < 1e-4
    assert abs(float(box[1]) - 0.5 + float(box[3]) / 2 - vc) < 1e-4
