"""Backgrounds: size, range, determinism, and the clutter variant really is busier (more edges) than the plain one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from iterpose.data.backgrounds import clutter_background, fast_procedural_background
from iterpose.data.synth import SynthConfig, generate_scene, scene_rng
from iterpose.mesh import example_object


def _edge_density(img: np.ndarray) -> float:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    return float((np.hypot(gx, gy) > 0.5).mean())


@pytest.mark.parametrize("fn", [fast_procedural_background, clutter_background])
def test_shape_range_and_determinism(fn):
    a = fn(60, 80, np.random.default_rng(3))
    b = fn(60, 80, np.random.default_rng(3))
    assert a.shape == (60, 80, 3) and a.dtype == np.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert np.array_equal(a, b)
    assert not np.array_equal(a, fn(60, 80, np.random.default_rng(4)))


def test_clutter_has_more_edges_than_the_plain_background():
    plain = [_edge_density(fast_procedural_background(240, 320, np.random.default_rng(k), noise_std=0.0))
             for k in range(8)]
    busy = [_edge_density(clutter_background(240, 320, np.random.default_rng(k), noise_std=0.0)) for k in range(8)]
    assert np.median(busy) > 3 * np.median(plain)


def test_synth_config_accepts_clutter_and_rejects_unknown_kinds():
    cfg = SynthConfig(height=60, width=80, K=(80.0, 0, 40, 0, 80.0, 30, 0, 0, 1), distance_m=(0.5, 0.6),
                      background="clutter", margin_px=4.0)
    scene = generate_scene([example_object()], cfg, scene_rng(0, 0))
    assert scene.rgb.shape == (3, 60, 80)
    with pytest.raises(Exception, match="background"):
        SynthConfig(background="no/such/folder")


def _saturation_and_brightness(img: np.ndarray) -> tuple[float, float]:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return float(hsv[..., 1].mean()), float(hsv[..., 2].mean())


def test_photo_background_is_muted_darker_and_still_busy():
    from iterpose.data.backgrounds import photo_background

    a = photo_background(60, 80, np.random.default_rng(3))
    assert a.shape == (60, 80, 3) and a.dtype == np.float32 and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert np.array_equal(a, photo_background(60, 80, np.random.default_rng(3)))
    clutter = [_saturation_and_brightness(clutter_background(240, 320, np.random.default_rng(k))) for k in range(8)]
    photo = [_saturation_and_brightness(photo_background(240, 320, np.random.default_rng(k))) for k in range(8)]
    assert np.median([p[0] for p in photo]) < 0.8 * np.median([c[0] for c in clutter])  # muted colours
    assert np.median([p[1] for p in photo]) < 0.8 * np.median([c[1] for c in clutter])  # darker
    plain = [_edge_density(fast_procedural_background(240, 320, np.random.default_rng(k), noise_std=0.0))
             for k in range(8)]
    busy = [_edge_density(photo_background(240, 320, np.random.default_rng(k), noise_std=0.0)) for k in range(8)]
    assert np.median(busy) > 2 * np.median(plain)


def test_synth_config_accepts_photo_backgrounds():
    cfg = SynthConfig(height=60, width=80, K=(80.0, 0, 40, 0, 80.0, 30, 0, 0, 1), distance_m=(0.5, 0.6),
                      background="photo", margin_px=4.0)
    scene = generate_scene([example_object()], cfg, scene_rng(0, 0))
    assert scene.rgb.shape == (3, 60, 80) and float(scene.rgb.min()) >= 0.0
