"""evaluate() on a tiny hand-made BOP dataset with hand-derived recalls, and its error handling."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from iterpose.errors import DataFormatError, MissingFileError
from iterpose.metrics.evaluate import EvalReport, evaluate

_spec = importlib.util.spec_from_file_location("tiny_bop_metrics", Path(__file__).parent / "tiny_bop.py")
_tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tiny)
I3, _row, make_dataset, make_results = _tiny.I3, _tiny._row, _tiny.make_dataset, _tiny.make_results


@pytest.fixture
def tiny(tmp_path):
    return make_dataset(tmp_path / "ds"), make_results(tmp_path / "m_ds-test.csv")


def test_recalls_hand_derived(tiny):
    ds, csv = tiny
    rep = evaluate(ds, csv, progress=False)
    assert isinstance(rep, EvalReport)
    assert rep.n_targets == 3
    assert rep.n_estimates == 3  # the duplicate and the non-target row are not evaluated
    third, two_thirds = 1 / 3, 2 / 3
    assert rep.recall == {
        "ad_0.1d": two_thirds, "add_0.1d": third, "adi_0.1d": two_thirds, "proj_5px": third,
        "rete_5deg_50mm": third, "ar_mssd": pytest.approx(two_thirds), "ar_mspd": pytest.approx(two_thirds),
    }
    assert rep.per_object[1]["add_0.1d"] == 0.5
    assert rep.per_object[2]["add_0.1d"] == 0.0
    assert rep.per_object[2]["adi_0.1d"] == 1.0
    assert rep.per_object[2]["ad_0.1d"] == 1.0  # symmetric object -> AD uses ADI
    assert rep.n_targets_per_object == {1: 2, 2: 1}


def test_json_dict_has_exact_keys(tiny):
    d = evaluate(*tiny, progress=False).to_json_dict()
    assert set(d) == {"n_targets", "recall", "per_object"}
    keys = {"ad_0.1d", "add_0.1d", "adi_0.1d", "proj_5px", "rete_5deg_50mm", "ar_mssd", "ar_mspd"}
    assert set(d["recall"]) == keys
    assert set(d["per_object"]) == {"1", "2"}
    assert all(set(v) == keys for v in d["per_object"].values())
    json.dumps(d)


def test_higher_score_estimate_wins_and_ties_keep_csv_order(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    # For image 1, a correct estimate with the same score as the wrong one but listed first -> it is kept.
    csv = make_results(tmp_path / "a.csv")
    rows = csv.read_text().split("\n")
    rows.insert(3, _row(1, 1, 1, 0.8, I3, [10.0, 0.0, 1000.0]))
    csv.write_text("\n".join(rows))
    assert evaluate(ds, csv, progress=False).recall["add_0.1d"] == pytest.approx(2 / 3)


def test_unknown_object_is_a_clear_error(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    csv = make_results(tmp_path / "a.csv", [_row(1, 0, 42, 0.5, I3, [0.0, 0.0, 1000.0])])
    with pytest.raises(DataFormatError, match=r"\[42\].*models_eval"):
        evaluate(ds, csv, progress=False)


def test_missing_dataset_and_files(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    csv = make_results(tmp_path / "a.csv")
    with pytest.raises(MissingFileError, match="dataset folder not found"):
        evaluate(tmp_path / "nope", csv, progress=False)
    with pytest.raises(MissingFileError, match="results CSV not found"):
        evaluate(ds, tmp_path / "nope.csv", progress=False)
    (ds / "models_eval" / "obj_000002.ply").unlink()
    with pytest.raises(MissingFileError, match="object 2"):
        evaluate(ds, csv, progress=False)


def test_two_instances_greedy_matching(tmp_path):
    """Image 3 holds two instances of object 1 (inst_count 2) and a third, least visible one (not valid)."""
    ds = make_dataset(tmp_path / "ds")
    scene = ds / "test" / "000001"
    gt = json.loads((scene / "scene_gt.json").read_text())
    gt_info = json.loads((scene / "scene_gt_info.json").read_text())
    cam = json.loads((scene / "scene_camera.json").read_text())
    e = {"obj_id": 1, "cam_R_m2c": I3}
    gt["3"] = [dict(e, cam_t_m2c=[0.0, 0.0, 1000.0]), dict(e, cam_t_m2c=[100.0, 0.0, 1000.0]),
               dict(e, cam_t_m2c=[1.5, 0.0, 1000.0])]
    info = gt_info["0"][0]
    gt_info["3"] = [dict(info, visib_fract=0.9), dict(info, visib_fract=0.8), dict(info, visib_fract=0.1)]
    cam["3"] = cam["0"]
    (scene / "scene_gt.json").write_text(json.dumps(gt))
    (scene / "scene_gt_info.json").write_text(json.dumps(gt_info))
    (scene / "scene_camera.json").write_text(json.dumps(cam))
    targets = json.loads((ds / "test_targets_bop19.json").read_text())
    (ds / "test_targets_bop19.json").write_text(
        json.dumps(targets + [{"scene_id": 1, "im_id": 3, "obj_id": 1, "inst_count": 2}]))
    # Both estimates lie nearest to the invalid instance (t = 1.5); the better-scored one takes GT 0 (error 1 mm),
    # the other (2 mm from GT 0, 98 from GT 1) finds GT 0 taken: only 1 TP in image 3.
    csv = make_results(tmp_path / "a.csv", [_row(1, 3, 1, 0.9, I3, [1.0, 0.0, 1000.0]),
                                           _row(1, 3, 1, 0.8, I3, [2.0, 0.0, 1000.0])])
    rep = evaluate(ds, csv, progress=False)
    assert rep.n_targets == 5
    assert rep.tp_counts["add@0.1"] == 1 + 1  # image 0 and one of image 3
    assert rep.tp_counts["adi@0.1"] == 1 + 1 + 1  # image 2 (symmetric object 2) as well
    # With the second estimate near GT 1 both instances are found.
    csv2 = make_results(tmp_path / "b.csv", [_row(1, 3, 1, 0.9, I3, [1.0, 0.0, 1000.0]),
                                            _row(1, 3, 1, 0.8, I3, [99.0, 0.0, 1000.0])])
    assert evaluate(ds, csv2, progress=False).tp_counts["adi@0.1"] == 1 + 1 + 2
