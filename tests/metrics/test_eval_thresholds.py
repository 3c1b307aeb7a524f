"""evaluate() at the edges BOP defines: errors exactly at a threshold (strict ``<``, single-GT fast path and greedy
multi-GT path), MSPD scaled by ``640 / image_width``, the ADD-S direction, and symmetries with a translation offset.

Every scene is built so that its errors are exact floats (integer millimetres, identity or axis-permutation
rotations, depths where the projection divides exactly), so the expected true-positive counts are derived by hand
in the comments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from iterpose.metrics.evaluate import evaluate

I3 = np.eye(3)
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
RZ180 = np.diag([-1.0, -1.0, 1.0])
# Planar model (z = 0), integer mm, every pairwise distance > 20 mm, so that a shift of <= 10 mm keeps each point's
# nearest neighbour: ADI = ADD for those shifts.
PLANAR = [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 60.0, 0.0], [40.0, -50.0, 0.0]]
K640 = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]


def _ply(path: Path, pts) -> None:
    lines = ["ply", "format ascii 1.0", f"element vertex {len(pts)}", "property float64 x", "property float64 y",
             "property float64 z", "element face 1", "property list uchar int vertex_indices", "end_header"]
    lines += [" ".join(repr(float(v)) for v in p) for p in pts] + ["3 0 1 2"]
    path.write_text("\n".join(lines) + "\n")


def write_dataset(root: Path, objects: dict, images: dict, targets: list, K=K640, size=(640, 480)) -> Path:
    """A minimal BOP dataset. ``objects {obj_id: (points, models_info entry)}``; ``images {im_id: [(obj_id, R, t),
    ...]}`` (visib_fract decreasing in list order); ``targets [(im_id, obj_id, inst_count)]``."""
    (root / "models_eval").mkdir(parents=True)
    info = {}
    for obj_id, (pts, entry) in objects.items():
        _ply(root / "models_eval" / f"obj_{obj_id:06d}.ply", pts)
        info[str(obj_id)] = entry
    (root / "models_eval" / "models_info.json").write_text(json.dumps(info))
    (root / "camera.json").write_text(json.dumps({"fx": K[0], "fy": K[4], "cx": K[2], "cy": K[5], "width": size[0],
                                                  "height": size[1], "depth_scale": 1.0}))
    scene = root / "test" / "000001"
    (scene / "rgb").mkdir(parents=True)
    gt, gt_info, cam = {}, {}, {}
    for im_id, insts in images.items():
        gt[str(im_id)] = [{"obj_id": o, "cam_R_m2c": np.asarray(R, float).reshape(9).tolist(),
                           "cam_t_m2c": [float(v) for v in t]} for o, R, t in insts]
        gt_info[str(im_id)] = [{"bbox_obj": [0, 0, 1, 1], "bbox_visib": [0, 0, 1, 1], "px_count_all": 10,
                                "px_count_valid": 10, "px_count_visib": 9, "visib_fract": 0.9 - 0.1 * k}
                               for k in range(len(insts))]
        cam[str(im_id)] = {"cam_K": list(K), "depth_scale": 1.0}
    (scene / "scene_gt.json").write_text(json.dumps(gt))
    (scene / "scene_gt_info.json").write_text(json.dumps(gt_info))
    (scene / "scene_camera.json").write_text(json.dumps(cam))
    (root / "test_targets_bop19.json").write_text(json.dumps(
        [{"scene_id": 1, "im_id": i, "obj_id": o, "inst_count": n} for i, o, n in targets]))
    return root


def write_csv(path: Path, rows: list) -> Path:
    """``rows [(im_id, obj_id, score, R, t_mm)]``, scene 1."""
    lines = ["scene_id,im_id,obj_id,score,R,t,time"]
    for im_id, obj_id, score, R, t in rows:
        R_txt = " ".join(repr(float(v)) for v in np.asarray(R, float).reshape(9))
        lines.append(f"1,{im_id},{obj_id},{score},{R_txt},{' '.join(repr(float(v)) for v in t)},-1")
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------------------------------
# Errors exactly at a threshold: BOP counts error < threshold, on every path
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def at_threshold(tmp_path_factory):
    """Object 1 (PLANAR, diameter 100 mm), f = 500 px, GT R = I at depth 500 mm (1 mm of lateral shift = 1 px).

    Single-GT images (fast path):
      im 0: estimate shifted 10 mm in x: ADD = ADI = MSSD = 10 mm = 0.1 d (tie at 0.1), proj = MSPD = 10 px (tie
            at MSPD 10), te = 10 mm.
      im 1: shifted 5 mm: ADD 0.05 d, MSSD 0.05 d (tie at 0.05), proj = MSPD = 5 px (tie at 5), te 5.
      im 2: shifted 50 mm in depth: te = 50 mm (tie of the 2-element rete), ADD = ADI = MSSD = 0.5 d (tie at the last
            MSSD threshold 0.5); projections shrink by 500/550: point p moves |p|/11 px: MSPD = 100/11 = 9.09 px,
            proj = (0 + 100 + 60 + 64.03)/4/11 = 5.09 px.
    Two valid GTs of object 1 in image 3 (greedy matching path): GT0 at x = 0, GT1 at x = 300 mm;
      estimate A (score 0.9) 10 mm from GT0 (ties as im 0), estimate B (score 0.8) 5 mm from GT1 (as im 1).
    """
    t0 = [0.0, 0.0, 500.0]
    images = {0: [(1, I3, t0)], 1: [(1, I3, t0)], 2: [(1, I3, t0)],
              3: [(1, I3, t0), (1, I3, [300.0, 0.0, 500.0])]}
    root = write_dataset(tmp_path_factory.mktemp("ties") / "ds", {1: (PLANAR, {"diameter": 100.0})}, images,
                         [(0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 1, 2)])
    csv = write_csv(root.parent / "ties_ds-test.csv", [
        (0, 1, 1.0, I3, [10.0, 0.0, 500.0]),
        (1, 1, 1.0, I3, [5.0, 0.0, 500.0]),
        (2, 1, 1.0, I3, [0.0, 0.0, 550.0]),
        (3, 1, 0.9, I3, [10.0, 0.0, 500.0]),
        (3, 1, 0.8, I3, [305.0, 0.0, 500.0]),
    ])
    return root, csv


def test_errors_at_threshold_are_not_true_positives(at_threshold):
    rep = evaluate(*at_threshold, progress=False)
    tp = rep.tp_counts
    assert rep.n_targets == 5 and rep.n_estimates == 5
    # ADD / ADI / AD < 0.1 d: im 1 (0.05) and B (0.05); im 0 and A sit at 0.1 exactly, im 2 at 0.5.
    assert tp["add@0.1"] == 2 and tp["adi@0.1"] == 2 and tp["ad@0.1"] == 2
    # proj < 5 px: none (10, 5 (tie), 5.09, 10, 5 (tie)).
    assert tp["proj@5.0"] == 0
    # re < 5 deg and te < 50 mm: all but im 2 (te = 50 exactly).
    assert tp["rete@5.0/50.0"] == 4
    # MSSD (0.1, 0.05, 0.5, 0.1, 0.05) x d: none < 0.05; < 0.1: the two 0.05; 0.15 ... 0.5: four (0.5 is a tie).
    assert [tp[f"mssd@{th!r}"] for th in np.arange(0.05, 0.51, 0.05).tolist()] == [0, 2, 4, 4, 4, 4, 4, 4, 4, 4]
    # MSPD (10, 5, 9.09, 10, 5) px: none < 5; < 10: 5, 9.09, 5; then all five.
    assert [tp[f"mspd@{float(th)!r}"] for th in range(5, 51, 5)] == [0, 3, 5, 5, 5, 5, 5, 5, 5, 5]
    assert rep.recall["add_0.1d"] == 2 / 5 and rep.recall["proj_5px"] == 0.0
    assert rep.recall["ar_mssd"] == pytest.approx(34 / 50, abs=1e-15)
    assert rep.recall["ar_mspd"] == pytest.approx(43 / 50, abs=1e-15)


def test_ties_on_the_multi_gt_path_alone(at_threshold):
    """Per object is not enough to tell the paths apart: count image 3 (two valid GTs, greedy matching) alone."""
    root, csv = at_threshold
    only3 = write_csv(csv.parent / "only3_ds-test.csv", [(3, 1, 0.9, I3, [10.0, 0.0, 500.0]),
                                                         (3, 1, 0.8, I3, [305.0, 0.0, 500.0])])
    tp = evaluate(root, only3, progress=False).tp_counts
    assert tp["add@0.1"] == 1 and tp["adi@0.1"] == 1  # B only; A is at 0.1 d of GT0 exactly
    assert tp["proj@5.0"] == 0  # B is at 5 px exactly
    assert tp["mssd@0.05"] == 0 and tp["mssd@0.1"] == 1 and tp["mssd@0.15000000000000002"] == 2
    assert tp["mspd@5.0"] == 0 and tp["mspd@10.0"] == 1 and tp["mspd@15.0"] == 2


# ----------------------------------------------------------------------------------------------------------------
# MSPD is scaled by 640 / image width (BOP's eval_calc_scores), proj is not
# ----------------------------------------------------------------------------------------------------------------
def test_mspd_scaled_by_image_width(tmp_path):
    """A 320 px wide image (f = 250 px, depth 500 mm: 1 mm of shift = 0.5 px). The estimate is shifted 8 mm:
    proj = MSPD = 4 px in the image. proj stays 4 px (< 5: TP); MSPD counts as 4 x 640/320 = 8 px: not < 5, < 10 ...
    (9 of 10 thresholds). Unscaled (or scaled by 320/640) it would pass all ten."""
    K320 = [250.0, 0.0, 160.0, 0.0, 250.0, 120.0, 0.0, 0.0, 1.0]
    root = write_dataset(tmp_path / "ds", {1: (PLANAR, {"diameter": 100.0})}, {0: [(1, I3, [0.0, 0.0, 500.0])]},
                         [(0, 1, 1)], K=K320, size=(320, 240))
    csv = write_csv(tmp_path / "w_ds-test.csv", [(0, 1, 1.0, I3, [8.0, 0.0, 500.0])])
    rep = evaluate(root, csv, progress=False)
    assert rep.tp_counts["proj@5.0"] == 1
    assert [rep.tp_counts[f"mspd@{float(th)!r}"] for th in range(5, 51, 5)] == [0] + [1] * 9
    assert rep.recall["ar_mspd"] == pytest.approx(0.9, abs=1e-15)


# ----------------------------------------------------------------------------------------------------------------
# ADD-S direction: for each GT-posed point, the nearest estimate-posed point (bop_toolkit)
# ----------------------------------------------------------------------------------------------------------------
LINE = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [10.0, 0.0, 0.0]]


def test_adi_direction_decides_a_true_positive(tmp_path):
    """Model points x = 0, 1, 10 mm; the GT pose is the estimate shifted by +9 mm in x. GT points 9, 10, 19 have
    nearest estimate points 10, 10, 10: ADI = (1 + 0 + 9)/3 = 3.33 mm. The other direction (estimate points 0, 1, 10
    to the GT points) gives (9 + 8 + 0)/3 = 5.67 mm. With a diameter of 50 mm the threshold is 5 mm: bop's
    direction is a TP, the reversed one is not. ADD = 9 mm: not a TP."""
    root = write_dataset(tmp_path / "ds", {1: (LINE, {"diameter": 50.0})}, {0: [(1, I3, [9.0, 0.0, 500.0])]},
                         [(0, 1, 1)])
    csv = write_csv(tmp_path / "d_ds-test.csv", [(0, 1, 1.0, I3, [0.0, 0.0, 500.0])])
    tp = evaluate(root, csv, progress=False).tp_counts
    assert tp["adi@0.1"] == 1 and tp["add@0.1"] == 0


# ----------------------------------------------------------------------------------------------------------------
# Symmetries with a translation offset (models_info in mm), GT rotated so that R_g t_S != t_S
# ----------------------------------------------------------------------------------------------------------------
# Box not centred on its origin: x in [0, 40], y in [-10, 10], z in [-5, 5] mm. Its 180 deg symmetry about the z axis
# through (20, 0, 0) is x -> R_S x + t_S with R_S = diag(-1, -1, 1), t_S = (40, 0, 0) mm.
OFF_BOX = [[x, y, z] for x in (0.0, 40.0) for y in (-10.0, 10.0) for z in (-5.0, 5.0)]
OFF_BOX_DIAM = math.sqrt(40.0**2 + 20.0**2 + 10.0**2)
SYM_4x4 = [-1.0, 0.0, 0.0, 40.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
# Ring of 12 points around the z axis through (12, 0, 0), radius 20 mm, at z = -5 and 5: continuous symmetry about
# that axis, given in models_info as axis (0, 0, 1) with offset (12, 0, 0) mm.
RING = [[12.0 + 20.0 * math.cos(math.radians(30 * k)), 20.0 * math.sin(math.radians(30 * k)), z]
        for k in range(12) for z in (-5.0, 5.0)]
RING_DIAM = math.sqrt(40.0**2 + 10.0**2)


def _rz(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_symmetry_with_translation_offset(tmp_path):
    """GT rotation R_g = Rz(90) (so R_g t_S = (0, 40, 0) while t_S = (40, 0, 0)), GT t_g = (0, 0, 250) mm, f = 500
    px (1 mm of lateral shift is about 2 px).

    Object 1 (OFF_BOX, discrete symmetry with t_S = 40 mm): the estimate is the GT pose composed with the symmetry,
    derived point-wise: x -> R_g (R_S x + t_S) + t_g, i.e. R_e = R_g R_S, t_e = R_g t_S + t_g = (0, 40, 250): MSSD =
    MSPD = 0, a TP at every threshold. An offset left unrotated (t_S + t_g) is 40 sqrt 2 = 57 mm (1.2 d, > 100 px)
    off; an offset read in metres is 40 mm off (0.87 d, ~80 px): no TP at any threshold. ADD is not a TP (the box
    turns by 180 deg), ADI is (its vertex set maps onto itself).
    Object 2 (RING, continuous symmetry about the axis through o = (12, 0, 0)): the estimate is the GT composed with
    the rotation by 120 deg about that axis, x -> R_g (R_c (x - o) + o) + t_g (120 deg is one of bop's 315 samples:
    105 x 2 pi / 315). Unrotated, its offset o - R_c o (20.8 mm) is 20.8 sqrt 2 = 29 mm (0.71 d, ~59 px) off.
    (The origins stay closer than one diameter, else bop's shortcut makes MSSD infinite.)"""
    t_g = np.array([0.0, 0.0, 250.0])
    R_s, t_s = RZ180, np.array([40.0, 0.0, 0.0])
    R_c, o = _rz(120.0), np.array([12.0, 0.0, 0.0])
    objects = {1: (OFF_BOX, {"diameter": OFF_BOX_DIAM, "symmetries_discrete": [SYM_4x4]}),
               2: (RING, {"diameter": RING_DIAM,
                          "symmetries_continuous": [{"axis": [0, 0, 1], "offset": [12.0, 0.0, 0.0]}]})}
    root = write_dataset(tmp_path / "ds", objects, {0: [(1, RZ90, t_g), (2, RZ90, t_g)]}, [(0, 1, 1), (0, 2, 1)])
    csv = write_csv(tmp_path / "s_ds-test.csv", [
        (0, 1, 1.0, RZ90 @ R_s, RZ90 @ t_s + t_g),
        (0, 2, 1.0, RZ90 @ R_c, RZ90 @ (o - R_c @ o) + t_g),
    ])
    rep = evaluate(root, csv, progress=False)
    for obj_id in (1, 2):
        assert rep.per_object[obj_id]["ar_mssd"] == 1.0 and rep.per_object[obj_id]["ar_mspd"] == 1.0, obj_id
        assert rep.per_object[obj_id]["add_0.1d"] == 0.0 and rep.per_object[obj_id]["adi_0.1d"] == 1.0, obj_id
    # the same estimates with the offset left unrotated are wrong at every MSSD/MSPD threshold
    bad = write_csv(tmp_path / "b_ds-test.csv", [(0, 1, 1.0, RZ90 @ R_s, t_s + t_g),
                                                 (0, 2, 1.0, RZ90 @ R_c, (o - R_c @ o) + t_g)])
    rep_bad = evaluate(root, bad, progress=False)
    assert rep_bad.recall["ar_mssd"] == 0.0 and rep_bad.recall["ar_mspd"] == 0.0


# ----------------------------------------------------------------------------------------------------------------
# VSD: a pixel whose distance error equals tau is a misaligned pixel (bop: cost = dist >= tau)
# ----------------------------------------------------------------------------------------------------------------
def test_vsd_pixel_error_at_tau_counts_as_misaligned():
    """One rendered pixel, at the principal point (its ray is the optical axis: distance = depth exactly). GT depth
    100 mm, estimate 110 mm, no test depth (visible): the distance error is 10 mm = 0.1 x the 100 mm diameter. At
    tau = 0.1 the pixel is misaligned (VSD 1.0); at tau = 0.15000000000000002 it is aligned (VSD 0.0)."""
    from iterpose.metrics import pose_error as pe

    K = np.array([[100.0, 0.0, 2.0], [0.0, 100.0, 1.0], [0.0, 0.0, 1.0]])
    depth_g, depth_e, depth_test = np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 4))
    depth_g[1, 2], depth_e[1, 2] = 100.0, 110.0
    errs = pe.vsd_from_depths(depth_e, depth_g, depth_test, K, 15.0, [0.1, 0.15000000000000002], True, 100.0)
    assert errs == [1.0, 0.0]
