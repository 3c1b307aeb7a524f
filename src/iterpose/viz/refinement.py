"""Pictures of a refinement: contours at the initial, refined and ground-truth poses, and strips of iterations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from iterpose.errors import ShapeError
from iterpose.geometry import project_points, transform_points
from iterpose.mesh.model import ObjectModel
from iterpose.render import rasterize
from iterpose.viz.overlay import POSE_COLORS, ContourLayer, draw_contours, to_uint8_hwc

__all__ = ["PoseSet", "pose_masks", "pose_overlay", "refinement_overlay", "iteration_strip"]

_NEAR_M = 0.01


def _renderable(T_co: torch.Tensor) -> torch.Tensor:
    """``[N]`` bool: finite poses in front of the camera (others are skipped in pictures)."""
    finite = torch.isfinite(T_co).flatten(1).all(dim=1)
    return finite & (T_co[:, 2, 3] > _NEAR_M)


def pose_masks(models: Sequence[ObjectModel], T_co: torch.Tensor, K: torch.Tensor, height: int, width: int
               ) -> torch.Tensor:
    """Silhouettes ``[N, H, W]`` bool of each model at its pose (``T_co [N, 4, 4]`` metres, ``K [3, 3]``).

    Poses that cannot be drawn (NaN, t = 0, behind the camera) give an empty mask instead of an error: a picture
    should show what it can.
    """
    if T_co.ndim != 3 or T_co.shape[1:] != (4, 4) or len(models) != T_co.shape[0]:
        raise ShapeError(f"pose_masks: need T_co [N, 4, 4] and N models, got {list(T_co.shape)} and {len(models)}")
    masks = torch.zeros(T_co.shape[0], height, width, dtype=torch.bool)
    T_co = T_co.detach().cpu().float()
    for i in torch.nonzero(_renderable(T_co)).flatten().tolist():
        v = transform_points(T_co[i], models[i].vertices.cpu())
        masks[i] = rasterize(v, models[i].faces.cpu(), K.float().cpu(), height, width).mask[0]
    return masks


@dataclass(frozen=True)
class PoseSet:
    """Instances drawn in one colour.

    Attributes:
        models: N models, one per instance.
        T_co: ``[N, 4, 4]`` poses in metres.
        kind: a key of :data:`POSE_COLORS` (``"gt"``, ``"init"``, ``"refined"``, ``"iteration"``).
        label: legend text.
    """

    models: Sequence[ObjectModel]
    T_co: torch.Tensor
    kind: str
    label: str


def pose_overlay(image: torch.Tensor | np.ndarray, K: torch.Tensor, pose_sets: Sequence[PoseSet]) -> np.ndarray:
    """Contours of every instance of each :class:`PoseSet` in its colour, with a legend.

    Args:
        image: ``[3, H, W]`` float 0..1 or ``[H, W, 3]`` uint8 RGB.
        K: ``[3, 3]`` intrinsics of the image, pixels.
        pose_sets: what to draw, in order (the last on top).

    Returns:
        ``[H, W, 3]`` uint8 RGB.
    """
    canvas = to_uint8_hwc(image)
    h, w = canvas.shape[:2]
    layers = []
    for ps in pose_sets:
        masks = pose_masks(ps.models, ps.T_co.detach().cpu(), K, h, w)
        # One layer per instance keeps touching objects' outlines separate; only the first carries the label.
        for k in range(masks.shape[0]):
            layers.append(ContourLayer(masks[k], POSE_COLORS[ps.kind], ps.label if k == 0 else "", thickness=2))
    return draw_contours(canvas, layers)


def refinement_overlay(image: torch.Tensor | np.ndarray, K: torch.Tensor, models: Sequence[ObjectModel],
                       T_init: torch.Tensor, T_refined: torch.Tensor | None = None, T_gt: torch.Tensor | None = None
                       ) -> np.ndarray:
    """Contours of every object at its ground-truth (green), initial (red) and refined (blue) pose.

    Args:
        image: ``[3, H, W]`` float 0..1 or ``[H, W, 3]`` uint8 RGB.
        K: ``[3, 3]`` intrinsics of the image, pixels.
        models: N models, one per instance (shared by the three pose sets).
        T_init, T_refined, T_gt: ``[N, 4, 4]`` poses in metres; ``T_refined`` and ``T_gt`` may be ``None``.

    Returns:
        ``[H, W, 3]`` uint8 RGB picture with a legend.
    """
    sets = [PoseSet(models, T, kind, label) for kind, label, T in
            (("gt", "ground truth", T_gt), ("init", "initial", T_init), ("refined", "refined", T_refined))
            if T is not None]
    return pose_overlay(image, K, sets)


def _crop_box(models: Sequence[ObjectModel], T: torch.Tensor, K: torch.Tensor, height: int, width: int,
              margin: float = 1.3) -> tuple[int, int, int]:
    """Square box (x0, y0, side) in pixels around the projected bounding sphere of ``models[0]`` at ``T[0]``.

    The box is kept where it overlaps the image padded by ``side`` on every side (what :func:`iteration_strip`
    crops from), so a pose projecting far outside the image, or not at all (NaN, behind the camera), still gives a
    valid panel.
    """
    centre = project_points(K.double(), T[:1, :3, 3].double()[None])[0, 0]
    z = float(T[0, 2, 3])
    radius_px = float(K[0, 0]) * models[0].diameter_m / 2 / max(z, 1e-6) if z > 0 else math.inf
    side = int(max(16, min(max(height, width), 2 * radius_px * margin)))
    cu, cv = float(centre[0]), float(centre[1])
    if not (z > 0 and math.isfinite(cu) and math.isfinite(cv)):
        cu, cv = (width - 1) / 2, (height - 1) / 2
    x0 = min(max(int(round(cu - side / 2)), -side), width)
    y0 = min(max(int(round(cv - side / 2)), -side), height)
    return x0, y0, side


def iteration_strip(image: torch.Tensor | np.ndarray, K: torch.Tensor, model: ObjectModel, trace: torch.Tensor,
                    T_gt: torch.Tensor | None = None, panel_px: int = 160, max_panels: int = 8) -> np.ndarray:
    """A row of zoomed panels, one per iteration, each with the contour at that iteration (and the GT in green).

    Args:
        image: ``[3, H, W]`` float 0..1 or ``[H, W, 3]`` uint8 RGB.
        K: ``[3, 3]`` intrinsics.
        model: the object.
        trace: ``[T + 1, 4, 4]`` poses of this object, entry 0 the initial pose.
        T_gt: optional ``[4, 4]`` ground truth.
        panel_px: side of each panel in pixels.
        max_panels: at most this many panels (iterations are subsampled evenly, first and last kept).

    Returns:
        ``[panel_px, n_panels * panel_px, 3]`` uint8 RGB.
    """
    if trace.ndim != 3 or trace.shape[1:] != (4, 4):
        raise ShapeError(f"iteration_strip: trace must be [T+1, 4, 4], got {list(trace.shape)}")
    canvas = to_uint8_hwc(image)
    h, w = canvas.shape[:2]
    trace = trace.detach().cpu()
    n = trace.shape[0]
    keep = sorted(set(np.linspace(0, n - 1, min(n, max_panels)).round().astype(int).tolist()))
    anchor = T_gt[None].cpu() if T_gt is not None else trace[:1]
    x0, y0, side = _crop_box([model], anchor, K, h, w)
    masks = pose_masks([model] * len(keep), trace[keep], K, h, w)
    gt_mask = pose_masks([model], T_gt[None].cpu(), K, h, w)[0] if T_gt is not None else None
    panels = []
    for k, it in enumerate(keep):
        layers = [] if gt_mask is None else [ContourLayer(gt_mask, POSE_COLORS["gt"], "", 1)]
        color = POSE_COLORS["init"] if it == 0 else POSE_COLORS["iteration"]
        layers.append(ContourLayer(masks[k], color, "", 1))
        full = draw_contours(canvas, layers, legend=False)
        full = cv2.copyMakeBorder(full, side, side, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        crop = full[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side]
        panel = cv2.resize(crop, (panel_px, panel_px), interpolation=cv2.INTER_AREA)
        cv2.putText(panel, f"it {it}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.concatenate(panels, axis=1)
