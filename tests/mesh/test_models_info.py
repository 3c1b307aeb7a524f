"""iterpose.mesh.models_info: BOP models_info.json I/O, diameter, compute_model_info."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from iterpose.errors import DataFormatError, MissingFileError
from iterpose.mesh import (
    ModelInfo,
    compute_model_info,
    load_mesh,
    load_models_info,
    pts_diameter,
    save_models_info,
)


def bop_calc_pts_diameter(pts: np.ndarray) -> float:
    """bop_toolkit ``misc.calc_pts_diameter`` (the oracle), verbatim arithmetic."""
    diameter = -1.0
    for pt_id in range(pts.shape[0]):
        pt_dup = np.tile(np.array([pts[pt_id, :]]), [pts.shape[0] - pt_id, 1])
        pts_diff = pt_dup - pts[pt_id:, :]
        max_dist = math.sqrt((pts_diff * pts_diff).sum(axis=1).max())
        if max_dist > diameter:
            diameter = max_dist
    return diameter


EGGBOX_SYM = [-0.999964, -0.00333777, -0.0077452, 0.232611, 0.00321462, -0.999869, 0.0158593, 0.694388,
              -0.00782636, 0.0158342, 0.999844, -0.0792063, 0, 0, 0, 1]  # fmt: skip


def _infos() -> dict[int, ModelInfo]:
    return {
        10: ModelInfo(
            diameter_mm=164.628,
            min_xyz_mm=(-50.0, -38.5, -75.0),
            size_xyz_mm=(100.0, 77.0, 150.0),
            symmetries_discrete=np.array(EGGBOX_SYM, np.float64).reshape(1, 4, 4),
        ),
        2: ModelInfo(
            diameter_mm=0.1 + 0.2,  # a float whose repr needs 17 digits
            min_xyz_mm=(1.0, 2.0, 3.0),
            size_xyz_mm=(4.0, 5.0, 6.0),
            symmetries_continuous=(((0.0, 0.0, 1.0), (0.0, 0.0, 0.5)),),
        ),
    }


def test_round_trip(tmp_path):
    p = tmp_path / "models_info.json"
    save_models_info(p, _infos())
    back = load_models_info(p)
    assert list(back) == [2, 10]
    assert back == dict(sorted(_infos().items()))
    assert back[2].diameter_mm == 0.1 + 0.2
    assert back[10].symmetries_discrete.dtype == np.float64 and back[10].symmetries_discrete.shape == (1, 4, 4)
    np.testing.assert_array_equal(back[10].symmetries_discrete[0, 0], [-0.999964, -0.00333777, -0.0077452, 0.232611])


def test_saved_layout_is_bop_json(tmp_path):
    p = tmp_path / "models_info.json"
    save_models_info(p, _infos())
    lines = p.read_text().split("\n")
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == 4
    assert lines[1].startswith('  "2": {"diameter": 0.30000000000000004, "min_x": 1.0')
    assert lines[2].startswith('  "10": {"diameter": 164.628')
    content = json.loads(p.read_text())
    assert content["2"]["symmetries_continuous"] == [{"axis": [0.0, 0.0, 1.0], "offset": [0.0, 0.0, 0.5]}]
    assert content["10"]["symmetries_discrete"][0] == [float(x) for x in EGGBOX_SYM]


def test_loads_minimal_entries(tmp_path):
    p = tmp_path / "models_info.json"
    p.write_text('{"3": {"diameter": 12}}')
    (info,) = load_models_info(p).values()
    assert info.diameter_mm == 12.0 and info.min_xyz_mm is None and info.symmetries_discrete.shape == (0, 4, 4)


@pytest.mark.parametrize(
    "content,fragment",
    [
        ('{"1": {"diameter": 5, "symmetries_discrete": [[1, 0, 0]]}}', "obj_id 1 'symmetries_discrete'[0]: expected a list of 16"),
        ('{"4": {"min_x": 0}}', "obj_id 4: missing key 'diameter'"),
        ('{"4": {"diameter": -3}}', "obj_id 4 'diameter': must be > 0 mm"),
        ('{"x1": {"diameter": 3}}', "key 'x1' is not an integer object id"),
        ('{"2": {"diameter": 3, "symmetries_continuous": [{"axis": [0, 0, 0], "offset": [0, 0, 0]}]}}', "the axis is zero"),
        ("{not json", "is not valid JSON"),
    ],
)  # fmt: skip
def test_invalid_files(tmp_path, content, fragment):
    p = tmp_path / "models_info.json"
    p.write_text(content)
    with pytest.raises(DataFormatError) as exc:
        load_models_info(p)
    assert fragment in str(exc.value) and str(p) in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="models_info.json does not exist"):
        load_models_info(tmp_path / "models_info.json")


@pytest.mark.parametrize("n", [1, 2, 50, 2500])
def test_diameter_matches_bop_bit_for_bit(n):
    rng = np.random.default_rng(n)
    pts = rng.normal(size=(n, 3)) * [60.0, 30.0, 10.0]
    assert pts_diameter(pts) == bop_calc_pts_diameter(pts)


def test_diameter_degenerate_hull_falls_back():
    rng = np.random.default_rng(1)
    pts = np.zeros((2100, 3))
    pts[:, :2] = rng.uniform(-1, 1, size=(2100, 2))  # flat: qhull cannot build a 3D hull
    assert pts_diameter(pts) == bop_calc_pts_diameter(pts)


def test_compute_model_info(tmp_path, tet):
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm, tet.f, binary=True)
    info = compute_model_info(load_mesh(p))
    assert info.diameter_mm == pytest.approx(bop_calc_pts_diameter(tet.v_mm), rel=1e-6)
    np.testing.assert_allclose(info.min_xyz_mm, [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(info.size_xyz_mm, [40.1, 25.3, 31.9], rtol=1e-6)
    assert info.symmetries_discrete.shape == (0, 4, 4) and info.symmetries_continuous == ()
