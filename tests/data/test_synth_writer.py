"""Synthetic BOP writer: read back by BopDataset, check_dataset clean, exact resume, eval of GT = recall 1."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iterpose.data import BopDataset, ResultsTable, write_results_csv
from iterpose.data.checks import check_dataset
from iterpose.data.synth import generate_scene, scene_rng
from iterpose.data.synth_writer import DEPTH_SCALE, save_ply, write_synth_dataset
from iterpose.errors import InvalidInputError
from iterpose.mesh import example_object, load_mesh, load_objects

_spec = importlib.util.spec_from_file_location("_synth_test_config", Path(__file__).with_name("test_synth_config.py"))
_cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cfg)
small_config, two_objects, H, W = _cfg.small_config, _cfg.two_objects, _cfg.H, _cfg.W

OBJECTS = two_objects()
CFG = small_config(occluders=(0, 1))
SEED = 4
N = 6


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ds"
    report = write_synth_dataset(OBJECTS, root, N, CFG, seed=SEED, progress=False, flush_every=2)
    return root, report


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_and_layout(written):
    root, rep = written
    assert (rep.n_images, rep.n_written, rep.n_skipped) == (N, N, 0)
    scene = root / "test" / "000000"
    assert len(list((scene / "rgb").glob("*.png"))) == N and len(list((scene / "depth").glob("*.png"))) == N
    assert len(list((scene / "mask").glob("*.png"))) == rep.n_instances == len(list((scene / "mask_visib").iterdir()))
    for sub in ("models", "models_eval"):
        assert sorted(p.name for p in (root / sub).iterdir()) == ["models_info.json", "obj_000001.ply",
                                                                  "obj_000007.ply"]
    assert not list(root.rglob("*.tmp"))


def test_read_back_matches_the_generated_scenes(written):
    root, _ = written
    ds = BopDataset(root)
    assert ds.scene_ids == [0] and ds.image_ids(0) == list(range(N)) and ds.image_size == (W, H)
    gt, info = ds.scene_gt(0), ds.scene_gt_info(0)
    for im_id in (0, 3, 5):
        s = generate_scene(OBJECTS, CFG, scene_rng(SEED, im_id))
        assert [g.obj_id for g in gt[im_id]] == s.obj_ids.tolist()
        for k, g in enumerate(gt[im_id]):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = g.R, g.t_mm / 1000.0
            np.testing.assert_allclose(T, s.T_co[k].double().numpy(), rtol=0, atol=1e-12)
            assert info[im_id][k].visib_fract == float(s.visib_fract[k])
            assert info[im_id][k].px_count_all == int(s.px_count_all[k])
            assert list(info[im_id][k].bbox_obj) == s.bbox_obj[k].tolist()
            assert np.array_equal(ds.load_mask(0, im_id, k), s.mask_full[k].numpy())
            assert np.array_equal(ds.load_mask_visib(0, im_id, k), s.mask_visible[k].numpy())
        np.testing.assert_array_equal(ds.load_rgb(0, im_id), np.round(s.rgb.permute(1, 2, 0).numpy() * 255))
        assert ds.depth_scale(0, im_id) == DEPTH_SCALE
        np.testing.assert_allclose(ds.load_depth_mm(0, im_id), s.depth_m.double().numpy() * 1000.0, rtol=0,
                                   atol=DEPTH_SCALE / 2 + 1e-3)
        np.testing.assert_array_equal(ds.camera_K(0, im_id), CFG.K_matrix)
    targets = ds.targets()
    n_expected = sum(len({g.obj_id for g, i in zip(gt[k], info[k]) if i.visib_fract >= 0.1}) for k in gt)
    assert len(targets) == n_expected and all(t.scene_id == 0 for t in targets)


def test_check_dataset_finds_no_error_or_warning(written):
    root, _ = written
    findings = check_dataset(root)
    assert [f for f in findings if f.level in ("error", "warning")] == []


def test_models_are_read_back_in_metres(written):
    root, _ = written
    objs = load_objects(root / "models")
    assert sorted(objs) == [1, 7]
    for m in OBJECTS:
        back = objs[m.obj_id]
        torch.testing.assert_close(back.vertices, m.vertices, rtol=0, atol=1.5e-9 * 1000)
        assert torch.equal(back.faces, m.faces)
        assert float((back.vertex_colors - m.vertex_colors).abs().max()) <= 0.5 / 255 + 1e-6
        assert back.diameter_m == pytest.approx(m.diameter_m, rel=1e-5)


def test_save_ply_round_trip_units(tmp_path):
    m = example_object(3)
    p = save_ply(tmp_path / "obj_000003.ply", m, unit="cm")
    back = load_mesh(p, unit="cm")
    torch.testing.assert_close(back.vertices, m.vertices, rtol=0, atol=1e-7)
    torch.testing.assert_close(back.vertex_normals, m.vertex_normals, rtol=0, atol=1e-5)
    with pytest.raises(InvalidInputError, match="unit='km'"):
        save_ply(tmp_path / "x.ply", m, unit="km")


def test_interrupted_run_resumes_exactly(written, tmp_path):
    ref_root, _ = written
    root = tmp_path / "ds"
    first = write_synth_dataset(OBJECTS, root, N, CFG, seed=SEED, progress=False, flush_every=2, stop_after=3)
    assert (first.n_written, first.n_images) == (3, 3)
    assert sorted(BopDataset(root).scene_gt(0)) == [0, 1, 2]  # a readable dataset of what is done
    scene = root / "test" / "000000"
    kept = {p: p.stat().st_mtime_ns for p in scene.rglob("*") if p.is_file() and p.name[:6] in ("000000", "000001",
                                                                                                "000002")}
    assert len(kept) >= 3 * 3
    second = write_synth_dataset(OBJECTS, root, N, CFG, seed=SEED, progress=False, flush_every=2)
    assert (second.n_written, second.n_skipped) == (N - 3, 3)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished images were not rewritten
    assert _tree(root) == _tree(ref_root)  # byte-identical to the uninterrupted run


def test_parallel_workers_write_the_same_dataset(written, tmp_path):
    ref_root, _ = written
    root = tmp_path / "ds"
    rep = write_synth_dataset(OBJECTS, root, N, CFG, seed=SEED, progress=False, flush_every=2, workers=2)
    assert (rep.n_written, rep.n_images) == (N, N)
    assert _tree(root) == _tree(ref_root)


def test_other_settings_in_the_same_folder_are_refused(written, tmp_path):
    root = tmp_path / "ds"
    write_synth_dataset(OBJECTS, root, 1, CFG, seed=SEED, progress=False)
    with pytest.raises(InvalidInputError, match="other settings"):
        write_synth_dataset(OBJECTS, root, 2, CFG, seed=SEED + 1, progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(InvalidInputError, match="unique"):
        write_synth_dataset([example_object(1), example_object(1)], tmp_path / "a", 1, CFG, progress=False)
    with pytest.raises(InvalidInputError, match="workers"):
        write_synth_dataset(OBJECTS, tmp_path / "w", 1, CFG, progress=False, workers=0)
    with pytest.raises(InvalidInputError, match="n_images"):
        write_synth_dataset(OBJECTS, tmp_path / "b", 0, CFG, progress=False)
    far = dataclasses.replace(CFG, distance_m=(1.0, 7.0))
    with pytest.raises(InvalidInputError, match="16-bit PNG"):
        write_synth_dataset(OBJECTS, tmp_path / "c", 1, far, progress=False)


def test_eval_of_ground_truth_gives_recall_one(written, tmp_path):
    from iterpose.metrics.evaluate import evaluate

    src, _ = written
    root = tmp_path / "ds"
    shutil.copytree(src, root)
    has_vsd = importlib.util.find_spec("iterpose.metrics.vsd_eval") is not None
    if not has_vsd:
        shutil.rmtree(root / "test" / "000000" / "depth")  # no VSD implementation yet: evaluate without depth
    ds = BopDataset(root)
    rows = {k: [] for k in ("scene_id", "im_id", "obj_id", "score", "R", "t_mm", "time_s")}
    for im_id, insts in ds.scene_gt(0).items():
        for g in insts:
            for key, val in zip(rows, (0, im_id, g.obj_id, 1.0, g.R, g.t_mm, -1.0)):
                rows[key].append(val)
    table = ResultsTable(**{k: np.asarray(v) for k, v in rows.items()})
    csv = write_results_csv(tmp_path / "gt_synth-test.csv", table)
    report = evaluate(root, csv, progress=False)
    assert report.n_targets == sum(t.inst_count for t in ds.targets()) > 0
    assert report.recall and all(v == pytest.approx(1.0) for v in report.recall.values()), report.recall
    assert ("ar_vsd" in report.recall) == has_vsd


def test_scene_camera_K_is_the_rendering_K_not_its_float32_copy(tmp_path):
    cfg = small_config(K=(200.1, 0.0, 79.3, 0.0, 210.7, 59.9, 0.0, 0.0, 1.0), objects_per_image=(1, 1))
    root = tmp_path / "ds"
    write_synth_dataset(OBJECTS, root, 1, cfg, seed=SEED, progress=False)
    ds = BopDataset(root)
    cam = ds.camera
    np.testing.assert_array_equal(ds.camera_K(0, 0), cfg.K_matrix)
    assert (cam["fx"], cam["fy"], cam["cx"], cam["cy"]) == (200.1, 210.7, 79.3, 59.9)
