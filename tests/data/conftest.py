"""A tiny hand-written BOP dataset, written through iterpose.data.bop_writer, for the reader tests.

Layout: dataset "tiny", split "test", scene 1 with images 0 and 7 (8 x 6 pixels, deliberately not square),
two objects (ids 3 and 12), depth (depth_scale 0.1) and masks for every GT instance; image 7 has a third,
placeholder instance (cam_t_m2c all -1) and world->camera extrinsics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from iterpose.data import bop_writer as W

H, W_PX = 6, 8


@dataclass
class TinyBop:
    root: Path
    scene_camera: dict
    scene_gt: dict
    scene_gt_info: dict
    targets: list
    rgb: dict
    depth_mm: dict
    masks: dict
    masks_visib: dict


def _rot(angle: float, axis: str) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def build_tiny_bop(root: Path) -> TinyBop:
    rng = np.random.default_rng(7)
    scene = root / "test" / "000001"
    for sub in ("rgb", "depth", "mask", "mask_visib"):
        (scene / sub).mkdir(parents=True)
    (root / "models").mkdir()
    K0 = np.array([[500.5, 0.0, 3.25], [0.0, 510.125, 2.75], [0.0, 0.0, 1.0]])
    K7 = np.array([[499.0, 0.0, 4.0], [0.0, 498.5, 3.0], [0.0, 0.0, 1.0]])
    scene_camera = {
        0: {"cam_K": K0, "depth_scale": 0.1},
        7: {"cam_K": K7, "depth_scale": 0.1, "cam_R_w2c": _rot(0.3, "x"), "cam_t_w2c": np.array([1.5, -2.0, 700.25])},
    }
    scene_gt = {
        0: [
            {"obj_id": 3, "cam_R_m2c": _rot(0.1, "z"), "cam_t_m2c": np.array([10.0, -20.5, 800.123456789])},
            {"obj_id": 12, "cam_R_m2c": _rot(-1.2, "x"), "cam_t_m2c": np.array([-55.5, 3.0, 950.0])},
        ],
        7: [
            {"obj_id": 12, "cam_R_m2c": _rot(2.0, "z") @ _rot(0.5, "x"), "cam_t_m2c": np.array([0.1, 0.2, 600.3])},
            {"obj_id": 3, "cam_R_m2c": np.eye(3), "cam_t_m2c": np.array([7.0, 8.0, 1200.0])},
            {"obj_id": 3, "cam_R_m2c": np.eye(3), "cam_t_m2c": np.array([-1.0, -1.0, -1.0])},
        ],
    }
    scene_gt_info = {
        0: [
            {"bbox_obj": [1, 2, 3, 2], "bbox_visib": [1, 2, 2, 2], "px_count_all": 9, "px_count_valid": 8,
             "px_count_visib": 6, "visib_fract": 6 / 9},
            {"bbox_obj": [4, 0, 3, 4], "bbox_visib": [4, 0, 3, 4], "px_count_all": 12, "px_count_valid": 12,
             "px_count_visib": 12, "visib_fract": 1.0},
        ],
        7: [
            {"bbox_obj": [0, 0, 7, 5], "bbox_visib": [0, 0, 7, 5], "px_count_all": 40, "px_count_valid": 40,
             "px_count_visib": 40, "visib_fract": 1.0},
            {"bbox_obj": [2, 2, 1, 1], "bbox_visib": [-1, -1, -1, -1], "px_count_all": 2, "px_count_valid": 2,
             "px_count_visib": 0, "visib_fract": 0.0},
            {"bbox_obj": [-1, -1, -1, -1], "bbox_visib": [-1, -1, -1, -1], "px_count_all": 0, "px_count_valid": 0,
             "px_count_visib": 0, "visib_fract": 0.0},
        ],
    }
    targets = [
        {"scene_id": 1, "im_id": 0, "obj_id": 3, "inst_count": 1},
        {"scene_id": 1, "im_id": 0, "obj_id": 12, "inst_count": 1},
        {"scene_id": 1, "im_id": 7, "obj_id": 12, "inst_count": 1},
    ]
    W.save_scene_camera(scene / "scene_camera.json", scene_camera)
    W.save_scene_gt(scene / "scene_gt.json", scene_gt)
    W.save_scene_gt_info(scene / "scene_gt_info.json", scene_gt_info)
    W.save_targets(root / "test_targets_bop19.json", targets)
    W.save_camera(root / "camera.json", K0, width=W_PX, height=H, depth_scale=0.1)

    rgb, depth_mm, masks, masks_visib = {}, {}, {}, {}
    for im_id in (0, 7):
        rgb[im_id] = rng.integers(0, 256, size=(H, W_PX, 3), dtype=np.uint8)
        W.save_rgb(scene / "rgb" / f"{im_id:06d}.png", rgb[im_id])
        d = rng.uniform(300.0, 1500.0, size=(H, W_PX))
        d[0, 1] = 0.0  # a missing measurement
        depth_mm[im_id] = d
        W.save_depth_mm(scene / "depth" / f"{im_id:06d}.png", d, depth_scale=0.1)
        for gt_id in range(len(scene_gt[im_id])):
            m = np.zeros((H, W_PX), bool)
            m[gt_id : gt_id + 2, 1 + gt_id : 5] = True
            mv = m.copy()
            mv[gt_id, 1 + gt_id] = False
            masks[im_id, gt_id], masks_visib[im_id, gt_id] = m, mv
            W.save_mask(scene / "mask" / f"{im_id:06d}_{gt_id:06d}.png", m)
            W.save_mask(scene / "mask_visib" / f"{im_id:06d}_{gt_id:06d}.png", mv)
    return TinyBop(root, scene_camera, scene_gt, scene_gt_info, targets, rgb, depth_mm, masks, masks_visib)


@pytest.fixture
def tiny_bop(tmp_path) -> TinyBop:
    return build_tiny_bop(tmp_path / "tiny")
