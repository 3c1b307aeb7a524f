"""Photometric augmentation of training images (``iterpose.data.augment``)."""

import dataclasses

import pytest
import torch

from iterpose.data.augment import AugmentConfig, augment_images
from iterpose.errors import InvalidInputError

ONLY = {f.name: 0.0 for f in dataclasses.fields(AugmentConfig) if f.name.startswith("p_")}


def soft_step(width: int = 32) -> torch.Tensor:
    """``[1, 3, 16, width]``: a vertical edge from 0.2 to 0.8, a few pixels wide."""
    x = torch.linspace(-12, 12, width)
    row = 0.2 + 0.6 * torch.sigmoid(x)
    return row.view(1, 1, 1, -1).expand(1, 3, 16, width).clone()


def only(**p) -> AugmentConfig:
    return AugmentConfig(**{**ONLY, "p_any": 1.0, **p})


def test_nothing_enabled_is_the_identity():
    img = soft_step()
    out = augment_images(img, only(), torch.Generator().manual_seed(0))
    assert torch.equal(out, img)


def test_same_seed_same_images():
    img = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    a = augment_images(img, AugmentConfig(p_sharpen=0.5), torch.Generator().manual_seed(3))
    b = augment_images(img, AugmentConfig(p_sharpen=0.5), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_sharpen_steepens_an_edge_and_keeps_flat_regions():
    img = soft_step()
    config = only(p_sharpen=1.0, sharpen_amount=(1.0, 1.0), sharpen_sigma_px=(1.5, 1.5))
    out = augment_images(img, config, torch.Generator().manual_seed(0))
    steep_in = (img[..., 1:] - img[..., :-1]).abs().max()
    steep_out = (out[..., 1:] - out[..., :-1]).abs().max()
    assert steep_out > 1.15 * steep_in  # 1.0 if nothing happened, below 1 for a blur
    assert torch.allclose(out[..., :2], img[..., :2], atol=0.02)  # far from the edge nothing changes


def test_sharpen_off_draws_nothing():
    """p_sharpen 0 (the default) consumes no random numbers, so configs written before it existed keep their
    batches; any p_sharpen > 0 draws."""
    img = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    states = []
    for p in (0.0, 1e-9):
        g = torch.Generator().manual_seed(5)
        augment_images(img, only(p_sharpen=p, p_noise=0.5), g)
        states.append(g.get_state())
    assert not torch.equal(states[0], states[1])
    g_old = torch.Generator().manual_seed(5)
    augment_images(img, AugmentConfig(**{**dataclasses.asdict(only(p_noise=0.5))}), g_old)
    assert torch.equal(g_old.get_state(), states[0])


@pytest.mark.parametrize("field, value", [("p_sharpen", 1.5), ("sharpen_amount", (1.0, 0.5)),
                                          ("sharpen_sigma_px", (-1.0, 1.0))])
def test_bad_sharpen_settings_name_the_field(field, value):
    with pytest.raises(InvalidInputError, match=field):
        AugmentConfig(**{field: value})


def test_images_must_be_rgb_batches():
    with pytest.raises(InvalidInputError, match=r"\[B, 3, H, W\]"):
        augment_images(torch.zeros(3, 8, 8), AugmentConfig(), torch.Generator())
