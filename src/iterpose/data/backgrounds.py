"""Procedural backgrounds for synthetic images: one generator (colour field, random shapes, noise), a busier
variant built on it (textured patches, lines, blocks), that variant toned like an indoor photograph, and random
crops of a folder of the user's images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from iterpose.data.images import read_rgb_uint8
from iterpose.errors import InvalidInputError, MissingFileError

__all__ = ["fast_procedural_background", "clutter_background", "photo_background", "NOISE_TILE_PAD",
           "noise_tile", "gaussian_noise", "list_background_images", "image_background", "IMAGE_SUFFIXES"]


def _colour_field(height: int, width: int, rng: np.random.Generator, fn: str) -> np.ndarray:
    """The low-frequency part of the backgrounds: ``[height, width, 3]`` float32, a bilinear upsampling of a random
    4 x 5 grid of colours in 0.1..0.9."""
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"{fn}: size must be positive, got {height}x{width}")
    coarse = rng.uniform(0.1, 0.9, size=(4, 5, 3)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


# ----------------------------------------------------------------------------------------------------------------
# Fast backgrounds and noise for the synthetic data generator (iterpose.data.synth)
# ----------------------------------------------------------------------------------------------------------------

NOISE_TILE_PAD = 64
"""Extra rows/columns of the cached noise tile: a noise window starts at one of ``64 x 64`` offsets."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes :func:`list_background_images` picks up (case-insensitive)."""

_NOISE_TILES: dict[tuple[int, int], np.ndarray] = {}


def noise_tile(height: int, width: int) -> np.ndarray:
    """A fixed standard-normal tile ``[height + 64, width + 64, 3]`` float32 (seed 0), cached per size.

    Drawing ~1 M Gaussian numbers per image costs ~10-20 ms on a small CPU, more than rendering the rest of the
    image's noise budget allows; :func:`gaussian_noise` instead reads a window of this tile at a random offset,
    with a random channel permutation and sign. Deterministic: the tile depends only on the size.
    """
    key = (int(height), int(width))
    tile = _NOISE_TILES.get(key)
    if tile is None:
        tile = np.random.default_rng(0).standard_normal(
            (key[0] + NOISE_TILE_PAD, key[1] + NOISE_TILE_PAD, 3), dtype=np.float32)
        _NOISE_TILES[key] = tile
    return tile


def gaussian_noise(height: int, width: int, rng: np.random.Generator, std: float) -> np.ndarray:
    """Zero-mean Gaussian noise ``[height, width, 3]`` float32 with standard deviation ``std`` (image units).

    A window of :func:`noise_tile` at a random offset (64 x 64 choices), random channel order (6) and sign (2),
    scaled by ``std``: per-pixel values are exactly N(0, std^2) distributed; patterns repeat across images only
    up to these 768 variants (enough for augmentation, documented so nobody uses it as a noise *model*).
    """
    tile = noise_tile(height, width)
    oy, ox = (int(v) for v in rng.integers(0, NOISE_TILE_PAD + 1, size=2))
    perm = rng.permutation(3)
    sign = np.float32(1.0 if rng.random() < 0.5 else -1.0)
    win = tile[oy:oy + height, ox:ox + width]
    out = np.empty((height, width, 3), np.float32)
    for c in range(3):
        np.multiply(win[:, :, perm[c]], sign * np.float32(std), out=out[:, :, c])
    return out


