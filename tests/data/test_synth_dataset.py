"""`SynthPoseDataset`: item keys/shapes/dtypes, K_crop consistency, determinism across DataLoader workers."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from iterpose.data.synth import generate_prepared, prepare_objects, scene_rng
from iterpose.data.synth_dataset import SynthPoseDataset, crop_box_xywh, warp_crop
from iterpose.errors import InvalidInputError
from iterpose.geometry import rotation_angle
from iterpose.render import render_objects

_spec = importlib.util.spec_from_file_location("_synth_test_config", Path(__file__).with_name("test_synth_config.py"))
_cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cfg)
small_config, two_objects = _cfg.small_config, _cfg.two_objects

OBJECTS = two_objects()
CROP_H, CROP_W = 48, 64


@pytest.fixture(scope="module")
def dataset():
    return SynthPoseDataset(OBJECTS, small_config(), length=6, seed=21)


def test_item_keys_shapes_dtypes(dataset):
    item = dataset[2]
    expected = {
        "rgb": ((3, CROP_H, CROP_W), torch.float32), "mask_visible": ((CROP_H, CROP_W), torch.bool),
        "mask_full": ((CROP_H, CROP_W), torch.bool), "depth_m": ((CROP_H, CROP_W), torch.float32),
        "K_crop": ((3, 3), torch.float32), "K": ((3, 3), torch.float32), "box_xywh": ((4,), torch.float32),
        "T_co_gt": ((4, 4), torch.float32), "T_co_init": ((4, 4), torch.float32), "obj_id": ((), torch.int64),
        "obj_index": ((), torch.int64), "visib_fract": ((), torch.float32), "index": ((), torch.int64),
    }
    assert set(item) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(item[key].shape) == shape and item[key].dtype == dtype, key
    assert int(item["index"]) == 2 and int(item["obj_id"]) in (1, 7)
    assert item["mask_visible"].any() and not (item["mask_visible"] & ~item["mask_full"]).any()
    assert 0.0 <= float(item["rgb"].min()) and float(item["rgb"].max()) <= 1.0
    assert len(dataset) == 6


def test_item_is_scene_k_and_perturbation_is_deepim_like(dataset):
    meshes = prepare_objects(OBJECTS)
    for k in range(len(dataset)):
        item = dataset[k]
        scene = generate_prepared(meshes, dataset.config, scene_rng(21, k))
        assert any(torch.equal(item["T_co_gt"], T) for T in scene.T_co)  # a GT pose of scene k
        angle = float(rotation_angle(item["T_co_init"][None, :3, :3].double() @
                                     item["T_co_gt"][None, :3, :3].double().transpose(1, 2))[0])
        assert 0.0 < angle <= np.radians(45.0) + 1e-6
        assert 0.0 < float((item["T_co_init"][:3, 3] - item["T_co_gt"][:3, 3]).norm()) < 0.5


def test_K_crop_centres_the_initial_pose_and_matches_the_crop(dataset):
    meshes = prepare_objects(OBJECTS)
    for k in range(len(dataset)):
        item = dataset[k]
        m = meshes[int(item["obj_index"])]
        T = item["T_co_init"].double().numpy()
        c = T[:3, :3] @ m.center + T[:3, 3]
        uv = (item["K_crop"].double().numpy() @ (c / c[2]))[:2]
        np.testing.assert_allclose(uv, [(CROP_W - 1) / 2, (CROP_H - 1) / 2], atol=1e-3)
        # the GT object rendered straight into the crop with K_crop covers the cropped full mask
        model = OBJECTS[int(item["obj_index"])]
        rend = render_objects([model], item["T_co_gt"][None], item["K_crop"][None], CROP_H, CROP_W, shading=False)
        a, b = rend.mask[0], item["mask_full"]
        iou = float((a & b).sum()) / float((a | b).sum())
        assert iou > 0.85, (k, iou)


def test_warp_crop_follows_zoom_K_convention():
    img = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    # a 2x zoom of the 8 x 6 box at (x0, y0) = (10, 5): output pixel (i', j') samples u = (j' + 0.5) / 2 + 9.5
    out = warp_crop(img, np.array([10.0, 5.0, 8.0, 6.0]), (12, 16))
    jj, ii = np.meshgrid(np.arange(16), np.arange(12))
    u, v = (jj + 0.5) / 2 + 9.5, (ii + 0.5) / 2 + 4.5
    expected = v * 30 + u  # the image is linear in (u, v), so bilinear sampling is exact
    np.testing.assert_allclose(out, expected, atol=1e-3)
    box = crop_box_xywh((40.0, 30.0), 10.0, (48, 64), 1.5)
    np.testing.assert_allclose(box, [40 - 20 + 0.5, 30 - 15 + 0.5, 40.0, 30.0])


_LOADER_SCRIPT = """
import importlib.util, sys, torch
from torch.utils.data import DataLoader
from iterpose.data.synth_dataset import SynthPoseDataset
spec = importlib.util.spec_from_file_location("cfg", sys.argv[1])
cfg = importlib.util.module_from_spec(spec); spec.loader.exec_module(cfg)
ds = SynthPoseDataset(cfg.two_objects(), cfg.small_config(), length=4, seed=21)
batches = list(DataLoader(ds, batch_size=2, num_workers=2, shuffle=False))  # default start method (fork on Linux)
assert batches[0]["rgb"].shape == (2, 3, 48, 64), batches[0]["rgb"].shape
for k in range(4):
    item = ds[k]  # in the main process, after the workers
    for key in ("rgb", "T_co_init", "K_crop", "mask_visible", "obj_id"):
        assert torch.equal(batches[k // 2][key][k % 2], item[key]), (k, key)
print("LOADER-OK")
"""


def test_deterministic_with_dataloader_workers(dataset):
    """Workers (forked by a process that has not rendered yet, as in a training script) give the same items as the
    main process: seeds are per item, not per worker. Run in a fresh interpreter: this one has already used the
    numba rasteriser (see the SynthPoseDataset docstring about fork())."""
    import os
    import subprocess
    import sys

    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._meshes is None and clone.seed == dataset.seed
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    res = subprocess.run([sys.executable, "-c", _LOADER_SCRIPT, str(Path(__file__).with_name("test_synth_config.py"))],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "LOADER-OK" in res.stdout, res.stderr[-2000:]


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="non-empty sequence"):
        SynthPoseDataset([], small_config())
    with pytest.raises(InvalidInputError, match="length"):
        SynthPoseDataset(OBJECTS, small_config(), length=-1)
    ds = SynthPoseDataset(OBJECTS, small_config(), length=2)
    with pytest.raises(IndexError, match="out of range"):
        ds[2]
