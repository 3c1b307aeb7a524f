"""DeepIM's training-only heads: optical flow and the observed mask, decoded from the encoder.

DeepIM (Li et al. 2018) trains its FlowNetS encoder with two auxiliary losses next to the pose loss: the optical
flow from the rendered to the observed image and the object's mask in the observed image. Both are per-pixel
targets, so every pixel of a crop teaches the encoder where the object's outline and surface are, which a pose
regressed from a flattened feature map alone learns slowly. At test time neither is used.

:class:`AuxDecoder` upsamples the encoder's stride-16 map twice, each time concatenating the encoder's own map at
that stride (a U-Net-style skip), to ``[N, 3, S / 4, S / 4]``: flow ``(du, dv)`` in crop pixels and a mask logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from iterpose.refiners.mobilenet import TRUNK_CHANNELS, TRUNK_STRIDES

__all__ = ["AuxDecoder", "AUX_TAPS", "AUX_STRIDE"]

AUX_TAPS = (3, 6)
"""The encoder blocks whose outputs the decoder reads besides the last: ``features.3`` (stride 4, 24 channels) and
``features.6`` (stride 8, 32 channels)."""

AUX_STRIDE = TRUNK_STRIDES[AUX_TAPS[0]]
"""Output stride of the aux maps relative to the crop (4)."""


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True))


class AuxDecoder(nn.Module):
    """Flow and mask logits from the encoder's maps (see the module docstring).

    Args:
        deep_channels: channels of the encoder's last map (stride 16).
    """

    def __init__(self, deep_channels: int) -> None:
        super().__init__()
        c4, c8 = (TRUNK_CHANNELS[k] for k in AUX_TAPS)
        self.up8 = _block(deep_channels + c8, 64)
        self.up4 = _block(64 + c4, 32)
        self.out = nn.Conv2d(32, 3, 3, 1, 1)
        with torch.no_grad():  # start predicting no flow and an even mask
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(self, s4: torch.Tensor, s8: torch.Tensor, s16: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S/4, S/4]``: flow ``(du, dv)`` (crop pixels, rendered -> observed) and the observed mask's logit.

        Args:
            s4, s8, s16: the encoder's maps at strides 4, 8 and 16 (``features.3``, ``features.6``, the last).
        """
        x = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        x = self.up8(torch.cat([x, s8], dim=1))
        x = F.interpolate(x, size=s4.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(self.up4(torch.cat([x, s4], dim=1)))
