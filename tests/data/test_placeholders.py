"""BOP "no estimate" / "no pose" placeholders are recognised by ALL of their fields, never by one of them.

* Results CSV rows: score 0 AND identity R AND t = 0 (``ResultsTable.placeholder_mask``, ``ResultRow.is_placeholder``).
  Rows that share one or two of those fields with the placeholder are real estimates.
* scene_gt.json instances: ``cam_t_m2c`` all -1 (``GtInstance.is_placeholder``, and the dataset check that skips the
  rotation test for them); a translation with one or two -1 components is a real pose.
"""

from __future__ import annotations

import json

import numpy as np

from iterpose.data import BopDataset, ResultsTable, read_results_csv
from iterpose.data.checks import check_dataset

I = "1 0 0 0 1 0 0 0 1"
R30 = "0.8660254037844387 -0.5 0.0 0.5 0.8660254037844387 0.0 0.0 0.0 1.0"

# (score, R, t) -> is it the placeholder?
ROWS = [
    ("0", I, "0 0 0", True),  # the placeholder
    ("0", I, "0 0 -1e-9", False),  # t not zero (the one field off)
    ("0", R30, "0 0 0", False),  # R not the identity
    ("0.5", I, "0 0 0", False),  # score not 0
    ("0", R30, "10 20 500", False),  # only the score matches
    ("0.7", I, "10 20 500", False),  # only R matches
    ("0.7", R30, "0 0 0", False),  # only t matches
    ("0.7", R30, "10 20 500", False),  # an ordinary estimate
]


def test_results_placeholder_needs_every_field(tmp_path):
    p = tmp_path / "m_ds-test.csv"
    lines = ["scene_id,im_id,obj_id,score,R,t,time"]
    lines += [f"1,2,{k + 1},{score},{R},{t},0.5" for k, (score, R, t, _) in enumerate(ROWS)]
    p.write_text("\n".join(lines) + "\n")
    table = read_results_csv(p)
    expected = [flag for *_, flag in ROWS]
    assert table.placeholder_mask().tolist() == expected
    assert [r.is_placeholder for r in table] == expected
    # the same through a table built in memory
    again = ResultsTable.from_rows(table.rows())
    assert again.placeholder_mask().tolist() == expected


def test_gt_placeholder_needs_all_three_minus_ones(tiny_bop):
    scene = tiny_bop.root / "test" / "000001"
    gt = json.loads((scene / "scene_gt.json").read_text())
    eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    not_a_rotation = [2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0]
    gt["7"][1] = {"obj_id": 3, "cam_R_m2c": not_a_rotation, "cam_t_m2c": [-1.0, -1.0, 600.0]}  # two -1: a pose
    gt["7"][2] = {"obj_id": 3, "cam_R_m2c": not_a_rotation, "cam_t_m2c": [-1.0, -1.0, -1.0]}  # the placeholder
    gt["0"][0] = {"obj_id": 3, "cam_R_m2c": eye, "cam_t_m2c": [5.0, -1.0, -1.0]}  # two -1 again: a pose
    (scene / "scene_gt.json").write_text(json.dumps(gt))
    read = BopDataset(tiny_bop.root).scene_gt(1)
    assert [g.is_placeholder for g in read[7]] == [False, False, True]
    assert [g.is_placeholder for g in read[0]] == [False, False]
    # the dataset check skips the rotation test for the placeholder only
    bad_R = [f for f in check_dataset(tiny_bop.root, check_meshes=False)
             if f.level == "error" and "not a rotation" in f.message]
    where = sorted(f.where for f in bad_R)
    assert where == ["test/000001/scene_gt.json['7'][1].cam_R_m2c"]
