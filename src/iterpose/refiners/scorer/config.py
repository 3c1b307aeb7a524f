"""`ScorerConfig`: every setting of the learned pose scorer (saved in its weights file), checked when built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from iterpose.refiners.deepim.config import check_encoder_fields

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
        check_encoder_fields(self, positive=("error_floor_rel",))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
