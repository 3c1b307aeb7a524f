"""BopDataset on a tiny dataset written by bop_writer: every value read back exactly, and typed errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from iterpose.data import BopDataset, CameraInfo, GtInfo, GtInstance, Target, gt_T_co
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError


def test_layout_and_camera(tiny_bop):
    ds = BopDataset(tiny_bop.root)
    assert ds.name == "tiny"
    assert ds.split_dir == tiny_bop.root / "test"
    assert ds.scene_ids == [1]
    assert ds.image_ids(1) == [0, 7]
    assert ds.camera == {"cx": 3.25, "cy": 2.75, "depth_scale": 0.1, "fx": 500.5, "fy": 510.125, "height": 6,
                         "width": 8}
    assert ds.image_size == (8, 6)  # (width, height)
    assert ds.models_dir == tiny_bop.root / "models"


def test_scene_camera_exact(tiny_bop):
    cams = BopDataset(tiny_bop.root).scene_camera(1)
    assert list(cams) == [0, 7]
    for im_id, ref in tiny_bop.scene_camera.items():
        cam = cams[im_id]
        assert isinstance(cam, CameraInfo)
        assert cam.K.dtype == np.float64 and cam.K.shape == (3, 3)
        assert np.array_equal(cam.K, ref["cam_K"])
        assert cam.depth_scale == 0.1
    assert cams[0].R_w2c is None and cams[0].t_w2c_mm is None
    assert np.array_equal(cams[7].R_w2c, tiny_bop.scene_camera[7]["cam_R_w2c"])
    assert cams[7].t_w2c_mm.tolist() == [1.5, -2.0, 700.25]


def test_scene_gt_exact_order_and_placeholder(tiny_bop):
    gt = BopDataset(tiny_bop.root).scene_gt(1)
    assert [[g.obj_id for g in gt[i]] for i in (0, 7)] == [[3, 12], [12, 3, 3]]
    for im_id, insts in tiny_bop.scene_gt.items():
        for gt_id, ref in enumerate(insts):
            g = gt[im_id][gt_id]
            assert isinstance(g, GtInstance) and g.gt_id == gt_id
            assert g.R.shape == (3, 3) and g.t_mm.shape == (3,)
            # bit-exact: floats survive the JSON round trip
            assert g.R.tobytes() == np.asarray(ref["cam_R_m2c"], np.float64).tobytes()
            assert g.t_mm.tobytes() == np.asarray(ref["cam_t_m2c"], np.float64).tobytes()
    assert [g.is_placeholder for g in gt[7]] == [False, False, True]
    assert not any(g.is_placeholder for g in gt[0])


def test_gt_T_co_is_metres(tiny_bop):
    g = BopDataset(tiny_bop.root).scene_gt(1)[0][1]
    T = gt_T_co(g)
    assert T.shape == (4, 4) and T.dtype == np.float64
    assert T[:3, 3].tolist() == [-0.0555, 0.003, 0.95]
    assert np.array_equal(T[:3, :3], g.R) and T[3].tolist() == [0, 0, 0, 1]


def test_scene_gt_info_exact(tiny_bop):
    info = BopDataset(tiny_bop.root).scene_gt_info(1)
    for im_id, lst in tiny_bop.scene_gt_info.items():
        assert len(info[im_id]) == len(lst)
        for got, ref in zip(info[im_id], lst):
            assert isinstance(got, GtInfo)
            assert got.bbox_obj == tuple(ref["bbox_obj"]) and got.bbox_visib == tuple(ref["bbox_visib"])
            assert (got.px_count_all, got.px_count_valid, got.px_count_visib) == (
                ref["px_count_all"], ref["px_count_valid"], ref["px_count_visib"])
            assert got.visib_fract == ref["visib_fract"]


def test_targets(tiny_bop):
    t = BopDataset(tiny_bop.root).targets()
    assert t == [Target(**d) for d in tiny_bop.targets]


def test_images_depth_masks(tiny_bop):
    ds = BopDataset(tiny_bop.root)
    for im_id in (0, 7):
        rgb = ds.load_rgb(1, im_id)
        assert rgb.dtype == np.uint8 and rgb.shape == (6, 8, 3)
        assert np.array_equal(rgb, tiny_bop.rgb[im_id])  # PNG is lossless; channel order preserved
        depth = ds.load_depth_mm(1, im_id)
        assert depth.dtype == np.float32 and depth.shape == (6, 8)
        expected = np.round(tiny_bop.depth_mm[im_id] / 0.1).astype(np.float32) * np.float32(0.1)
        assert np.array_equal(depth, expected)
        assert np.abs(depth - tiny_bop.depth_mm[im_id]).max() <= 0.05 + 1e-3
        assert depth[0, 1] == 0.0
        for gt_id in range(len(tiny_bop.scene_gt[im_id])):
            assert np.array_equal(ds.load_mask(1, im_id, gt_id), tiny_bop.masks[im_id, gt_id])
            assert np.array_equal(ds.load_mask_visib(1, im_id, gt_id), tiny_bop.masks_visib[im_id, gt_id])
    assert ds.has_depth
    assert ds.rgb_path(1, 7).name == "000007.png"
    assert ds.mask_visib_path(1, 7, 2).name == "000007_000002.png"


def test_jpg_and_gray_fallbacks(tiny_bop):
    from iterpose.data import save_rgb

    scene = tiny_bop.root / "test" / "000001"
    (scene / "rgb" / "000000.png").unlink()
    save_rgb(scene / "rgb" / "000000.jpg", np.full((6, 8, 3), (200, 100, 50), np.uint8))
    ds = BopDataset(tiny_bop.root)
    assert ds.rgb_path(1, 0).suffix == ".jpg"
    assert np.abs(ds.load_rgb(1, 0).astype(int) - [200, 100, 50]).max() <= 3  # JPEG is lossy
    # ITODD-style gray/ folder, replicated to 3 channels
    (scene / "rgb" / "000007.png").unlink()
    (scene / "gray").mkdir()
    import cv2

    cv2.imwrite(str(scene / "gray" / "000007.tif"), np.arange(48, dtype=np.uint8).reshape(6, 8))
    im = ds.load_rgb(1, 7)
    assert im.shape == (6, 8, 3) and np.array_equal(im[..., 0], np.arange(48).reshape(6, 8))
    assert np.array_equal(im[..., 0], im[..., 2])


def test_missing_files_are_named(tiny_bop):
    ds = BopDataset(tiny_bop.root)
    with pytest.raises(MissingFileError, match=r"depth image of scene 1 image 5 .*000005\.png"):
        ds.load_depth_mm(1, 5)
    with pytest.raises(MissingFileError, match=r"RGB image of scene 1 image 3"):
        ds.load_rgb(1, 3)
    with pytest.raises(MissingFileError, match=r"scene 4 not found: .*000004 .*scenes present: \[1\]"):
        ds.scene_gt(4)
    (tiny_bop.root / "test" / "000001" / "scene_gt_info.json").unlink()
    with pytest.raises(MissingFileError, match=r"ground-truth info of scene 1 not found: .*scene_gt_info\.json"):
        ds.scene_gt_info(1)
    with pytest.raises(MissingFileError, match=r"evaluation targets file not found: .*test_targets_bop24\.json"):
        ds.targets("test_targets_bop24.json")
    with pytest.raises(MissingFileError, match="split folder not found: .*val"):
        BopDataset(tiny_bop.root, split="val").scene_ids
    with pytest.raises(MissingFileError, match="dataset folder not found"):
        BopDataset(tiny_bop.root / "nope")
    with pytest.raises(InvalidInputError, match="split must be a non-empty string"):
        BopDataset(tiny_bop.root, split="")


def test_no_depth(tiny_bop):
    shutil.rmtree(tiny_bop.root / "test" / "000001" / "depth")
    ds = BopDataset(tiny_bop.root)
    assert not ds.has_depth
    with pytest.raises(MissingFileError, match="may have no depth"):
        ds.load_depth_mm(1, 0)


def _edit_json(path, fn):
    content = json.loads(path.read_text())
    fn(content)
    path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    "filename, edit, method, message",
    [
        ("scene_gt.json", lambda c: c["7"][2].update(cam_R_m2c=[1.0] * 8), "scene_gt",
         r"scene_gt\.json image 7 instance 2: cam_R_m2c has 8 numbers, expected 9"),
        ("scene_gt.json", lambda c: c["0"][1].update(cam_t_m2c=[1.0, "x", 2.0]), "scene_gt",
         r"scene_gt\.json image 0 instance 1: cam_t_m2c contains a non-number 'x'"),
        ("scene_gt.json", lambda c: c["0"][0].pop("obj_id"), "scene_gt",
         r"scene_gt\.json image 0 instance 0: missing key 'obj_id'"),
        ("scene_gt.json", lambda c: c.update(abc=[]), "scene_gt", r"scene_gt\.json: key 'abc' is not an integer"),
        ("scene_gt.json", lambda c: c.update({"--1": []}), "scene_gt", r"scene_gt\.json: key '--1' is not an integer"),
        ("scene_camera.json", lambda c: c.update({"\u00b2": {}}), "scene_camera",
         r"scene_camera\.json: key '\u00b2' is not an integer"),
        ("scene_gt_info.json", lambda c: c["7"][0].update(bbox_obj=[1, 2, 3]), "scene_gt_info",
         r"scene_gt_info\.json image 7 instance 0: bbox_obj must be 4 integers"),
        ("scene_gt_info.json", lambda c: c["0"][0].pop("visib_fract"), "scene_gt_info",
         r"scene_gt_info\.json image 0 instance 0: missing key 'visib_fract'"),
        ("scene_camera.json", lambda c: c["7"].update(cam_K=[1.0] * 6), "scene_camera",
         r"scene_camera\.json image 7: cam_K has 6 numbers, expected 9"),
        ("scene_camera.json", lambda c: c["0"].update(cam_model={"projection_params": []}), "scene_camera",
         r"scene_camera\.json image 0: 'cam_model' .* not supported"),
        ("scene_camera.json", lambda c: c["0"].update(depth_scale=-1), "scene_camera",
         r"scene_camera\.json image 0: depth_scale must be a positive number, got -1"),
    ],
)
def test_malformed_entries(tiny_bop, filename, edit, method, message):
    _edit_json(tiny_bop.root / "test" / "000001" / filename, edit)
    with pytest.raises(DataFormatError, match=message):
        getattr(BopDataset(tiny_bop.root), method)(1)


def test_malformed_targets_and_invalid_json(tiny_bop):
    _edit_json(tiny_bop.root / "test_targets_bop19.json", lambda c: c[1].update(inst_count=1.5))
    with pytest.raises(DataFormatError, match=r"test_targets_bop19\.json entry 1: inst_count must be an integer"):
        BopDataset(tiny_bop.root).targets()
    (tiny_bop.root / "test" / "000001" / "scene_gt.json").write_text('{"0": [')
    with pytest.raises(DataFormatError, match=r"scene_gt\.json \(ground-truth poses of scene 1\) is not valid JSON"):
        BopDataset(tiny_bop.root).scene_gt(1)


def test_read_only_and_cached(tiny_bop):
    ds = BopDataset(tiny_bop.root)
    gt = ds.scene_gt(1)
    with pytest.raises(ValueError):
        gt[0][0].R[0, 0] = 5.0
    gt[0].clear()
    del gt[7]
    assert [len(v) for v in ds.scene_gt(1).values()] == [2, 3]  # the cache is untouched
    with pytest.raises(AttributeError, match="read-only"):
        ds.split = "train"
    # cached: a changed file is not re-read by the same instance, a new instance sees it
    _edit_json(tiny_bop.root / "test" / "000001" / "scene_gt.json", lambda c: c.pop("7"))
    assert list(ds.scene_gt(1)) == [0, 7]
    assert list(BopDataset(tiny_bop.root).scene_gt(1)) == [0]


def test_pickle(tiny_bop):
    import pickle

    ds = BopDataset(tiny_bop.root, split="test")
    ds.scene_gt(1)
    ds2 = pickle.loads(pickle.dumps(ds))
    assert repr(ds2) == repr(ds) and ds2.scene_ids == [1]
    assert ds2.scene_gt(1)[7][2].is_placeholder


def test_models_eval_fallback_and_split_type(tiny_bop):
    ds = BopDataset(tiny_bop.root)
    with pytest.warns(UserWarning, match="models_eval not found"):
        assert ds.models_eval_dir == tiny_bop.root / "models"
    (tiny_bop.root / "models_eval").mkdir()
    assert ds.models_eval_dir == tiny_bop.root / "models_eval"

    (tiny_bop.root / "test").rename(tiny_bop.root / "test_primesense")
    (tiny_bop.root / "camera.json").rename(tiny_bop.root / "camera_primesense.json")
    ds2 = BopDataset(tiny_bop.root, split="test", split_type="primesense")
    assert ds2.split_dir.name == "test_primesense" and ds2.scene_ids == [1]
    assert ds2.camera_path.name == "camera_primesense.json" and ds2.image_size == (8, 6)


def test_image_size_from_first_image_without_camera_file(tiny_bop):
    (tiny_bop.root / "camera.json").unlink()
    ds = BopDataset(tiny_bop.root)
    assert ds.camera is None
    assert ds.image_size == (8, 6)
    # without camera.json the depth scale still comes from scene_camera.json
    assert ds.depth_scale(1, 0) == 0.1
