"""`DeepimConfig`: every setting of the DeepIM model and of its refinement, checked when built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from iterpose.errors import InvalidInputError

__all__ = ["DeepimConfig", "check_encoder_fields"]


def check_encoder_fields(config, ints: tuple[str, ...] = (), positive: tuple[str, ...] = ()):
    """Check the fields a DeepIM-style config shares (``crop_size``, ``trunk``, ``trunk_blocks``, ``head_width``,
    ``render_cell_rel``, ``zoom_margin``), plus ``ints`` (ints >= 0) and ``positive`` (numbers > 0); returns the
    ``fail(name, want)`` that raises the config's InvalidInputError, for further checks."""
    def fail(name: str, want: str) -> None:
        raise InvalidInputError(f"{type(config).__name__}.{name}: expected {want}, got {getattr(config, name)!r}.")

    for name, low in (("crop_size", 32), ("trunk_blocks", 2), ("head_width", 8), *((n, 0) for n in ints)):
        v = getattr(config, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            fail(name, f"an int >= {low}")
    if config.crop_size % 32:
        fail("crop_size", "a multiple of 32")
    if config.trunk_blocks > 14:
        fail("trunk_blocks", "an int <= 14")
    if config.trunk not in ("imagenet", "scratch"):
        fail("trunk", "'imagenet' or 'scratch'")
    for name in ("render_cell_rel", *positive):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            fail(name, "a number > 0")
    if isinstance(config.zoom_margin, bool) or not isinstance(config.zoom_margin, (int, float)) \
            or not config.zoom_margin >= 1:
        fail("zoom_margin", "a number >= 1")
    return fail


@dataclass(frozen=True)
class DeepimConfig:
    """DeepIM settings (architecture + refinement; saved in every checkpoint).

    Attributes:
        crop_size: side S of the zoomed square crops the network sees (paper: 480 x 640). 128 keeps an LM-O object
            at about its native resolution (70-140 px wide at 0.6-1.3 m) while a 2-core CPU trains at a few
            crops per second; the crop's aspect ratio is fixed (1:1).
        zoom_margin: the crop's half side is this times the largest distance from the projected object centre to
            the rendered or the observed box's extent (paper: 1.4).
        trunk: ``"imagenet"`` (MobileNetV2 encoder initialised from ImageNet, the first convolution's RGB kernels
            copied to the observed image and negated for the rendered one, mask kernels 0) or ``"scratch"``
            (same architecture, random init). Only matters when a model is created for training.
        trunk_blocks: MobileNetV2 blocks of the encoder (14: stride 16, 96 channels).
        fusion: ``"early"`` (DeepIM's: the 8 input channels stacked into one encoder) or ``"siamese"`` (the encoder,
            on RGB, runs on the observed and on the rendered crop; their features, their difference and the masks
            pooled to the features' grid are stacked after it: twice the encoder's cost, but each pass sees the
            kind of picture its ImageNet weights were trained on).
        head_width: width of the two fully connected layers before the rotation and translation heads.
        aux_heads: DeepIM's training-only heads: a small decoder on the encoder (strides 16, 8 and 4) predicting, at
            stride 4 of the crop, the optical flow from the rendered to the observed object (crop pixels) and the
            object's visible mask in the observed crop (:mod:`iterpose.refiners.deepim.aux_heads`). They shape the
            encoder's features during training (``loss.flow_weight``, ``loss.mask_weight``); refinement never runs
            them. Needs ``fusion: early`` and ``trunk_blocks: 14``.
        focus_px: 0 (off, DeepIM's input) or the width in crop pixels of the band around the rendered silhouette
            in which the observed crop is kept: beyond it the observed image fades to the ImageNet mean colour over
            about twice that (:func:`iterpose.refiners.deepim.network.focus_observed`), so that edges far from
            the estimate (neighbouring objects, clutter) cannot be read as the object's outline.
        render_cell_rel: the render mesh is the model simplified on a grid of this fraction of its diameter.
        iterations: refinement iterations at test time (paper: 4).
        max_rotation_deg: a result rotated more than this from the initial pose is ``DIVERGED``.
    """

    INIT_CHANGEABLE: ClassVar[tuple[str, ...]] = ("zoom_margin", "aux_heads", "focus_px", "iterations",
                                                  "max_rotation_deg")
    """Fields a training run may change from the weights it starts from (``--init-weights``): they change what the
    network sees or how it is used, not the shape of its weights (the aux heads are added or dropped)."""
    INIT_OPTIONAL_WEIGHTS: ClassVar[dict[str, str]] = {"aux_heads": "net.aux."}
    """Fields that add a module, and the state-dict prefix of its weights (absent from a file trained without it)."""

    crop_size: int = 128
    zoom_margin: float = 1.4
    trunk: Literal["imagenet", "scratch"] = "imagenet"
    trunk_blocks: int = 14
    fusion: Literal["early", "siamese"] = "early"
    head_width: int = 256
    aux_heads: bool = False
    focus_px: int = 0
    render_cell_rel: float = 0.015
    iterations: int = 4
    max_rotation_deg: float = 90.0

    def __post_init__(self) -> None:
        fail = check_encoder_fields(self, ints=("iterations", "focus_px"), positive=("max_rotation_deg",))
        if self.fusion not in ("early", "siamese"):
            fail("fusion", "'early' or 'siamese'")
        if not isinstance(self.aux_heads, bool):
            fail("aux_heads", "true or false")
        if self.aux_heads and (self.fusion != "early" or self.trunk_blocks != 14):
            fail("aux_heads", "false unless fusion is 'early' and trunk_blocks is 14 (the decoder's inputs)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
