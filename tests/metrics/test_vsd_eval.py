"""VSD over a tiny synthetic BOP dataset with depth (written by iterpose's writer, rendered by iterpose's renderer).

Scene: an asymmetric box (40.6 x 30.6 x 40 mm) facing the camera, front face at z = 500 mm, f = 500 px, so
1 mm on the front face = 1 px. With bop's pixel centres (j + 0.5, i + 0.5) its front face covers columns 60..99
and rows 45..74 (40 x 30 px); only the front face is visible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from iterpose.data import bop_writer as bw
from iterpose.errors import MissingFileError
from iterpose.metrics import pose_error as pe
from iterpose.metrics.evaluate import evaluate
from iterpose.metrics.vsd_eval import bop_depth_renderer, vsd_delta_mm, vsd_errors

HX, HY, HZ = 20.3, 15.3, 20.0  # box half sizes, mm
W, H = 160, 120
K = np.array([[500.0, 0.0, 80.0], [0.0, 500.0, 60.0], [0.0, 0.0, 1.0]])
T_GT = np.array([0.0, 0.0, 520.0])  # front face (z = -HZ in the model) at 500 mm
DIAM = 2 * math.sqrt(HX**2 + HY**2 + HZ**2)


def _box_ply(path) -> None:
    v = [(x, y, z) for x in (-HX, HX) for y in (-HY, HY) for z in (-HZ, HZ)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [f for a, b, c, d in quads for f in ((a, b, c), (a, c, d))]
    lines = ["ply", "format ascii 1.0", f"element vertex {len(v)}", "property float x", "property float y",
             "property float z", f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    lines += [f"{x} {y} {z}" for x, y, z in v] + [f"3 {a} {b} {c}" for a, b, c in faces]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def depth_dataset(tmp_path_factory):
    """Three images of the same GT scene (depth = the GT render, integer mm); one target per image."""
    root = tmp_path_factory.mktemp("vsd") / "tiny"
    (root / "models_eval").mkdir(parents=True)
    _box_ply(root / "models_eval" / "obj_000001.ply")
    (root / "models_eval" / "models_info.json").write_text(f'{{"1": {{"diameter": {DIAM!r}}}}}')
    bw.save_camera(root / "camera.json", K, W, H, depth_scale=1.0)
    scene = root / "test" / "000001"
    (scene / "depth").mkdir(parents=True)
    render = bop_depth_renderer(root / "models_eval", [1])
    depth = render(1, np.eye(3)[None], T_GT[None], K[None], H, W)[0]
    ims = (0, 1, 2)
    for im in ims:
        bw.save_depth_mm(scene / "depth" / f"{im:06d}.png", depth)
    bw.save_scene_camera(scene / "scene_camera.json", {im: {"cam_K": K, "depth_scale": 1.0} for im in ims})
    bw.save_scene_gt(scene / "scene_gt.json",
                     {im: [{"obj_id": 1, "cam_R_m2c": np.eye(3), "cam_t_m2c": T_GT}] for im in ims})
    info = {"bbox_obj": [60, 45, 39, 29], "bbox_visib": [60, 45, 39, 29], "px_count_all": 1200,
            "px_count_valid": 1200, "px_count_visib": 1200, "visib_fract": 1.0}
    bw.save_scene_gt_info(scene / "scene_gt_info.json", {im: [info] for im in ims})
    bw.save_targets(root / "test_targets_bop19.json",
                    [{"scene_id": 1, "im_id": im, "obj_id": 1, "inst_count": 1} for im in ims])
    return root, depth


def _csv(path, t_by_image) -> str:
    rows = ["scene_id,im_id,obj_id,score,R,t,time"]
    for im, t in t_by_image.items():
        rows.append(f"1,{im},1,1.0,1 0 0 0 1 0 0 0 1,{t[0]} {t[1]} {t[2]},-1")
    path.write_text("\n".join(rows))
    return path


def test_gt_render_uses_bop_pixel_centres(depth_dataset):
    _, depth = depth_dataset
    ys, xs = np.nonzero(depth)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (60, 99, 45, 74)
    assert len(xs) == 40 * 30
    np.testing.assert_allclose(depth[depth > 0], 500.0, atol=1e-3)


def test_evaluate_with_depth_hand_values(depth_dataset, tmp_path):
    root, _ = depth_dataset
    # im 0: the GT pose (VSD 0); im 1: 6 mm = 6 px to the right, same depth: union 46 x 30 px, intersection
    # 34 x 30 px with equal depth -> VSD = (46 - 34) / 46 = 0.2609 for every tau; im 2: 400 mm to the side, the
    # sphere projections do not overlap -> 1.0.
    csv = _csv(tmp_path / "m_tiny-test.csv", {0: T_GT, 1: T_GT + [6.0, 0, 0], 2: T_GT + [400.0, 0, 0]})
    rep = evaluate(root, csv, progress=False)
    # AR_VSD: per (tau, theta), im 0 always matches, im 1 for theta > 0.2609 (5 of 10 thetas), im 2 never:
    # mean over thetas of (1 + [theta > 0.26]) / 3 = (5 * 1/3 + 5 * 2/3) / 10 = 0.5.
    assert rep.recall["ar_vsd"] == pytest.approx(0.5, abs=1e-12)
    assert rep.tp_counts["vsd@0.05/0.25"] == 1 and rep.tp_counts["vsd@0.5/0.3"] == 2
    r = rep.recall
    assert r["ar"] == pytest.approx((r["ar_vsd"] + r["ar_mssd"] + r["ar_mspd"]) / 3, abs=1e-15)
    assert set(rep.per_object[1]) >= {"ar_vsd", "ar"} and rep.per_object[1]["ar_vsd"] == pytest.approx(0.5)
    assert list(rep.to_json_dict()["recall"])[-2:] == ["ar_vsd", "ar"]


def test_gt_estimates_give_ar_vsd_one(depth_dataset, tmp_path):
    root, _ = depth_dataset
    csv = _csv(tmp_path / "gt_tiny-test.csv", {im: T_GT for im in (0, 1, 2)})
    rep = evaluate(root, csv, progress=False)
    assert rep.recall["ar_vsd"] == 1.0 and rep.recall["ar"] == 1.0


def test_vsd_errors_values_and_shortcut_without_rendering(depth_dataset):
    root, depth = depth_dataset
    real = bop_depth_renderer(root / "models_eval", [1])
    calls = []

    def render(obj_id, R, t, Kb, h, w):
        calls.append(len(R))
        return real(obj_id, R, t, Kb, h, w)

    loads = []

    def load(scene_id, im_id):
        loads.append(im_id)
        return depth.astype(np.float32)

    I3 = np.eye(3)
    t_e = np.stack([T_GT, T_GT + [6.0, 0, 0], T_GT + [400.0, 0, 0]])
    errs = vsd_errors(load, [(1, 0), (1, 1), (1, 2)], [1, 1, 1], np.stack([I3] * 3), t_e, np.stack([I3] * 3),
                      np.stack([T_GT] * 3), np.stack([K] * 3), [DIAM] * 3, render, progress=False)
    assert errs.shape == (3, 10)
    assert np.all(errs[0] == 0.0)
    np.testing.assert_allclose(errs[1], (46 - 34) / 46, rtol=0, atol=1e-15)
    assert np.all(errs[2] == 1.0)
    assert loads == [0, 1]  # image 2 only has a non-overlapping pair: no depth read, no render
    assert sum(calls) == 4  # (estimate + GT) for images 0 and 1


def test_missing_mesh_is_a_clear_error(tmp_path):
    render = bop_depth_renderer(tmp_path, [3])
    with pytest.raises(MissingFileError, match="object 3"):
        render(3, np.eye(3)[None], T_GT[None], K[None], H, W)


def test_delta_per_dataset():
    assert vsd_delta_mm("itodd") == 5.0 and vsd_delta_mm("lmo") == 15.0


def test_vsd_hand_computed_occlusion():
    # 4x4, GT renders depth 100 on columns 0-1, the estimate on columns 0-2. The test depth has an occluder at 50 mm
    # on column 0, the surface at 100 mm on column 1, no measurement elsewhere. Visible GT: column 1 (column 0 is
    # occluded: 50 mm in front > delta). Visible estimate: columns 1, 2 (missing depth counts as visible).
    # Union 8 px, intersection 4 px with equal distances -> VSD = 4 / 8.
    Kv = np.array([[100.0, 0, 2.0], [0, 100.0, 2.0], [0, 0, 1]])
    d_g = np.zeros((4, 4))
    d_g[:, :2] = 100.0
    d_e = np.zeros((4, 4))
    d_e[:, :3] = 100.0
    d_test = np.zeros((4, 4), dtype=np.float32)
    d_test[:, 0] = 50.0
    d_test[:, 1] = 100.0
    assert pe.vsd_from_depths(d_e, d_g, d_test, Kv, 15.0, [0.05, 0.5], True, 100.0) == [0.5, 0.5]
    # Estimate 20 mm behind the GT on column 1 (visible through the GT rule): 0.2 of the diameter -> cost 1 for
    # tau = 0.05, 0 for tau = 0.5.
    d_e2 = d_e.copy()
    d_e2[:, 1] = 120.0
    errs = pe.vsd_from_depths(d_e2, d_g, d_test, Kv, 15.0, [0.05, 0.5], True, 100.0)
    assert errs == [pytest.approx(8 / 8), pytest.approx(4 / 8)]
