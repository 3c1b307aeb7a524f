"""bop_writer: bop_toolkit's JSON layout, arguments left untouched, atomic writes, image encodings."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from iterpose.data import BopDataset, format_json, save_depth_mm, save_json, save_mask, save_rgb, save_scene_gt
from iterpose.data.bop_writer import save_camera, save_scene_camera, save_scene_gt_info
from iterpose.errors import InvalidInputError, MissingFileError, ShapeError


def test_format_json_layout():
    # dict: sorted keys (ints numerically, like bop's sorted(items)), one per line, values with sorted keys
    content = {10: [{"obj_id": 2, "cam_t_m2c": [0.1, 2.0, 3e-5]}], 3: {"b": 1, "a": np.float64(0.5)}}
    assert format_json(content) == (
        '{\n  "3": {"a": 0.5, "b": 1},\n  "10": [{"cam_t_m2c": [0.1, 2.0, 3e-05], "obj_id": 2}]\n}'
    )
    assert format_json([{"b": 1, "a": 2}, {"c": np.int64(3)}]) == '[\n  {"a": 2, "b": 1},\n  {"c": 3}\n]'
    assert format_json({}) == "{\n}" and format_json([]) == "[\n]"
    with pytest.raises(InvalidInputError, match=r"content\.3\.a is nan"):
        format_json({3: {"a": float("nan")}})


def test_writers_do_not_modify_arguments(tmp_path):
    scene_gt = {0: [{"obj_id": 1, "cam_R_m2c": np.eye(3), "cam_t_m2c": np.array([[1.0], [2.0], [3.0]])}]}
    scene_camera = {0: {"cam_K": np.eye(3), "depth_scale": 1.0, "view_level": 2}}
    gt_copy, cam_copy = copy.deepcopy(scene_gt), copy.deepcopy(scene_camera)
    save_scene_gt(tmp_path / "scene_gt.json", scene_gt)
    save_scene_camera(tmp_path / "scene_camera.json", scene_camera)
    assert isinstance(scene_gt[0][0]["cam_R_m2c"], np.ndarray) and scene_gt[0][0]["cam_R_m2c"].shape == (3, 3)
    assert np.array_equal(scene_gt[0][0]["cam_t_m2c"], gt_copy[0][0]["cam_t_m2c"])
    assert scene_camera[0].keys() == cam_copy[0].keys() and isinstance(scene_camera[0]["cam_K"], np.ndarray)
    assert (tmp_path / "scene_gt.json").read_text() == (
        '{\n  "0": [{"cam_R_m2c": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], '
        '"cam_t_m2c": [1.0, 2.0, 3.0], "obj_id": 1}]\n}'
    )
    assert '"view_level": 2' in (tmp_path / "scene_camera.json").read_text()


def test_records_round_trip_through_writer(tiny_bop, tmp_path):
    """Reader records -> writer -> the very same bytes as the original files."""
    ds = BopDataset(tiny_bop.root)
    scene = tiny_bop.root / "test" / "000001"
    for name, fn, data in [
        ("scene_gt.json", save_scene_gt, ds.scene_gt(1)),
        ("scene_gt_info.json", save_scene_gt_info, ds.scene_gt_info(1)),
        ("scene_camera.json", save_scene_camera, ds.scene_camera(1)),
    ]:
        fn(tmp_path / name, data)
        assert (tmp_path / name).read_bytes() == (scene / name).read_bytes(), name


def test_invalid_inputs_write_nothing(tmp_path):
    bad_gt = {0: [{"obj_id": 1, "cam_R_m2c": np.eye(3)[:2], "cam_t_m2c": [0, 0, 1]}]}
    with pytest.raises(ShapeError, match="save_scene_gt: image 0 instance 0: cam_R_m2c must have 9 numbers, got 6"):
        save_scene_gt(tmp_path / "scene_gt.json", bad_gt)
    with pytest.raises(InvalidInputError, match="image 0 instance 0: cam_t_m2c contains NaN"):
        save_scene_gt(tmp_path / "scene_gt.json", {0: [{"obj_id": 1, "cam_R_m2c": np.eye(3),
                                                         "cam_t_m2c": [0, np.nan, 1]}]})
    with pytest.raises(InvalidInputError, match="obj_id must be an integer, got 1.0"):
        save_scene_gt(tmp_path / "scene_gt.json", {0: [{"obj_id": 1.0, "cam_R_m2c": np.eye(3),
                                                         "cam_t_m2c": [0, 0, 1]}]})
    with pytest.raises(InvalidInputError, match="save_scene_gt_info: image 2 instance 0: missing 'visib_fract'"):
        save_scene_gt_info(tmp_path / "i.json", {2: [{"bbox_obj": [0, 0, 1, 1], "bbox_visib": [0, 0, 1, 1],
                                                      "px_count_all": 1, "px_count_valid": 1, "px_count_visib": 1}]})
    with pytest.raises(InvalidInputError, match="save_depth_mm: max depth 7000.0 mm / depth_scale 0.1"):
        save_depth_mm(tmp_path / "d.png", np.full((2, 3), 7000.0), depth_scale=0.1)
    with pytest.raises(InvalidInputError, match="finite and >= 0"):
        save_depth_mm(tmp_path / "d.png", np.full((2, 3), -1.0))
    with pytest.raises(InvalidInputError, match="only 16-bit PNG"):
        save_depth_mm(tmp_path / "d.jpg", np.ones((2, 3)))
    with pytest.raises(InvalidInputError, match="image must be uint8"):
        save_rgb(tmp_path / "a.png", np.ones((2, 3, 3), np.float32))
    with pytest.raises(ShapeError, match=r"\[H, W\] or \[H, W, 3\]"):
        save_rgb(tmp_path / "a.png", np.ones((2, 3, 4), np.uint8))
    with pytest.raises(ShapeError, match=r"save_mask: mask must be \[H, W\]"):
        save_mask(tmp_path / "m.png", np.ones((2, 3, 1)))
    assert os.listdir(tmp_path) == []
    with pytest.raises(MissingFileError, match="folder .*sub does not exist"):
        save_json(tmp_path / "sub" / "x.json", {})


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "scene_gt.json"
    save_json(path, {1: [1]})
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_json(path, {2: [2]})
    assert path.read_text() == '{\n  "1": [1]\n}'
    assert os.listdir(tmp_path) == ["scene_gt.json"]


def test_written_files_get_umask_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    save_json(tmp_path / "a.json", [1])
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_depth_png_is_16_bit_and_scaled(tmp_path):
    import cv2

    d = np.array([[0.0, 1.04, 1.06], [6553.5, 100.0, 0.04]])
    save_depth_mm(tmp_path / "d.png", d, depth_scale=0.1)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.tolist() == [[0, 10, 11], [65535, 1000, 0]]


def test_camera_json(tmp_path):
    K = np.array([[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]])
    save_camera(tmp_path / "camera.json", K, 640, 480, depth_scale=1.0)
    # byte-identical to LM-O's camera.json
    assert (tmp_path / "camera.json").read_text() == (
        '{\n  "cx": 325.2611,\n  "cy": 242.04899,\n  "depth_scale": 1.0,\n  "fx": 572.4114,\n'
        '  "fy": 573.57043,\n  "height": 480,\n  "width": 640\n}'
    )
