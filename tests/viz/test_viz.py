"""Overlays: contours land on the silhouette boundary, invalid poses are skipped, strips have the right size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iterpose.errors import ShapeError
from iterpose.mesh import example_object
from iterpose.viz import POSE_COLORS, ContourLayer, draw_contours, iteration_strip, pose_masks, refinement_overlay

K = torch.tensor([[300.0, 0.0, 79.5], [0.0, 300.0, 59.5], [0.0, 0.0, 1.0]])


def _pose(z: float = 0.5, x: float = 0.0) -> torch.Tensor:
    T = torch.eye(4)
    T[:3, 3] = torch.tensor([x, 0.0, z])
    return T


def test_contour_drawn_on_boundary_not_inside():
    image = np.zeros((40, 50, 3), np.uint8)
    mask = np.zeros((40, 50), bool)
    mask[10:30, 15:35] = True
    out = draw_contours(image, [ContourLayer(mask, (255, 0, 0), "", thickness=1)], legend=False)
    assert out[10, 20, 0] > 150 and out[10, 20, 1:].sum() == 0  # top edge of the square (anti-aliased red)
    assert tuple(out[20, 25]) == (0, 0, 0)  # interior untouched
    assert tuple(out[2, 2]) == (0, 0, 0)  # far outside untouched
    assert image.sum() == 0  # input not modified


def test_mask_shape_mismatch_is_an_error():
    with pytest.raises(ShapeError, match="mask is"):
        draw_contours(np.zeros((10, 10, 3), np.uint8), [ContourLayer(np.zeros((5, 5), bool), (1, 2, 3))])


def test_pose_masks_skip_invalid_poses():
    model = example_object()
    T = torch.stack([_pose(), torch.eye(4), _pose(z=-0.5), torch.full((4, 4), float("nan"))])
    masks = pose_masks([model] * 4, T, K, 120, 160)
    assert masks.shape == (4, 120, 160)
    assert masks[0].sum() > 500 and masks[1:].sum() == 0
    # the silhouette is centred on the principal point (the model origin is its bounding-box centre)
    ys, xs = torch.nonzero(masks[0], as_tuple=True)
    assert abs(float(xs.float().mean()) - 79.5) < 6 and abs(float(ys.float().mean()) - 59.5) < 6


def test_refinement_overlay_colours():
    model = example_object()
    image = torch.zeros(3, 120, 160)
    out = refinement_overlay(image, K, [model], _pose(x=-0.05)[None], _pose(x=0.05)[None], None)
    colours = {tuple(c) for c in out.reshape(-1, 3)[::1]}
    assert POSE_COLORS["init"] in colours and POSE_COLORS["refined"] in colours
    assert POSE_COLORS["gt"] not in colours
    left, right = out[:, :80], out[:, 80:]
    assert (left == POSE_COLORS["init"]).all(-1).sum() > (right == POSE_COLORS["init"]).all(-1).sum()


def test_iteration_strip_size():
    model = example_object()
    trace = torch.stack([_pose(x=0.01 * k) for k in range(12)])
    strip = iteration_strip(torch.rand(3, 120, 160), K, model, trace, _pose(), panel_px=64, max_panels=5)
    assert strip.shape == (64, 5 * 64, 3) and strip.dtype == np.uint8
    with pytest.raises(ShapeError):
        iteration_strip(torch.rand(3, 120, 160), K, model, trace[0], None)


@pytest.mark.parametrize("anchor", ["far_right", "far_up_left", "behind", "nan"])
def test_iteration_strip_anchor_outside_the_image(anchor):
    """A trace that starts far off the image (or at an undrawable pose) still gives a strip of the requested size."""
    model = example_object()
    T0 = {"far_right": _pose(x=1.5), "far_up_left": _pose(x=-2.0), "behind": _pose(z=-0.5),
          "nan": torch.full((4, 4), float("nan"))}[anchor]
    if anchor == "far_up_left":
        T0[1, 3] = -2.0
    trace = torch.stack([T0, _pose(), _pose(x=0.01)])
    strip = iteration_strip(torch.full((3, 120, 160), 0.5), K, model, trace, None, panel_px=32, max_panels=3)
    assert strip.shape == (32, 3 * 32, 3) and strip.dtype == np.uint8
