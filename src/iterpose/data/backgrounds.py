"""Procedural backgrounds for synthetic images: smooth colour fields, random shapes and noise."""

from __future__ import annotations

import cv2
import numpy as np

from iterpose.errors import InvalidInputError

__all__ = ["procedural_background"]


def procedural_background(height: int, width: int, rng: np.random.Generator, n_shapes: int = 12) -> np.ndarray:
    """A random background image.

    A low-frequency colour field (bilinear upsampling of a coarse random grid), random filled rectangles and
    ellipses, and fine noise — enough structure that a refiner cannot lock onto a flat background.

    Args:
        height, width: image size in pixels.
        rng: numpy random generator (all randomness comes from it).
        n_shapes: how many random shapes to draw.

    Returns:
        ``[height, width, 3]`` float32 RGB in 0..1.
    """
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"procedural_background: size must be positive, got {height}x{width}")
    coarse = rng.uniform(0.1, 0.9, size=(4, 5, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(n_shapes):
        color = tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        a, b = int(rng.integers(8, max(9, width // 6))), int(rng.integers(8, max(9, height // 6)))
        if rng.random() < 0.5:
            cv2.rectangle(img, (cx - a, cy - b), (cx + a, cy + b), color, -1)
        else:
            cv2.ellipse(img, (cx, cy), (a, b), float(rng.uniform(0, 180)), 0, 360, color, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    img += rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)
