"""The demo runs end to end and its numbers agree with an independent computation."""

from __future__ import annotations

import json

import cv2
import numpy as np
import torch

from iterpose.cli.main import main
from iterpose.demo import make_demo_scene, pose_errors, run_demo


def test_demo_writes_overlay_and_errors(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "ADD mm" in out and "overlay written" in out
    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    assert overlay.shape == (480, 640, 3)
    errors = json.loads((tmp_path / "errors.json").read_text())
    init = errors["init"]
    assert all(np.isfinite(v) for v in init.values())
    assert init["rot_deg"] > 0.5 and init["add_mm"] > 1.0  # the initial pose really is perturbed


def test_demo_scene_object_is_visible_and_deterministic():
    model, image, K, T_gt = make_demo_scene(seed=5)
    _, image2, _, T_gt2 = make_demo_scene(seed=5)
    assert torch.equal(image, image2) and torch.equal(T_gt, T_gt2)
    assert image.shape == (3, 480, 640) and float(image.min()) >= 0 and float(image.max()) <= 1
    assert 0.40 < float(T_gt[2, 3]) < 0.50  # 0.45 m away, object centre at the origin of the model frame


def test_pose_errors_of_pure_translation():
    model, _, K, T_gt = make_demo_scene(seed=1)
    T = T_gt.clone()
    T[:3, 3] += torch.tensor([0.003, -0.004, 0.0])  # 5 mm sideways
    e = pose_errors(T, T_gt, K, model.vertices, model.diameter_m)
    assert abs(e.add_mm - 5.0) < 1e-3 and abs(e.trans_mm - 5.0) < 1e-3 and e.rot_deg < 1e-3


def test_run_demo_returns_paths(tmp_path):
    result = run_demo(tmp_path, seed=0, verbose=False)
    assert result.overlay_png.exists() and set(result.errors) == {"init"}
