"""Photometric augmentation of image batches for training on synthetic images (torch, any device).

What made synthetic-only refiners work on real photographs (../shared/reference/sim2real.md, GDR-Net's
"AugCosyAAEGray" and CosyPose's chain): heavy colour changes that also alter the objects' apparent colours
(per-channel gain, grayscale blending, contrast, brightness, colour inversion), blur and noise. Each op is applied
to each image with its own probability; every random draw comes from the ``torch.Generator`` given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iterpose.errors import InvalidInputError

__all__ = ["AugmentConfig", "augment_images"]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :func:`augment_images` (ranges are ``(min, max)``, uniform).

    Attributes:
        p_any: probability that an image is augmented at all.
        p_gain, gain: per-channel multiplicative gain.
        p_gray, gray_alpha: blend towards the grayscale image by alpha.
        p_contrast, contrast: scale around the image mean.
        p_brightness, brightness: multiplicative brightness.
        p_invert: invert one random channel.
        p_blur, blur_sigma_px: Gaussian blur (separable, 7 taps max).
        p_noise, noise_std: additive Gaussian noise (0..1 units).
        p_sharpen, sharpen_amount, sharpen_sigma_px: unsharp mask, ``img + amount * (img - blur(img, sigma))``,
            after the blur. Off by default; when off it draws nothing, so older configs keep their random streams.
            Tried against DeepIM reading an image's sharpness as the object's size (``benchmarks/probe_sharpness.py``);
            a 1,500-step fine-tune with it did not remove that (``benchmarks/RESULTS_deepim.md``, session 13).
    """

    p_any: float = 0.8
    p_gain: float = 0.5
    gain: tuple[float, float] = (0.6, 1.4)
    p_gray: float = 0.3
    gray_alpha: tuple[float, float] = (0.0, 1.0)
    p_contrast: float = 0.3
    contrast: tuple[float, float] = (0.5, 1.8)
    p_brightness: float = 0.5
    brightness: tuple[float, float] = (0.6, 1.5)
    p_invert: float = 0.05
    p_blur: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.3, 1.5)
    p_noise: float = 0.3
    noise_std: tuple[float, float] = (0.0, 0.04)
    p_sharpen: float = 0.0
    sharpen_amount: tuple[float, float] = (0.3, 1.5)
    sharpen_sigma_px: tuple[float, float] = (0.5, 1.5)

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if name.startswith("p_"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise InvalidInputError(f"AugmentConfig.{name}: expected a probability in [0, 1], got {value!r}.")
            elif not (isinstance(value, (tuple, list)) and len(value) == 2 and 0 <= value[0] <= value[1]):
                raise InvalidInputError(f"AugmentConfig.{name}: expected (min, max) with 0 <= min <= max, got "
                                        f"{value!r}.")


def _uniform(n: int, rng: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    return rng[0] + (rng[1] - rng[0]) * torch.rand(n, generator=generator)


def _gauss_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = 3
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    img = F.conv2d(F.pad(img[None], (radius, radius, 0, 0), mode="replicate"), k, groups=3)
    return F.conv2d(F.pad(img, (0, 0, radius, radius), mode="replicate"), k.transpose(2, 3), groups=3)[0]


def augment_images(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Augment ``images [B, 3, H, W]`` RGB 0..1; returns a new tensor (clipped to 0..1), same dtype/device.

    ``generator`` is a CPU generator; the draws do not depend on the device.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise InvalidInputError(f"augment_images: images must be [B, 3, H, W], got {list(images.shape)}.")
    out = []
    B = images.shape[0]
    draws = torch.rand(B, 8, generator=generator)
    for b in range(B):
        img = images[b]
        p = draws[b]
        if p[0] < config.p_any:
            if p[1] < config.p_gain:
                img = img * _uniform(3, config.gain, generator).to(img).view(3, 1, 1)
            if p[2] < config.p_gray:
                gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
                a = float(_uniform(1, config.gray_alpha, generator))
                img = (1 - a) * img + a * gray
            if p[3] < config.p_contrast:
                m = img.mean()
                img = (img - m) * float(_uniform(1, config.contrast, generator)) + m
            if p[4] < config.p_brightness:
                img = img * float(_uniform(1, config.brightness, generator))
            if p[5] < config.p_invert:
                c = int(torch.randint(3, (1,), generator=generator))
                img = img.clone()
                img[c] = 1 - img[c]
            if p[6] < config.p_blur:
                img = _gauss_blur(img, float(_uniform(1, config.blur_sigma_px, generator)))
            if config.p_sharpen > 0 and float(torch.rand(1, generator=generator)) < config.p_sharpen:
                amount = float(_uniform(1, config.sharpen_amount, generator))
                img = img + amount * (img - _gauss_blur(img, float(_uniform(1, config.sharpen_sigma_px, generator))))
            if p[7] < config.p_noise:
                std = float(_uniform(1, config.noise_std, generator))
                img = img + std * torch.randn(img.shape, generator=generator).to(img)
        out.append(img.clamp(0, 1))
    return torch.stack(out)
