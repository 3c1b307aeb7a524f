"""`ReposeConfig`: every setting of the RePOSE model and of its refinement, checked when built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from iterpose.errors import InvalidInputError

__all__ = ["ReposeConfig"]


@dataclass(frozen=True)
class ReposeConfig:
    """RePOSE settings (architecture + refinement; saved in every checkpoint).

    Attributes:
        feature_channels: C of the image features and of the deep texture (RePOSE: 3).
        feature_stride: pixels of the image per feature pixel (2 or 4); rendering and the LM run at that scale.
        decoder_width: channels of the feature decoder.
        trunk: ``"imagenet"`` (MobileNetV2 trunk initialised from ImageNet weights, see
            :mod:`iterpose.refiners.repose.features`) or ``"scratch"`` (same architecture, random init). Only
            matters when a model is created for training; a checkpoint holds all weights either way.
        trunk_frozen: keep the trunk fixed during training (only the decoder, texture and damping learn); must be
            false for ``trunk="scratch"``.
        texture: ``"deep"`` (learned latent per vertex + MLP) or ``"rgb"`` (fixed vertex colours; ablation).
        texture_latent_dim, texture_hidden: size of each vertex's code and of the texture MLP's hidden layer.
        render_cell_rel: the render mesh is the model simplified by vertex clustering on a grid of this fraction
            of its diameter (:func:`iterpose.refiners.proxy_mesh.make_proxy_mesh`).
        iterations: LM iterations (RePOSE: 5).
        damping: ``"learned"`` (an MLP maps residual statistics to lambda, RePOSE) or ``"fixed"``.
        fixed_damping: lambda for ``damping="fixed"`` and the learned MLP's starting value.
        max_step_rot_rad, max_step_trans_rel: each LM step is scaled down (differentiably) so that it rotates at
            most this much and translates at most this fraction of the object's diameter.
        window_margin: the comparison window around an object is its projected bounding sphere's diameter times
            this (fixed at the initial pose, as RePOSE's crop).
        max_window_px: cap on the window side, in image pixels (bigger objects are compared in part).
        accept_test: keep the initial pose when the refined one explains the features worse (see the refiner).
        select_best_iterate: when refining, return the iterate with the lowest feature residual instead of the
            last one (training always uses the unrolled trace).
        feature_crop_margin_px: when refining, the image network runs only on the box around all of an image's
            comparison windows, enlarged by this many pixels on each side (its values near the box's edge then see
            the same context as in the full image); ``-1`` runs it on the whole image. Training always uses whole
            (small) images.
    """

    feature_channels: int = 8
    feature_stride: int = 4
    decoder_width: int = 48
    trunk: Literal["imagenet", "scratch"] = "imagenet"
    trunk_frozen: bool = True
    texture: Literal["deep", "rgb"] = "deep"
    texture_latent_dim: int = 16
    texture_hidden: int = 32
    render_cell_rel: float = 0.04
    iterations: int = 5
    damping: Literal["learned", "fixed"] = "learned"
    fixed_damping: float = 0.1
    max_step_rot_rad: float = 0.35
    max_step_trans_rel: float = 0.3
    window_margin: float = 1.5
    max_window_px: int = 384
    accept_test: bool = True
    select_best_iterate: bool = False
    feature_crop_margin_px: int = 32

    def __post_init__(self) -> None:
        def fail(name: str, want: str) -> None:
            raise InvalidInputError(f"ReposeConfig.{name}: expected {want}, got {getattr(self, name)!r}.")

        for name in ("feature_channels", "decoder_width", "texture_latent_dim", "texture_hidden", "iterations",
                     "max_window_px"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "iterations" else 1):
                fail(name, "a positive int")
        if self.feature_stride not in (2, 4):
            fail("feature_stride", "2 or 4")
        if self.trunk not in ("imagenet", "scratch"):
            fail("trunk", "'imagenet' or 'scratch'")
        if self.texture not in ("deep", "rgb"):
            fail("texture", "'deep' or 'rgb'")
        if self.damping not in ("learned", "fixed"):
            fail("damping", "'learned' or 'fixed'")
        for name in ("render_cell_rel", "fixed_damping", "max_step_rot_rad", "max_step_trans_rel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                fail(name, "a number > 0")
        if isinstance(self.window_margin, bool) or not isinstance(self.window_margin, (int, float)) \
                or not self.window_margin >= 1:
            fail("window_margin", "a number >= 1")
        if not isinstance(self.trunk_frozen, bool):
            fail("trunk_frozen", "true or false")
        if self.trunk == "scratch" and self.trunk_frozen:
            raise InvalidInputError("ReposeConfig: trunk='scratch' needs trunk_frozen=false (a random trunk must be "
                                    "trained).")
        m = self.feature_crop_margin_px
        if isinstance(m, bool) or not isinstance(m, int) or m < -1:
            fail("feature_crop_margin_px", "an int >= 0, or -1 (whole image)")
        if not isinstance(self.select_best_iterate, bool):
            fail("select_best_iterate", "true or false")
        if not isinstance(self.accept_test, bool):
            fail("accept_test", "true or false")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
