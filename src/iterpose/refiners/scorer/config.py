"""`ScorerConfig`: every setting of the learned pose scorer (saved in its weights file), checked when built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from iterpose.errors import InvalidInputError

__all__ = ["ScorerConfig"]


@dataclass(frozen=True)
class ScorerConfig:
    """Pose-scorer settings. The input is DeepIM's (:class:`~iterpose.refiners.deepim.DeepimConfig`: the same zoom,
    crop and 8 channels), so a scorer can start from a trained DeepIM encoder.

    Attributes:
        crop_size: side S of the zoomed square crops (a multiple of 32). zoom_margin: DeepIM's zoom margin.
        trunk: ``"imagenet"`` or ``"scratch"`` initialisation of the encoder (only matters for a new model).
        trunk_blocks: MobileNetV2 blocks of the encoder. head_width: width of the fully connected layers.
        render_cell_rel: the render mesh is the model simplified on a grid of this fraction of its diameter.
        error_floor_rel: the predicted error is ``log(max(ADD(-S) / diameter, error_floor_rel))``: errors below it
            are equally good.
    """

    crop_size: int = 128
    zoom_margin: float = 1.4
    trunk: Literal["imagenet", "scratch"] = "imagenet"
    trunk_blocks: int = 14
    head_width: int = 256
    render_cell_rel: float = 0.015
    error_floor_rel: float = 0.01

    def __post_init__(self) -> None:
        def fail(name: str, want: str) -> None:
            raise InvalidInputError(f"ScorerConfig.{name}: expected {want}, got {getattr(self, name)!r}.")

        for name, low in (("crop_size", 32), ("trunk_blocks", 2), ("head_width", 8)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                fail(name, f"an int >= {low}")
        if self.crop_size % 32:
            fail("crop_size", "a multiple of 32")
        if self.trunk_blocks > 14:
            fail("trunk_blocks", "an int <= 14")
        if self.trunk not in ("imagenet", "scratch"):
            fail("trunk", "'imagenet' or 'scratch'")
        for name in ("render_cell_rel", "error_floor_rel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                fail(name, "a number > 0")
        if isinstance(self.zoom_margin, bool) or not isinstance(self.zoom_margin, (int, float)) \
                or not self.zoom_margin >= 1:
            fail("zoom_margin", "a number >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
