"""DeepIM's network: zoomed observed and rendered images (+ masks) in, a relative pose out.

Input per object (all ``S x S`` zoomed crops): observed RGB, rendered RGB (0 off the object), rendered mask and
observed mask, stacked into 8 channels (DeepIM's ``INPUT_MASK`` variant; or, with ``fusion="siamese"``, the two
RGB crops through the encoder separately and everything stacked after it). The RGB channels are normalised with the
ImageNet mean/std. Encoder: MobileNetV2 to stride 16 (:class:`iterpose.refiners.mobilenet.MobileNetV2Trunk`) in
place of FlowNetS (which no wheel ships and which is ~40x the compute), then a strided 3x3 convolution, flatten
(the layout of the map carries where things are, as DeepIM's flattened conv6), two fully connected layers of
``head_width`` with LeakyReLU(0.1), and two heads:

- rotation: 6 numbers, the first two columns of ``R_delta`` before Gram-Schmidt (Zhou et al. 2019; DeepIM regresses
  a quaternion, which is discontinuous), camera frame: ``R_new = R_delta R``;
- translation: ``(vx, vy, vz)``: the shift of the projected object centre in crop widths and ``log(z_src/z_new)``
  (DeepIM's disentangled, zoom-relative translation).

Both heads start near the identity update (rotation bias = identity, translation bias 0, small weights), so an
untrained network leaves poses almost where they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from iterpose.errors import InvalidInputError
from iterpose.refiners.deepim.aux_heads import AUX_TAPS, AuxDecoder
from iterpose.refiners.deepim.config import DeepimConfig
from iterpose.refiners.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2Trunk, imagenet_trunk_state

__all__ = ["DeepimNet", "rotation_from_6d", "IN_CHANNELS"]

IN_CHANNELS = 8
"""observed RGB, rendered RGB, rendered mask, observed mask."""

_IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rotation_from_6d(x: torch.Tensor) -> torch.Tensor:
    """``[N, 6]`` -> ``[N, 3, 3]`` rotations whose first two columns are Gram-Schmidt of ``x[:, :3]``, ``x[:, 3:]``."""
    a1, a2 = x[:, :3], x[:, 3:]
    b1 = F.normalize(a1, dim=1)
    b2 = F.normalize(a2 - (b1 * a2).sum(1, keepdim=True) * b1, dim=1)
    b3 = torch.cross(b1, b2, dim=1)
    return torch.stack([b1, b2, b3], dim=2)


def focus_observed(observed: torch.Tensor, rendered_mask: torch.Tensor, band_px: int) -> torch.Tensor:
    """The observed crop kept within ``band_px`` crop pixels of the rendered silhouette, fading to 0 (in
    ImageNet-normalised units: the mean colour) over about the next ``2 band_px``.

    Args:
        observed: ``[N, 3, S, S]`` normalised RGB. rendered_mask: ``[N, S, S]`` bool. band_px: > 0.
    """
    m = rendered_mask.to(observed.dtype)[:, None]
    near = F.max_pool2d(m, 2 * band_px + 1, stride=1, padding=band_px)  # the silhouette dilated by band_px
    weight = F.avg_pool2d(F.max_pool2d(near, 2 * band_px + 1, stride=1, padding=band_px), 2 * band_px + 1, stride=1,
                          padding=band_px, count_include_pad=False)
    return observed * torch.maximum(near, weight)


class DeepimNet(nn.Module):
    """The encoder and the pose heads (see the module docstring).

    Args:
        config: :class:`DeepimConfig` (``crop_size``, ``trunk_blocks``, ``head_width``).
    """

    def __init__(self, config: DeepimConfig) -> None:
        super().__init__()
        self.config = config
        self.siamese = config.fusion == "siamese"
        self.trunk = MobileNetV2Trunk(config.trunk_blocks, in_channels=3 if self.siamese else IN_CHANNELS)
        c = self.trunk.out_channels * 3 + 2 if self.siamese else self.trunk.out_channels
        grid = -(-config.crop_size // self.trunk.stride)
        self.reduce = nn.Sequential(nn.Conv2d(c, 128, 3, 2, 1), nn.LeakyReLU(0.1, inplace=True))
        cells = 128 * (-(-grid // 2)) ** 2
        w = config.head_width
        self.fc = nn.Sequential(nn.Linear(cells, w), nn.LeakyReLU(0.1, inplace=True), nn.Linear(w, w),
                                nn.LeakyReLU(0.1, inplace=True))
        self._build_heads(w)
        self.aux = AuxDecoder(self.trunk.out_channels) if getattr(config, "aux_heads", False) else None
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def _build_heads(self, width: int) -> None:
        """The output layers on the ``width`` hidden features (a subclass with other outputs overrides this)."""
        self.rotation = nn.Linear(width, 6)
        self.translation = nn.Linear(width, 3)
        with torch.no_grad():
            self.rotation.weight.mul_(0.01)
            self.rotation.bias.copy_(torch.tensor(_IDENTITY_6D))
            self.translation.weight.mul_(0.01)  # not 0 (DeepIM's): zero weights pass no gradient to the layers below
            self.translation.bias.zero_()

    def load_imagenet(self) -> None:
        """Initialise the encoder from the ImageNet MobileNetV2 (strictly; see :class:`DeepimConfig.trunk`)."""
        state = imagenet_trunk_state(self.trunk)
        if not self.siamese:
            w = state["features.0.0.weight"]  # [32, 3, 3, 3]
            state["features.0.0.weight"] = torch.cat([w, -w, torch.zeros_like(w[:, :2])], dim=1)
        self.trunk.load_state_dict(state, strict=True)

    def hidden(self, observed: torch.Tensor, rendered: torch.Tensor, rendered_mask: torch.Tensor,
               observed_mask: torch.Tensor) -> torch.Tensor:
        """``[N, head_width]`` features of each crop pair (inputs as :meth:`forward`)."""
        return self._encode(observed, rendered, rendered_mask, observed_mask, aux=False)[0]

    def _encode(self, observed: torch.Tensor, rendered: torch.Tensor, rendered_mask: torch.Tensor,
                observed_mask: torch.Tensor, aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(hidden [N, head_width], aux maps [N, 3, S/4, S/4] or None)``; the maps only when ``aux``."""
        obs, ren = (observed - self.mean) / self.std, (rendered - self.mean) / self.std
        if getattr(self.config, "focus_px", 0):
            obs = focus_observed(obs, rendered_mask, self.config.focus_px)
        masks = torch.stack([rendered_mask.to(observed.dtype), observed_mask.to(observed.dtype)], dim=1)
        maps = None
        if self.siamese:
            f = self.trunk(torch.cat([obs, ren]))
            f_obs, f_ren = f[:len(obs)], f[len(obs):]
            x = torch.cat([f_obs, f_ren, f_obs - f_ren, F.adaptive_avg_pool2d(masks, f.shape[-2:])], dim=1)
        elif aux:
            s4, s8, x = self.trunk.forward_taps(torch.cat([obs, ren, masks], dim=1), AUX_TAPS)
            maps = self.aux(s4, s8, x).float()
        else:
            x = self.trunk(torch.cat([obs, ren, masks], dim=1))
        return self.fc(self.reduce(x).flatten(1)), maps

    def forward(self, observed: torch.Tensor, rendered: torch.Tensor, rendered_mask: torch.Tensor,
                observed_mask: torch.Tensor, aux: bool = False):
        """Relative pose of each crop pair.

        Args:
            observed, rendered: ``[N, 3, S, S]`` RGB 0..1. rendered_mask, observed_mask: ``[N, S, S]`` bool/float.
            aux: also return the training-only flow and mask maps (needs ``config.aux_heads``).

        Returns:
            ``(R_delta [N, 3, 3], v [N, 3])``: camera-frame rotation update and ``(vx, vy, vz)`` (crop widths,
            crop heights, log depth ratio ``log(z_src / z_new)``); with ``aux``, a third item: ``[N, 3, S/4, S/4]``
            (see :class:`~iterpose.refiners.deepim.aux_heads.AuxDecoder`).
        """
        if aux and self.aux is None:
            raise InvalidInputError("DeepimNet: aux=True needs a model built with DeepimConfig.aux_heads = True "
                                    "(model.aux_heads: true in a training config).")
        h, maps = self._encode(observed, rendered, rendered_mask, observed_mask, aux)
        pose = (rotation_from_6d(self.rotation(h).float()), self.translation(h).float())
        return (*pose, maps) if aux else pose
