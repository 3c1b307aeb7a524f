"""``iterpose check`` and iterpose.data.checks.check_dataset on a tiny hand-written BOP folder with injected faults."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

import iterpose.cli.main as cli_main
from iterpose.data.checks import check_camera_matrix, check_dataset

K = [572.4114, 0.0, 325.2611, 0.0, 573.57043, 242.04899, 0.0, 0.0, 1.0]
R_ID = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def _png(path: Path, w: int, h: int) -> None:
    """A valid grey PNG of w x h (stdlib only)."""
    raw = b"".join(b"\0" + b"\x80" * w for _ in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""),
    )


def _ply(path: Path, scale: float = 1.0, colours: bool = True) -> None:
    v = [(0, 0, 0), (40, 0, 0), (0, 25, 0), (4, 5, 32)]
    f = [(0, 2, 1), (0, 1, 3), (1, 2, 3), (0, 3, 2)]
    head = ["ply", "format ascii 1.0", "element vertex 4", "property float x", "property float y", "property float z",
            "property float nx", "property float ny", "property float nz"]  # fmt: skip
    head += ["property uchar red", "property uchar green", "property uchar blue"] if colours else []
    head += ["element face 4", "property list uchar int vertex_indices", "end_header"]
    rows = [f"{x * scale} {y * scale} {z * scale} 0 0 1" + (f" 200 {60 * i} 10" if colours else "")
            for i, (x, y, z) in enumerate(v)]
    path.write_text("\n".join(head + rows + [f"3 {a} {b} {c}" for a, b, c in f]) + "\n")


def make_bop(root: Path) -> Path:
    """LM-O-like layout: 2 objects, one scene with 2 images (64x48), targets; no depth, no masks."""
    (root / "models").mkdir(parents=True)
    (root / "models_eval").mkdir()
    info = {}
    for oid in (1, 5):
        _ply(root / "models" / f"obj_{oid:06d}.ply")
        _ply(root / "models_eval" / f"obj_{oid:06d}.ply", colours=False)
        info[str(oid)] = {"diameter": 48.4252, "min_x": 0, "min_y": 0, "min_z": 0, "size_x": 40, "size_y": 25,
                          "size_z": 32}  # fmt: skip
    for d in ("models", "models_eval"):
        (root / d / "models_info.json").write_text(json.dumps(info))
    k_small = [57.2, 0.0, 32.5, 0.0, 57.3, 24.2, 0.0, 0.0, 1.0]
    camera = {"fx": 57.2, "fy": 57.3, "cx": 32.5, "cy": 24.2, "width": 64, "height": 48, "depth_scale": 1.0}
    (root / "camera.json").write_text(json.dumps(camera))
    scene = root / "test" / "000002"
    (scene / "rgb").mkdir(parents=True)
    for im in (3, 8):
        _png(scene / "rgb" / f"{im:06d}.png", 64, 48)
    cam = {str(im): {"cam_K": k_small, "depth_scale": 1.0} for im in (3, 8)}
    gt = {
        "3": [{"obj_id": 1, "cam_R_m2c": R_ID, "cam_t_m2c": [10.0, -5.0, 800.0]},
              {"obj_id": 5, "cam_R_m2c": R_ID, "cam_t_m2c": [-60.0, 5.0, 900.0]}],
        "8": [{"obj_id": 5, "cam_R_m2c": R_ID, "cam_t_m2c": [0.0, 0.0, 700.0]}],
    }  # fmt: skip
    gt_info = {k: [{"bbox_obj": [1, 2, 3, 4], "visib_fract": 1.0}] * len(v) for k, v in gt.items()}
    for name, content in (("scene_camera", cam), ("scene_gt", gt), ("scene_gt_info", gt_info)):
        (scene / f"{name}.json").write_text(json.dumps(content))
    targets = [{"im_id": 3, "inst_count": 1, "obj_id": 1, "scene_id": 2},
               {"im_id": 3, "inst_count": 1, "obj_id": 5, "scene_id": 2},
               {"im_id": 8, "inst_count": 1, "obj_id": 5, "scene_id": 2}]  # fmt: skip
    (root / "test_targets_bop19.json").write_text(json.dumps(targets))
    return root


def _edit_json(path: Path, fn) -> None:
    content = json.loads(path.read_text())
    fn(content)
    path.write_text(json.dumps(content))


def _errors(findings):
    return [(f.where, f.message) for f in findings if f.level == "error"]


@pytest.fixture
def bop(tmp_path) -> Path:
    return make_bop(tmp_path / "tiny")


def test_clean_dataset(bop):
    findings = check_dataset(bop)
    assert [(f.level, f.where, f.message) for f in findings] == [
        ("info", "test/", "no depth/ folders: VSD and depth-based refinement unavailable (optional)"),
        ("info", "test/", "no mask_visib/ folders: mask-based metrics unavailable (optional)"),
    ]


def test_bad_camera_matrices(bop):
    cam_path = bop / "test" / "000002" / "scene_camera.json"

    def corrupt(c):
        c["3"]["cam_K"][0] = -57.2  # fx < 0
        c["8"]["cam_K"][2] = 640.0  # cx outside a 64-px-wide image

    _edit_json(cam_path, corrupt)
    assert _errors(check_dataset(bop, check_meshes=False)) == [
        ("test/000002/scene_camera.json['3'].cam_K", "focal lengths must be > 0, got fx=-57.2, fy=57.3"),
        (
            "test/000002/scene_camera.json['8'].cam_K",
            "principal point (cx=640, cy=24.2) is outside the 64x48 image; is K for another resolution?",
        ),
    ]


def test_check_camera_matrix_unit():
    assert check_camera_matrix(K, (640, 480)) == []
    assert check_camera_matrix(K[:8]) == [f"expected 9 finite numbers (row-major 3x3, pixels), got {K[:8]!r}"]
    bad = list(K)
    bad[7] = 0.5
    assert check_camera_matrix(bad)[0].startswith("not a camera matrix: K[1,0] must be 0 and the bottom row 0 0 1")
    nan = list(K)
    nan[4] = float("nan")
    assert check_camera_matrix(nan)[0].startswith("expected 9 finite numbers")


def test_missing_rgb(bop):
    (bop / "test" / "000002" / "rgb" / "000008.png").unlink()
    assert _errors(check_dataset(bop, check_meshes=False)) == [
        ("test/000002/rgb/000008.png", "image missing (listed in scene_camera/scene_gt)"),
        ("test_targets_bop19.json[2]", "image test/000002/rgb/000008 does not exist"),
    ]


def test_missing_models_info(bop):
    (bop / "models" / "models_info.json").unlink()
    errors = _errors(check_dataset(bop))
    assert len(errors) == 1
    assert errors[0][0] == "models/models_info.json"
    assert errors[0][1].startswith("missing: BOP datasets need it for diameters and symmetries")


def test_bad_ground_truth(bop):
    scene = bop / "test" / "000002"

    def corrupt(gt):
        gt["3"][0]["obj_id"] = 7  # no model
        gt["3"][1]["cam_R_m2c"] = [1.0, 0.0, 0.0]  # 3 floats instead of 9
        gt["8"][0]["cam_t_m2c"] = [0.0, 0.0, -700.0]  # behind the camera

    _edit_json(scene / "scene_gt.json", corrupt)
    _edit_json(scene / "scene_gt_info.json", lambda info: info["3"].pop())
    errors = _errors(check_dataset(bop, check_meshes=False))
    assert errors == [
        ("test/000002/scene_gt.json['3'][0]", "obj_id 7 has no model in models/ (ids: [1, 5])"),
        ("test/000002/scene_gt.json['3'][1].cam_R_m2c", "expected 9 finite numbers, got [1.0, 0.0, 0.0]"),
        ("test/000002/scene_gt.json['8'][0].cam_t_m2c", "object behind the camera (z = -700 mm)"),
        ("test/000002/scene_gt_info.json['3']", "1 entries but scene_gt.json has 2; they must align by gt_id"),
        ("test_targets_bop19.json[0]", "inst_count 1 but scene_gt.json has 0 instances of obj 1 in image 3"),
    ]


def test_keys_that_fool_isdigit_are_findings_not_crashes(bop):
    scene = bop / "test" / "000002"
    _edit_json(scene / "scene_gt.json", lambda gt: gt.update({"--1": []}))
    _edit_json(scene / "scene_camera.json", lambda cam: cam.update({"\u00b2": {}}))
    errors = _errors(check_dataset(bop, check_meshes=False))
    assert errors == [
        ("test/000002/scene_camera.json['\u00b2']", "key is not an integer image id"),
        ("test/000002/scene_gt.json['--1']", "expected an integer image id mapping to a list of instances"),
    ]


def test_translation_in_metres_warns(bop):
    _edit_json(bop / "test" / "000002" / "scene_gt.json", lambda gt: gt["8"][0].update(cam_t_m2c=[0.0, 0.0, 0.7]))
    (w,) = [f for f in check_dataset(bop, check_meshes=False) if f.level == "warning"]
    assert w.message == "|t| = 0.7 mm is tiny: is it in metres? BOP uses mm"


def test_model_in_metres_and_bad_target(bop):
    _ply(bop / "models" / "obj_000005.ply", scale=0.001)
    extra = {"im_id": 3, "inst_count": 1, "obj_id": 1, "scene_id": 9}
    _edit_json(bop / "test_targets_bop19.json", lambda t: t.append(extra))
    errors = _errors(check_dataset(bop))
    assert errors[0][0] == "models/obj_000005.ply"
    assert errors[0][1].startswith("diameter is 0.0484 mm with unit='mm'") and errors[0][1].endswith("unit='m'")
    assert errors[1:] == [("test_targets_bop19.json[3]", "scene 000009 is not in test/")]


def test_many_similar_errors_are_capped(bop):
    scene = bop / "test" / "000002"
    _edit_json(scene / "scene_camera.json", lambda c: c.update({str(i): {"cam_K": K} for i in range(100, 120)}))
    findings = check_dataset(bop, check_meshes=False)
    missing = [f for f in findings if f.message.startswith("image missing")]
    assert len(missing) == 5
    assert findings[-1].message == "... and 15 more like the above (missing image)"


def test_missing_split_and_models(tmp_path):
    root = tmp_path / "ds"
    (root / "train_pbr" / "000000").mkdir(parents=True)
    (root / "camera.json").write_text("{not json")
    errors = _errors(check_dataset(root))
    assert errors[0][0] == "camera.json" and errors[0][1].startswith("not valid JSON")
    assert errors[1:] == [
        (str(root), "no models/ folder (BOP: models/obj_000001.ply, ... and models/models_info.json)"),
        ("test/", "split folder does not exist; folders with scenes: ['train_pbr']"),
    ]


# ------------------------------------------------------------------------------------------------ the CLI verb


@pytest.fixture
def iterpose(monkeypatch):
    """Run ``iterpose ...`` in-process with only the check verb registered (other verbs may not exist yet)."""
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("check",))
    return cli_main.main


def test_cli_clean_dataset(bop, iterpose, capsys):
    assert iterpose(["check", str(bop)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "INFO     test/: no depth/ folders: VSD and depth-based refinement unavailable (optional)"
    assert out[-1].startswith(f"OK: {bop} (BOP dataset): 0 error(s), 0 warning(s), 2 note(s) in ")


def test_cli_dataset_with_error(bop, iterpose, capsys):
    (bop / "models" / "models_info.json").unlink()
    assert iterpose(["check", str(bop), "--split", "test"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ERROR    models/models_info.json: missing: BOP datasets need it")
    assert out[-1].startswith(f"FAILED: {bop} (BOP dataset): 1 error(s), 0 warning(s), 2 note(s)")


def test_cli_mesh_file_units(bop, iterpose, capsys):
    mesh = bop / "models" / "obj_000001.ply"
    assert iterpose(["check", str(mesh), "--unit", "m"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"ERROR    {mesh}: diameter is 48.4 m with unit='m' (plausible objects are 2 mm to 20 m); the file is "
        "probably in millimetres — pass unit='mm'"
    )
    assert iterpose(["check", str(mesh)]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {mesh} (mesh): 0 error(s), 0 warning(s), 0 note(s)")


def test_cli_models_folder_and_missing_path(bop, iterpose, capsys, tmp_path):
    assert iterpose(["check", str(bop / "models_eval")]) == 0
    assert "(models folder): 0 error(s), 0 warning(s), 0 note(s)" in capsys.readouterr().out
    assert iterpose(["check", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().out.startswith(f"ERROR    {tmp_path / 'nope'}: no such file or folder\n")


def test_cli_bad_unit_is_an_argparse_error(iterpose, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        iterpose(["check", str(tmp_path), "--unit", "inch"])
    assert exc.value.code == 2 and "invalid choice: 'inch'" in capsys.readouterr().err


def test_cli_on_real_lmo(lmo_dir, iterpose, capsys):
    assert iterpose(["check", str(lmo_dir)]) == 0
    out = capsys.readouterr().out
    assert "ERROR" not in out and "WARNING" not in out
    assert "(BOP dataset): 0 error(s), 0 warning(s)" in out.splitlines()[-1]
