"""VSD over a tiny synthetic BOP dataset with depth (written by iterpose's writer, rendered by iterpose's renderer);
the scene is described in tiny_bop_depth.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from iterpose.errors import MissingFileError
from iterpose.metrics import pose_error as pe
from iterpose.metrics.evaluate import evaluate
from iterpose.metrics.vsd_eval import bop_depth_renderer, vsd_delta_mm, vsd_errors

_spec = importlib.util.spec_from_file_location("tiny_bop_depth_metrics", Path(__file__).parent / "tiny_bop_depth.py")
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)
K, T_GT, DIAM, W, H = _tiny.K, _tiny.T_GT, _tiny.DIAM, _tiny.W, _tiny.H
_csv = _tiny.write_csv


@pytest.fixture(scope="module")
def depth_dataset(tmp_path_factory):
    return _tiny.make_depth_dataset(tmp_path_factory.mktemp("vsd") / "tiny")


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
