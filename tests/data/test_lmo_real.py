"""The real LM-O files (skipped when ../shared/data is absent): counts, known values, byte-identical re-save."""

from __future__ import annotations


import numpy as np

from iterpose.data import BopDataset, read_results_csv, save_scene_camera, save_scene_gt, save_scene_gt_info
from iterpose.data.bop_writer import format_json


def test_lmo_counts_and_values(lmo_dir):
    ds = BopDataset(lmo_dir)
    assert ds.name == "lmo" and ds.scene_ids == [2]
    assert ds.image_size == (640, 480)
    gt, info, cams = ds.scene_gt(2), ds.scene_gt_info(2), ds.scene_camera(2)
    assert len(gt) == len(info) == len(cams) == 100 and ds.image_ids(2) == sorted(gt)
    assert sum(map(len, gt.values())) == 778 == sum(map(len, info.values()))
    assert not any(g.is_placeholder for v in gt.values() for g in v)
    assert len(ds.targets()) == 737 and {t.inst_count for t in ds.targets()} == {1}
    g = gt[3][0]
    assert g.obj_id == 1 and g.R[1].tolist() == [0.3746311, -0.76110463, -0.52974822]
    assert g.t_mm.tolist() == [161.68945982, -113.74032768, 1112.83112737]
    assert info[3][0].bbox_obj == (388, 164, 34, 45) and info[3][0].px_count_visib == 225
    assert cams[3].K.tolist() == [[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]]
    assert cams[3].depth_scale == 1.0
    assert not ds.has_depth and ds.models_eval_dir == lmo_dir / "models_eval"
    rgb = ds.load_rgb(2, 3)
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8


def test_lmo_resave_is_byte_identical(lmo_dir, tmp_path):
    """Our writer reproduces the files bop_toolkit wrote, byte for byte (format and float repr)."""
    ds = BopDataset(lmo_dir)
    scene = lmo_dir / "test" / "000002"
    for name, fn, data in [
        ("scene_gt.json", save_scene_gt, ds.scene_gt(2)),
        ("scene_gt_info.json", save_scene_gt_info, ds.scene_gt_info(2)),
        ("scene_camera.json", save_scene_camera, ds.scene_camera(2)),
    ]:
        fn(tmp_path / name, data)
        assert (tmp_path / name).read_bytes() == (scene / name).read_bytes(), name
    targets = [{"im_id": t.im_id, "inst_count": t.inst_count, "obj_id": t.obj_id, "scene_id": t.scene_id}
               for t in ds.targets()]
    assert format_json(targets) == (lmo_dir / "test_targets_bop19.json").read_text()


def test_lmo_init_csvs(lmo_init_dir):
    kpt = read_results_csv(lmo_init_dir / "kpt_lmo-test.csv")
    assert len(kpt) == 734 and int(kpt.placeholder_mask().sum()) == 59
    assert set(kpt.time_s.tolist()) == {-1.0}
    pert = read_results_csv(lmo_init_dir / "perturbed_lmo-test.csv")
    assert len(pert) == 778 and int(pert.placeholder_mask().sum()) == 0
    # bit-exact against a plain per-line parse, the way bop_toolkit's load_bop_results does it
    lines = (lmo_init_dir / "kpt_lmo-test.csv").read_text().splitlines()[1:]
    ref_R = np.array([list(map(float, ln.split(",")[4].split())) for ln in lines]).reshape(-1, 3, 3)
    ref_t = np.array([list(map(float, ln.split(",")[5].split())) for ln in lines])
    assert kpt.R.tobytes() == ref_R.tobytes() and kpt.t_mm.tobytes() == ref_t.tobytes()
    assert kpt.score[0] == 0.8113817796111107 and kpt.obj_id[:2].tolist() == [5, 6]
