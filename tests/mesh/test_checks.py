"""iterpose.mesh.checks: check_mesh and check_models_dir report findings instead of raising."""

from __future__ import annotations

import numpy as np
import pytest

from iterpose.errors import DataFormatError
from iterpose.mesh import Finding, ModelInfo, check_mesh, check_models_dir, load_objects, save_models_info
from iterpose.mesh import checks as checks_mod


def _levels(findings):
    return [(f.level, f.message) for f in findings]


def test_good_mesh_has_no_findings(tet_ascii):
    assert check_mesh(tet_ascii) == []


def test_finding_str_and_level_validation():
    assert str(Finding("error", "a.ply", "bad")) == "ERROR    a.ply: bad"
    with pytest.raises(ValueError, match="Finding.level"):
        Finding("fatal", "a.ply", "bad")


def test_missing_colours_and_normals_are_warnings(tet_binary):
    found = check_mesh(tet_binary)
    assert [f.level for f in found] == ["warning", "warning"]
    assert "no vertex colours or texture: photometric refiners" in found[0].message
    assert "no vertex normals" in found[1].message
    assert all(f.where == str(tet_binary) for f in found)
    assert check_mesh(tet_binary, purpose="eval") == []


def test_missing_and_corrupt_file(tmp_path):
    (f,) = check_mesh(tmp_path / "obj_000001.ply")
    assert f.level == "error" and "does not exist" in f.message
    p = tmp_path / "obj_000002.ply"
    p.write_bytes(b"\x00garbage")
    (f,) = check_mesh(p)
    assert f.level == "error" and f.where == str(p) and "corrupt or not a valid PLY mesh" in f.message


def test_several_problems_reported_at_once(tmp_path, tet):
    v = tet.v_mm.copy()
    v[0, 0] = np.inf
    f = tet.f.copy()
    f[0, 0] = 17
    p = tet.write_ply(tmp_path / "obj_000001.ply", v, f, binary=True)
    found = check_mesh(p)
    assert [x.level for x in found] == ["error", "error"]
    assert "1 of 4 vertices are NaN or inf" in found[0].message
    assert "face indices range 0..17 but there are only 4 vertices" in found[1].message


def test_unit_mistake(tmp_path, tet):
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm / 1000, tet.f, rgb=tet.rgb, normals=tet.normals)
    (f,) = check_mesh(p)
    assert f.level == "error"
    assert f.message.startswith("diameter is 0.0487 mm with unit='mm'")
    assert f.message.endswith("pass unit='m'")
    assert check_mesh(p, unit="m") == []


def test_open_mesh_and_zero_area_faces_are_infos(tmp_path, tet):
    f = np.vstack([tet.f[:3], [[0, 0, 1]]])  # remove one face, add a degenerate one
    p = tet.write_ply(tmp_path / "obj_000001.ply", tet.v_mm, f, rgb=tet.rgb, normals=tet.normals)
    found = check_mesh(p)
    assert [x.level for x in found] == ["info", "info"]
    assert found[0].message == "1 of 4 faces have zero area"
    assert found[1].message.startswith("not watertight: 5 edges are not shared by exactly two faces")


def test_huge_vertex_count_warning(tet_ascii, monkeypatch):
    monkeypatch.setattr(checks_mod, "MAX_VERTICES", 3)
    (f,) = check_mesh(tet_ascii)
    assert f.level == "warning" and f.message.startswith("4 vertices (more than 3): rendering and evaluation")


def _folder(tmp_path, tet, infos):
    d = tmp_path / "models"
    d.mkdir()
    tet.write_ply(d / "obj_000001.ply", tet.v_mm, tet.f, rgb=tet.rgb, normals=tet.normals)
    tet.write_ply(d / "obj_000002.ply", tet.v_mm, tet.f, rgb=tet.rgb, normals=tet.normals, binary=True)
    if infos is not None:
        save_models_info(d / "models_info.json", infos)
    return d


def test_models_dir_consistent(tmp_path, tet):
    dia = float(np.sqrt(((tet.v_mm[:, None] - tet.v_mm[None]) ** 2).sum(-1).max()))
    d = _folder(tmp_path, tet, {1: ModelInfo(dia), 2: ModelInfo(dia * 1.005)})
    findings, ids = check_models_dir(d, label="models")
    assert findings == [] and ids == {1, 2}


def test_models_dir_problems(tmp_path, tet):
    bad_sym = np.eye(4)[None].copy()
    bad_sym[0, 0, 0] = 2.0
    d = _folder(tmp_path, tet, {1: ModelInfo(100.0, symmetries_discrete=bad_sym), 5: ModelInfo(10.0)})
    findings, ids = check_models_dir(d, label="models", obj_ids_required={1, 9})
    got = {(f.level, f.where, f.message.split(";")[0].split(" (")[0]) for f in findings}
    assert got == {
        ("error", "models/models_info.json[1].symmetries_discrete[0]", "not a rigid transform [R t"),
        ("error", "models/models_info.json", "no entry for obj_id [2]: add diameter and bbox"),
        ("warning", "models/models_info.json", "entries without a mesh file: [5]"),
        ("error", "models", "no mesh for obj_id [9], used by the dataset"),
        ("warning", "models/obj_000001.ply", "diameter of the vertices is 48.6681 but models_info.json says 100"),
    }


def test_models_dir_without_info(tmp_path, tet):
    d = _folder(tmp_path, tet, None)
    (f,) = check_models_dir(d)[0]
    assert f.level == "info" and f.message.startswith("no models_info.json")
    (f,) = check_models_dir(d, require_info=True, label="models")[0]
    assert f.level == "error" and f.where == "models/models_info.json" and f.message.startswith("missing: BOP")


def test_models_dir_two_files_for_one_id_is_an_error(tmp_path, tet):
    """load_objects refuses two meshes for one obj_id, so check must report it instead of picking one."""
    d = _folder(tmp_path, tet, None)
    tet.write_ply(d / "obj_000001.PLY", tet.v_mm, tet.f, rgb=tet.rgb, normals=tet.normals)
    findings, ids = check_models_dir(d, label="models")
    errors = [f for f in findings if f.level == "error"]
    assert [(f.where, f.message) for f in errors] == [
        ("models", "obj_id 1 has 2 mesh files (obj_000001.PLY, obj_000001.ply); loading refuses this: keep one")
    ]
    with pytest.raises(DataFormatError, match="obj_id 1 has two mesh files"):
        load_objects(d)
    assert ids == {1, 2}
