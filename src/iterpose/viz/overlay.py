"""Pose overlays: model contours drawn on the image, one colour per pose (initial, refined, GT...)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from iterpose.errors import ShapeError

__all__ = ["ContourLayer", "to_uint8_hwc", "draw_contours", "save_png", "POSE_COLORS"]

#: Colours (RGB) used everywhere for the same meaning.
POSE_COLORS = {
    "gt": (40, 220, 40),
    "init": (235, 50, 50),
    "refined": (40, 140, 255),
    "iteration": (255, 200, 0),
}


@dataclass(frozen=True)
class ContourLayer:
    """One silhouette to outline.

    Attributes:
        mask: ``[H, W]`` bool silhouette (numpy or torch).
        color: RGB 0..255.
        label: legend text, e.g. ``"init"``.
        thickness: line width in pixels.
    """

    mask: np.ndarray | torch.Tensor
    color: tuple[int, int, int]
    label: str = ""
    thickness: int = 2


def to_uint8_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert ``[3, H, W]`` float 0..1 (tensor or array) or ``[H, W, 3]`` uint8 to a new ``[H, W, 3]`` uint8 RGB array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.dtype != np.uint8:
        image = np.clip(np.transpose(image, (1, 2, 0)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ShapeError(f"to_uint8_hwc: expected [3, H, W] float or [H, W, 3] uint8, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def draw_contours(image: np.ndarray | torch.Tensor, layers: Sequence[ContourLayer], legend: bool = True) -> np.ndarray:
    """Outline each layer's silhouette on a copy of ``image`` and return ``[H, W, 3]`` uint8 RGB.

    Layers are drawn in order (the last one on top); a legend with each label's colour goes in the top-left corner.
    """
    canvas = to_uint8_hwc(image).copy()
    for layer in layers:
        mask = layer.mask.detach().cpu().numpy() if isinstance(layer.mask, torch.Tensor) else np.asarray(layer.mask)
        if mask.shape != canvas.shape[:2]:
            raise ShapeError(f"draw_contours: layer {layer.label!r} mask is {mask.shape}, image is {canvas.shape[:2]}")
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in layer.color), layer.thickness, cv2.LINE_AA)
    labelled = [layer for layer in layers if layer.label] if legend else []
    if labelled:
        width = 34 + 8 * max(len(layer.label) for layer in labelled)
        box = canvas[4 : 10 + 18 * len(labelled), 4:width]
        box[:] = (box * 0.35).astype(np.uint8)  # darken behind the legend so it reads on any image
        for k, layer in enumerate(labelled):
            y = 18 + 18 * k
            cv2.rectangle(canvas, (8, y - 10), (20, y + 2), tuple(int(c) for c in layer.color), -1)
            cv2.putText(canvas, layer.label, (26, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def save_png(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Write an ``[H, W, 3]`` uint8 RGB image as PNG (creating folders); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path