def fast_procedural_background(height: int, width: int, rng: np.random.Generator, n_shapes: int = 12,
                               noise_std: float = 0.02) -> np.ndarray:
    """The procedural background: a low-frequency colour field, random filled rectangles and ellipses with
    anti-aliased edges, and fine noise (from :func:`gaussian_noise`), float32 throughout — enough structure that a
    refiner cannot lock onto a flat background. (An earlier, ~10x slower variant blurred the whole image instead of
    anti-aliasing; it survives only as the refiner tests' fixture, whose seeds were chosen with it.)

    Args:
        height, width: image size in pixels.
        rng: numpy random generator (all randomness comes from it).
        n_shapes: how many random shapes to draw.
        noise_std: standard deviation of the fine noise (0..1 image units).

    Returns:
        ``[height, width, 3]`` float32 RGB in 0..1.
    """
    img = _colour_field(height, width, rng, "fast_procedural_background")
    shapes = rng.random((n_shapes, 9))
    for s in shapes:  # anti-aliased edges instead of a blur pass
        color = (float(s[0]), float(s[1]), float(s[2]))
        cx, cy = int(s[3] * width), int(s[4] * height)
        a = int(8 + s[5] * max(1, width // 6 - 8))
        b = int(8 + s[6] * max(1, height // 6 - 8))
        if s[7] < 0.5:
            cv2.rectangle(img, (cx - a, cy - b), (cx + a, cy + b), color, -1, cv2.LINE_AA)
        else:
            cv2.ellipse(img, (cx, cy), (a, b), float(s[8] * 180.0), 0, 360, color, -1, cv2.LINE_AA)
    if noise_std > 0:
        img = cv2.scaleAdd(gaussian_noise(height, width, rng, 1.0), float(noise_std), img)
    return np.clip(img, 0.0, 1.0, out=img)


def _pattern(h: int, w: int, kind: int, rng: np.random.Generator) -> np.ndarray:
    """``[h, w]`` float32 in 0..1: stripes (0), a checkerboard (1), blocky noise (2) or fine noise (3), at a random
    scale and angle."""
    if kind == 2 or kind == 3:
        cell = int(rng.integers(2, 12)) if kind == 2 else 1
        coarse = rng.random(((h + cell - 1) // cell, (w + cell - 1) // cell)).astype(np.float32)
        return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST if kind == 2 else cv2.INTER_LINEAR)
    period = float(rng.uniform(3.0, 24.0))
    angle = float(rng.uniform(0.0, np.pi))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u = x * np.cos(angle) + y * np.sin(angle)
    if kind == 0:
        return (np.sin(u * (2 * np.pi / period)) > 0).astype(np.float32)
    v = -x * np.sin(angle) + y * np.cos(angle)
    return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)


def clutter_background(height: int, width: int, rng: np.random.Generator, noise_std: float = 0.02) -> np.ndarray:
    """A busy, photo-like background: :func:`fast_procedural_background` plus textured patches (stripes,
    checkerboards, blocky and fine noise in two random colours), dark and bright line segments and small
    black-and-white blocks.

    Real scenes (e.g. LM-O's cluttered tables with a marker board) are full of edges and texture; a network
    trained only on smooth backgrounds learns "textured = object" and responds to every edge of a real photograph.

    Returns:
        ``[height, width, 3]`` float32 RGB in 0..1.
    """
    img = fast_procedural_background(height, width, rng, n_shapes=int(rng.integers(10, 30)), noise_std=0.0)
    scale = max(height, width)
    for _ in range(int(rng.integers(6, 16))):  # textured patches
        pw = int(rng.integers(scale // 16, scale // 3))
        ph = int(rng.integers(scale // 16, scale // 3))
        x0, y0 = int(rng.integers(-pw // 2, width)), int(rng.integers(-ph // 2, height))
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + pw, width), min(y0 + ph, height)
        if xb <= xa or yb <= ya:
            continue
        pat = _pattern(yb - ya, xb - xa, int(rng.integers(0, 4)), rng)[..., None]
        c0, c1 = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
        patch = c0 + (c1 - c0) * pat
        if rng.random() < 0.5:  # an elliptical patch rather than a rectangle
            mask = np.zeros((yb - ya, xb - xa), np.uint8)
            cv2.ellipse(mask, ((xb - xa) // 2, (yb - ya) // 2), ((xb - xa) // 2, (yb - ya) // 2), 0, 0, 360, 1, -1)
            img[ya:yb, xa:xb] = np.where(mask[..., None] > 0, patch, img[ya:yb, xa:xb])
        else:
            img[ya:yb, xa:xb] = patch
    for _ in range(int(rng.integers(10, 40))):  # cables, edges of furniture, printed lines
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(p0[0] + rng.normal(0, scale / 4)), int(p0[1] + rng.normal(0, scale / 4)))
        colour = tuple(float(c) for c in (rng.random(3) * 0.25 if rng.random() < 0.6 else 0.75 + rng.random(3) * 0.25))
        cv2.line(img, p0, p1, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 20))):  # marker-like black and white blocks
        side = int(rng.integers(4, max(5, scale // 20)))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        v = 0.05 if rng.random() < 0.5 else 0.95
        cv2.rectangle(img, (x, y), (x + side, y + side), (v, v, v), -1)
    if noise_std > 0:
        img = cv2.scaleAdd(gaussian_noise(height, width, rng, 1.0), float(noise_std), img)
    return np.clip(img, 0.0, 1.0, out=img)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def photo_background(height: int, width: int, rng: np.random.Generator, noise_std: float = 0.02) -> np.ndarray:
    """:func:`clutter_background` toned like an indoor photograph: colours pulled towards grey (saturation
    x 0.1..0.6), darker mid-tones (gamma 1..1.8, then x 0.6..1), a fine multiplicative surface texture (1-3 px
    grain, 5-25 %), a soft illumination ramp, a slight defocus blur (sigma 0.3..1.2 px) and sensor noise.

    Why: the clutter background is about twice as saturated and 1.6x brighter than real table-top photographs
    (median HSV saturation 0.55 vs 0.29 and mean grey 0.51 vs 0.32 on LM-O test images at 320 x 240), and flat
    where photographs are textured everywhere. The ranges are broad rather than fitted to one dataset. (A DeepIM
    trained on clutter scores the same on these, so for it the background's tone is not the gap to real images:
    ``benchmarks/RESULTS_deepim.md``.)

    Returns:
        ``[height, width, 3]`` float32 RGB in 0..1.
    """
    img = clutter_background(height, width, rng, noise_std=0.0)
    grey = (img @ _LUMA)[..., None]
    img = grey + np.float32(rng.uniform(0.1, 0.6)) * (img - grey)
    cell = int(rng.integers(1, 4))
    coarse = rng.random(((height + cell - 1) // cell, (width + cell - 1) // cell)).astype(np.float32)
    grain = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    img *= (1.0 + np.float32(rng.uniform(0.05, 0.25)) * (grain - 0.5))[..., None]
    angle = float(rng.uniform(0.0, 2 * np.pi))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (x / max(width - 1, 1) - 0.5) * np.cos(angle) + (y / max(height - 1, 1) - 0.5) * np.sin(angle)
    img = np.power(np.clip(img, 0.0, 1.0), np.float32(rng.uniform(1.0, 1.8)))  # darker mid-tones, whites kept
    img *= (np.float32(rng.uniform(0.6, 1.0)) * (1.0 + np.float32(rng.uniform(0.0, 0.6)) * ramp))[..., None]
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 1.2)))
    if noise_std > 0:
        img = cv2.scaleAdd(gaussian_noise(height, width, rng, 1.0), float(noise_std), img)
    return np.clip(img, 0.0, 1.0, out=img)


def list_background_images(folder) -> tuple:
    """The image files (:data:`IMAGE_SUFFIXES`) directly in ``folder``, sorted by name.

    Raises:
        MissingFileError: ``folder`` does not exist or holds no image file (the message says what to pass).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(
            f"background folder {folder} does not exist; pass a folder of images or background='procedural'")
    files = tuple(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise MissingFileError(
            f"background folder {folder} holds no image ({', '.join(IMAGE_SUFFIXES)}); add images or use "
            f"background='procedural'")
    return files


def image_background(paths, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop (50-100 % of the shorter side, the image's aspect kept to the output's) of a random image of
    ``paths``, randomly mirrored, resized to ``[height, width, 3]`` float32 RGB 0..1.

    Raises:
        DataFormatError / MissingFileError: the chosen file cannot be read (the message names it).
    """

    path = paths[int(rng.integers(len(paths)))]
    im = read_rgb_uint8(path, what="background image")
    h0, w0 = im.shape[:2]
    scale = float(rng.uniform(0.5, 1.0))
    ch = max(1, min(h0, int(round(min(h0, w0 * height / width) * scale))))
    cw = max(1, min(w0, int(round(ch * width / height))))
    y0 = int(rng.integers(0, h0 - ch + 1))
    x0 = int(rng.integers(0, w0 - cw + 1))
    crop = im[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_LINEAR)
    return out.astype(np.float32) * np.float32(1.0 / 255.0)
