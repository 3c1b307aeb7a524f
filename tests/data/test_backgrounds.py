"""Backgrounds: size, range, determinism; the clutter and photo variants really are busier (more edges) than the
plain one, and the photo one is muted and darker than clutter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from iterpose.data.backgrounds import clutter_background, fast_procedural_background, photo_background
from iterpose.data.synth import SynthConfig, generate_scene, scene_rng
from iterpose.mesh import example_object


def _edge_density(img: np.ndarray) -> float:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    return float((np.hypot(gx, gy) > 0.5).mean())


@pytest.mark.parametrize("fn", [fast_procedural_background, clutter_background, photo_background])
def test_shape_range_and_determinism(fn):
    a = fn(60, 80, np.random.default_rng(3))
    b = fn(60, 80, np.random.default_rng(3))
    assert a.shape == (60, 80, 3) and a.dtype == np.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert np.array_equal(a, b)
    assert not np.array_equal(a, fn(60, 80, np.random.default_rng(4)))


@pytest.mark.parametrize("fn, factor", [(clutter_background, 3), (photo_background, 2)])
def test_busy_backgrounds_have_more_edges_than_the_plain_one(fn, factor):
    plain = [_edge_density(fast_procedural_background(240, 320, np.random.default_rng(k), noise_std=0.0))
             for k in range(8)]
    busy = [_edge_density(fn(240, 320, np.random.default_rng(k), noise_std=0.0)) for k in range(8)]
    assert np.median(busy) > factor * np.median(plain)


@pytest.mark.parametrize("kind", ["clutter", "photo"])
def test_synth_config_accepts_generated_kinds_and_rejects_unknown_ones(kind):
    cfg = SynthConfig(height=60, width=80, K=(80.0, 0, 40, 0, 80.0, 30, 0, 0, 1), distance_m=(0.5, 0.6),
                      background=kind, margin_px=4.0)
    scene = generate_scene([example_object()], cfg, scene_rng(0, 0))
    assert scene.rgb.shape == (3, 60, 80)
    with pytest.raises(Exception, match="background"):
        SynthConfig(background="no/such/folder")


def _saturation_and_brightness(img: np.ndarray) -> tuple[float, float]:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return float(hsv[..., 1].mean()), float(hsv[..., 2].mean())


def test_photo_background_is_muted_and_darker_than_clutter():
    clutter = [_saturation_and_brightness(clutter_background(240, 320, np.random.default_rng(k))) for k in range(8)]
    photo = [_saturation_and_brightness(photo_background(240, 320, np.random.default_rng(k))) for k in range(8)]
    assert np.median([p[0] for p in photo]) < 0.8 * np.median([c[0] for c in clutter])  # muted colours
    assert np.median([p[1] for p in photo]) < 0.8 * np.median([c[1] for c in clutter])  # darker
