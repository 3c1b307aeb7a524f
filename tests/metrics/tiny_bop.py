"""A tiny hand-made BOP dataset (2 objects, 3 target images) and results CSV for evaluate()/CLI tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

ASYM = [[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 10.0], [5.0, 7.0, -3.0]]
BOX = [[x, y, z] for x in (-20.0, 20.0) for y in (-10.0, 10.0) for z in (-5.0, 5.0)]
K = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
I3 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
RZ180 = [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]


def _ply(path: Path, pts) -> None:
    lines = ["ply", "format ascii 1.0", f"element vertex {len(pts)}", "property float x", "property float y",
             "property float z", "element face 1", "property list uchar int vertex_indices", "end_header"]
    lines += [" ".join(str(v) for v in p) for p in pts] + ["3 0 1 2"]
    path.write_text("\n".join(lines) + "\n")


def _diameter(pts) -> float:
    a = np.asarray(pts)
    return float(max(np.linalg.norm(a[i] - a[j]) for i in range(len(a)) for j in range(len(a))))


def make_dataset(root: Path) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    (root / "models_eval").mkdir(parents=True)
    _ply(root / "models_eval" / "obj_000001.ply", ASYM)
    _ply(root / "models_eval" / "obj_000002.ply", BOX)
    info = {
        "1": {"diameter": _diameter(ASYM)},
        "2": {"diameter": _diameter(BOX), "symmetries_discrete": [RZ180[0:3] + [0.0] + RZ180[3:6] + [0.0] + RZ180[6:9] + [0.0, 0, 0, 0, 1]]},
    }
    (root / "models_eval" / "models_info.json").write_text(json.dumps(info))
    (root / "camera.json").write_text(json.dumps({"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0,
                                                  "width": 640, "height": 480, "depth_scale": 1.0}))
    scene = root / "test" / "000001"
    (scene / "rgb").mkdir(parents=True)
    gt = {
        "0": [{"obj_id": 1, "cam_R_m2c": I3, "cam_t_m2c": [0.0, 0.0, 1000.0]}],
        "1": [{"obj_id": 1, "cam_R_m2c": I3, "cam_t_m2c": [10.0, 0.0, 1000.0]}],
        "2": [{"obj_id": 2, "cam_R_m2c": I3, "cam_t_m2c": [0.0, 20.0, 900.0]},
              {"obj_id": 1, "cam_R_m2c": I3, "cam_t_m2c": [50.0, 20.0, 900.0]}],
    }
    info_entry = {"bbox_obj": [0, 0, 1, 1], "bbox_visib": [0, 0, 1, 1], "px_count_all": 10, "px_count_valid": 10,
                  "px_count_visib": 9, "visib_fract": 0.9}
    gt_info = {"0": [info_entry], "1": [info_entry], "2": [info_entry, dict(info_entry, visib_fract=0.05)]}
    cam = {k: {"cam_K": K, "depth_scale": 1.0} for k in ("0", "1", "2")}
    (scene / "scene_gt.json").write_text(json.dumps(gt))
    (scene / "scene_gt_info.json").write_text(json.dumps(gt_info))
    (scene / "scene_camera.json").write_text(json.dumps(cam))
    targets = [{"scene_id": 1, "im_id": 0, "obj_id": 1, "inst_count": 1},
               {"scene_id": 1, "im_id": 1, "obj_id": 1, "inst_count": 1},
               {"scene_id": 1, "im_id": 2, "obj_id": 2, "inst_count": 1}]
    (root / "test_targets_bop19.json").write_text(json.dumps(targets))
    return root


def _row(scene, im, obj, score, R, t) -> str:
    return f"{scene},{im},{obj},{score},{' '.join(map(str, R))},{' '.join(map(str, t))},-1"


def make_results(path: Path, extra_rows=()) -> Path:
    """Estimates: im 0 obj 1 off by 1 mm (correct for everything) plus a lower-scored bad duplicate that must be
    ignored (inst_count 1); im 1 obj 1 off by 120 mm sideways (wrong for everything); im 2 obj 2 turned by 180 deg
    about its symmetry axis (right for ADI/MSSD/MSPD, wrong for ADD/proj/re); one row for an image without
    target (ignored)."""
    rows = ["scene_id,im_id,obj_id,score,R,t,time",
            _row(1, 0, 1, 0.9, I3, [1.0, 0.0, 1000.0]),
            _row(1, 0, 1, 0.1, RZ180, [300.0, 0.0, 1000.0]),
            _row(1, 1, 1, 0.8, I3, [130.0, 0.0, 1000.0]),
            _row(1, 2, 2, 0.7, RZ180, [0.0, 20.0, 900.0]),
            _row(1, 7, 1, 0.7, I3, [0.0, 0.0, 1000.0])]
    rows += list(extra_rows)
    path.write_text("\n".join(rows))
    return path


__all__ = ["make_dataset", "make_results", "_row", "I3", "math"]
