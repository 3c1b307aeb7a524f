"""shade: Lambert + ambient values, masking, clamping, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.render import shade


def _inputs(dtype=torch.float32):
    colors = torch.tensor([0.2, 0.4, 0.8], dtype=dtype).view(1, 3, 1, 1).expand(1, 3, 1, 4).clone()
    s = 2 ** -0.5
    normals = torch.tensor([[0, 0, -1.0], [0, 0, -2.0], [s, 0, -s], [0, 0, 1.0]], dtype=dtype).T.reshape(1, 3, 1, 4)
    mask = torch.tensor([[[True, True, True, False]]])
    return colors, normals, mask


def test_lambert_values():
    colors, normals, mask = _inputs()
    out = shade(colors, normals, mask, ambient=0.3, diffuse=0.6)
    c = colors[0, :, 0, 0]
    torch.testing.assert_close(out[0, :, 0, 0], c * 0.9)  # facing the head-light
    torch.testing.assert_close(out[0, :, 0, 1], c * 0.9)  # normals are normalised
    torch.testing.assert_close(out[0, :, 0, 2], c * (0.3 + 0.6 * 2 ** -0.5))  # 45 degrees
    assert float(out[0, :, 0, 3].abs().max()) == 0.0  # masked out


def test_one_sided_and_light_direction():
    colors, normals, mask = _inputs()
    mask = torch.ones(1, 1, 4, dtype=torch.bool)
    one = shade(colors, normals, mask, ambient=0.3, diffuse=0.6, two_sided=False)
    torch.testing.assert_close(one[0, :, 0, 3], colors[0, :, 0, 3] * 0.3)  # facing away: ambient only
    two = shade(colors, normals, mask, ambient=0.3, diffuse=0.6)
    torch.testing.assert_close(two[0, :, 0, 3], colors[0, :, 0, 3] * 0.9)
    side = shade(colors, normals, mask, light_dir_cam=(1.0, 0.0, 0.0), ambient=0.3, diffuse=0.6)
    torch.testing.assert_close(side[0, :, 0, 0], colors[0, :, 0, 0] * 0.3)


def test_clamped_to_unit_range():
    colors, normals, mask = _inputs()
    out = shade(colors * 4, normals, mask, ambient=1.0, diffuse=1.0)
    assert float(out.max()) == 1.0 and float(out.min()) >= 0.0


def test_gradcheck():
    colors, normals, mask = _inputs(torch.float64)
    normals = normals + 0.01  # away from the |n.l| kink at 0
    c = colors.clone().requires_grad_()
    n = normals.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: shade(a, b, mask, ambient=0.2, diffuse=0.5), (c, n))


def test_errors():
    colors, normals, mask = _inputs()
    with pytest.raises(ShapeError, match="normals_cam must be"):
        shade(colors, normals[:, :2], mask)
    with pytest.raises(ShapeError, match="mask must be"):
        shade(colors, normals, mask[0])
    with pytest.raises(InvalidInputError, match="light_dir_cam must be a finite non-zero"):
        shade(colors, normals, mask, light_dir_cam=(0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="ambient and diffuse must be >= 0"):
        shade(colors, normals, mask, ambient=-0.1)
