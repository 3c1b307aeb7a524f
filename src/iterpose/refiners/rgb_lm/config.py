"""`RgbLMConfig`: every setting of the RGB-LM refiner, with its one default, checked when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from iterpose.errors import InvalidInputError
from iterpose.refiners.lm import LMSettings
from iterpose.refiners.photometric import RobustLoss

__all__ = ["RgbLMConfig"]


@dataclass(frozen=True)
class RgbLMConfig:
    """Settings of :class:`iterpose.refiners.RgbLM` (units: crop pixels, metres, radians, intensities 0..1).

    Attributes:
        iterations: LM iterations per call (each renders every object once).
        crop_size: side S of the square zoomed crop, pixels.
        crop_margin: crop side = ``2 * crop_margin`` x the projected bounding-sphere radius at the initial pose.
        proxy_cell_rel: vertex-clustering cell of the render proxy, as a fraction of the object diameter.
        hist_bins: histogram bins per RGB channel of the region term (joint histogram of ``bins^3``).
        bg_band_px: width of the band outside the initial silhouette whose pixels form the background histogram.
        hist_update_every: re-estimate the histograms from the current silhouette every this many iterations
            (0: never; the initial silhouette's histograms are used throughout).
        hist_update_rate: blend factor of a re-estimate (1: replace, RBOT uses 0.1-0.2 per frame).
        region_band_px: pixels with ``|Phi| <=`` this feed the region term's normal equations.
        heaviside_slope: slope ``s`` of the smoothed Heaviside ``1/2 + atan(s Phi)/pi``.
        weight_region: weight of the region energy in the total cost.
        weight_lines: weight of the correspondence-line cost (:mod:`iterpose.refiners.rgb_lm.contour_lines`).
        line_length_px: half length of each correspondence line (crop pixels).
        line_scale_px: Huber scale of the line residuals (crop pixels).
        weight_photometric: weight of the photometric cost (0 disables the term).
        photo_sigma: residual scale of the photometric term (intensity units).
        robust_loss: ``"l2" | "huber" | "cauchy" | "tukey"``.
        photo_edge_px: photometric pixels must be this far inside the silhouette (mixed pixels excluded).
        blur_sigma: Gaussian blur (crop pixels) of the observed crop before its Sobel gradients.
        gain_bias: fit a gain and bias per object and channel (brightness changes).
        occlusion: exclude pixels where another object of the same image is in front (at the initial poses).
        accept_margin: the refined pose is kept only if its accept energy is lower than the initial pose's by
            more than this (nats per pixel). 0.01 won the LM-O validation sweep over 0 and 0.03
            (benchmarks/RESULTS_rgb_lm.md, "variant" table).
        accept_edge_ratio: the refined pose must also keep at least this fraction of the initial pose's image
            edge strength across the rendered contour (0 disables the check). 1.05 won over 0.95 and 1.0 in the
            same sweep (0.95 lost Proj@5px; 1.05 kept it and gained ADD(-S)).
        depth_fallback: when the refined pose fails the accept test (and did not diverge), return the initial
            pose slid along its viewing ray to the refined depth (status ``DEPTH_ONLY``) instead of the initial
            pose. On LM-O the silhouette's size (depth) is the reliable part of the region term's answer, its
            image position and rotation are not better than a keypoint estimator's (benchmarks/RESULTS_rgb_lm.md).
        depth_fallback_check: what the depth-only pose must pass: ``"none"``, ``"energy"`` (a lower accept energy
            than the initial pose), ``"margin"`` (lower by ``accept_margin``) or ``"accept"`` (the same accept
            test as the refined pose).
        max_rotation_deg, max_translation_rel: a result farther than this from the initial pose (degrees; times
            the diameter) is DIVERGED and the initial pose is kept.
        min_step: an object stops when its accepted step is below this (metres and radians, max-norm).
        lm: damping schedule and per-step limits.
    """

    iterations: int = 10
    crop_size: int = 96
    crop_margin: float = 1.3
    proxy_cell_rel: float = 0.02
    hist_bins: int = 16
    bg_band_px: float = 16.0
    hist_update_every: int = 0
    hist_update_rate: float = 1.0
    region_band_px: float = 8.0
    heaviside_slope: float = 1.2
    weight_region: float = 1.0
    weight_lines: float = 0.0
    line_length_px: int = 12
    line_scale_px: float = 2.0
    weight_photometric: float = 0.0
    photo_sigma: float = 0.1
    robust_loss: RobustLoss = "cauchy"
    photo_edge_px: int = 2
    blur_sigma: float = 1.0
    gain_bias: bool = True
    occlusion: bool = True
    accept_margin: float = 0.01
    accept_edge_ratio: float = 1.05
    depth_fallback: bool = True
    depth_fallback_check: Literal["none", "energy", "margin", "accept"] = "margin"
    max_rotation_deg: float = 45.0
    max_translation_rel: float = 0.5
    min_step: float = 1e-5
    lm: LMSettings = field(default_factory=LMSettings)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise InvalidInputError(f"RgbLMConfig: {what}; got {self!r}.")

        for name in ("iterations", "crop_size", "hist_bins", "photo_edge_px", "hist_update_every",
                     "line_length_px"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool), f"{name} must be an int, not {v!r}")
        need(self.iterations >= 0, "iterations must be >= 0")
        need(self.hist_update_every >= 0 and 0 < self.hist_update_rate <= 1,
             "hist_update_every must be >= 0 and hist_update_rate in (0, 1]")
        need(16 <= self.crop_size <= 1024, "crop_size must be in [16, 1024] pixels")
        need(self.crop_margin >= 1.0, "crop_margin must be >= 1 (the crop must contain the object)")
        need(0 <= self.proxy_cell_rel < 0.2, "proxy_cell_rel must be in [0, 0.2)")
        need(2 <= self.hist_bins <= 64, "hist_bins must be in [2, 64]")
        need(self.bg_band_px > 0 and self.region_band_px > 0 and self.heaviside_slope > 0,
             "bg_band_px, region_band_px and heaviside_slope must be > 0")
        need(self.weight_region >= 0 and self.weight_photometric >= 0 and self.weight_lines >= 0 and
             self.weight_region + self.weight_photometric + self.weight_lines > 0,
             "term weights must be >= 0 and not all 0")
        need(self.line_length_px >= 2 and self.line_scale_px > 0, "line_length_px must be >= 2, line_scale_px > 0")
        need(self.photo_sigma > 0 and self.blur_sigma >= 0 and self.photo_edge_px >= 0,
             "photo_sigma must be > 0, blur_sigma and photo_edge_px >= 0")
        need(self.robust_loss in get_args(RobustLoss), f"robust_loss must be one of {get_args(RobustLoss)}")
        need(self.max_rotation_deg > 0 and self.max_translation_rel > 0 and self.min_step >= 0,
             "max_rotation_deg and max_translation_rel must be > 0, min_step >= 0")
        need(isinstance(self.lm, LMSettings), "lm must be an LMSettings")
        need(self.depth_fallback_check in ("none", "energy", "margin", "accept"),
             "depth_fallback_check must be 'none', 'energy', 'margin' or 'accept'")

    def to_dict(self) -> dict:
        """Plain (YAML/JSON-able) dict of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RgbLMConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(d)
        lm = d.pop("lm", None)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"RgbLMConfig.from_dict: unknown keys {unknown}; known: {sorted(known)}.")
        if lm is not None:
            d["lm"] = LMSettings(**lm)
        return cls(**d)
