"""`generate_scene`: determinism, poses in view, masks vs depth vs an independent render, GT info formulas."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from iterpose.data.synth import (
    bbox_xywh,
    generate_scene,
    interpolate_colors,
    interpolate_colors_reference,
    prepare_objects,
    scene_rng,
)
from iterpose.errors import InvalidInputError
from iterpose.render import rasterize, render_depth, render_objects, render_scene

_spec = importlib.util.spec_from_file_location("_synth_test_config", Path(__file__).with_name("test_synth_config.py"))
_cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cfg)
H, W, K_SMALL, small_config, two_objects = _cfg.H, _cfg.W, _cfg.K_SMALL, _cfg.small_config, _cfg.two_objects

OBJECTS = two_objects()
K = torch.tensor(K_SMALL, dtype=torch.float32).reshape(3, 3)


@pytest.fixture(scope="module")
def scenes():
    cfg = small_config(distractors=(1, 2), occluders=(1, 1))
    return cfg, [generate_scene(OBJECTS, cfg, scene_rng(11, k)) for k in range(6)]


def test_same_seed_same_image_other_seed_other_image():
    cfg = small_config()
    a = generate_scene(OBJECTS, cfg, scene_rng(5, 3))
    b = generate_scene(OBJECTS, cfg, scene_rng(5, 3))
    c = generate_scene(OBJECTS, cfg, scene_rng(5, 4))
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.T_co, b.T_co) and torch.equal(a.mask_full, b.mask_full)
    assert not torch.equal(a.rgb, c.rgb)
    assert a.rgb.shape == (3, H, W) and a.rgb.dtype == torch.float32
    assert float(a.rgb.min()) >= 0.0 and float(a.rgb.max()) <= 1.0


def test_targets_in_view_at_sampled_distance(scenes):
    cfg, ss = scenes
    meshes = prepare_objects(OBJECTS)
    for s in ss:
        n = s.num_instances
        assert cfg.objects_per_image[0] <= n <= cfg.objects_per_image[1]
        assert s.T_co.shape == (n, 4, 4) and s.T_co.dtype == torch.float32
        R = s.T_co[:, :3, :3].double()
        torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(n, 3, 3),
                                   rtol=0, atol=1e-6)
        for k in range(n):
            m = meshes[int(s.obj_index[k])]
            assert int(s.obj_ids[k]) == OBJECTS[int(s.obj_index[k])].obj_id
            c = s.T_co[k, :3, :3].double().numpy() @ m.center + s.T_co[k, :3, 3].double().numpy()
            assert cfg.distance_m[0] - 1e-6 <= c[2] <= cfg.distance_m[1] + 1e-6
            u, v = (K.double().numpy() @ (c / c[2]))[:2]
            assert cfg.margin_px - 0.5 - 1e-3 <= u <= W - 0.5 - cfg.margin_px + 1e-3
            assert cfg.margin_px - 0.5 - 1e-3 <= v <= H - 0.5 - cfg.margin_px + 1e-3
        assert (s.visib_fract >= cfg.min_visib_fract).all()  # occluders were forced in, targets stay visible


def test_distinct_objects_when_enough():
    cfg = small_config(objects_per_image=(2, 2))
    for k in range(4):
        s = generate_scene(OBJECTS, cfg, scene_rng(0, k))
        assert sorted(s.obj_ids.tolist()) == [1, 7]


def test_masks_consistent_with_depth_and_independent_render(scenes):
    _, ss = scenes
    for s in ss:
        n = s.num_instances
        models = [OBJECTS[int(i)] for i in s.obj_index]
        assert s.mask_full.shape == (n, H, W) and s.mask_visible.dtype == torch.bool
        assert not (s.mask_visible & ~s.mask_full).any()  # visible is a subset of full
        assert not (s.mask_visible.sum(0) > 1).any()  # one owner per pixel
        assert (s.depth_m[s.mask_visible.any(0)] > 0).all()
        full = render_objects(models, s.T_co, K, H, W, shading=False).mask  # each alone, full image
        assert torch.equal(full, s.mask_full)
        for k in range(n):
            d_alone = render_depth(models[k], s.T_co[k], K, H, W)
            vis = s.mask_visible[k]
            torch.testing.assert_close(s.depth_m[vis], d_alone[vis], rtol=0, atol=1e-6)
            hidden = s.mask_full[k] & ~vis  # something nearer is in front
            assert (s.depth_m[hidden] < d_alone[hidden] + 1e-6).all()


def test_visib_fract_counts_and_boxes(scenes):
    _, ss = scenes
    for s in ss:
        for k in range(s.num_instances):
            full, vis = s.mask_full[k].numpy(), s.mask_visible[k].numpy()
            assert int(s.px_count_all[k]) == full.sum() and int(s.px_count_visib[k]) == vis.sum()
            assert float(s.visib_fract[k]) == pytest.approx(vis.sum() / full.sum(), abs=1e-15)
            ys, xs = np.nonzero(full)
            assert s.bbox_obj[k].tolist() == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
            ys, xs = np.nonzero(vis)
            assert s.bbox_visib[k].tolist() == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]


def test_bbox_xywh_hand_made():
    m = np.zeros((5, 7), bool)
    m[1:3, 2:6] = True
    m[4, 3] = True
    assert bbox_xywh(m) == (2, 1, 3, 3)  # bop_toolkit calc_2d_bbox: w = xmax - xmin
    assert bbox_xywh(np.zeros((3, 3), bool)) == (-1, -1, -1, -1)


def test_some_targets_occluded_somewhere(scenes):
    _, ss = scenes
    assert min(float(s.visib_fract.min()) for s in ss) < 1.0  # occluders really occlude


def test_upper_hemisphere_viewpoints():
    cfg = small_config(viewpoint="upper_hemisphere", objects_per_image=(1, 1), distractors=(0, 0), occluders=(0, 0))
    meshes = prepare_objects(OBJECTS)
    for k in range(12):
        s = generate_scene(OBJECTS, cfg, scene_rng(3, k))
        T = s.T_co[0].double().numpy()
        m = meshes[int(s.obj_index[0])]
        cam_in_obj = -T[:3, :3].T @ T[:3, 3]
        assert (cam_in_obj - m.center)[2] >= -1e-6


def test_interpolation_kernel_matches_numpy_reference_on_asymmetric_triangles():
    verts = np.array([[-0.02, -0.01, 0.5], [0.03, -0.012, 0.6], [0.0, 0.025, 0.55], [0.04, 0.03, 0.7]])
    faces = np.array([[0, 1, 2], [1, 3, 2]], np.int64)
    colors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.25, 1]], np.float32)
    Ks = np.array([[200.0, 0, 7.3], [0, 190.0, 6.1], [0, 0, 1]])
    r = rasterize(torch.from_numpy(verts), torch.from_numpy(faces), torch.from_numpy(Ks), 13, 17)
    fid = r.face_id[0].numpy()
    assert (fid == 0).sum() > 5 and (fid == 1).sum() > 5
    fast = interpolate_colors(fid, verts, faces, colors, Ks)
    ref = interpolate_colors_reference(fid, verts, faces, colors, Ks)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    assert (fast[fid < 0] == 0).all() and fast[fid >= 0].min() >= -1e-6
    # a crop window (x0, y0) = (3, 2) gives the same values as the full image there
    rc = rasterize(torch.from_numpy(verts), torch.from_numpy(faces), torch.from_numpy(Ks), 13, 17,
                   crop=torch.tensor([[3, 2, 9, 7]]))
    win = interpolate_colors(rc.face_id[0].numpy(), verts, faces, colors, Ks, (3, 2))
    np.testing.assert_allclose(win, fast[2:9, 3:12], rtol=0, atol=1e-6)
    np.testing.assert_allclose(interpolate_colors_reference(rc.face_id[0].numpy(), verts, faces, colors, Ks, (3, 2)),
                               win, rtol=0, atol=1e-6)


def test_interpolated_albedo_matches_render_scene():
    """Without light variation (ambient 1, diffuse 0, no jitter/noise/blur) the objects' pixels are exactly the
    interpolated albedo that render_scene(shading=False) produces."""
    cfg = small_config(ambient=(1.0, 1.0), diffuse=(0.0, 0.0), noise_std=(0.0, 0.0), blur_prob=0.0, gain=(1.0, 1.0),
                       bias=(0.0, 0.0), distractors=(0, 0), occluders=(0, 0))
    s = generate_scene(OBJECTS, cfg, scene_rng(2, 0))
    models = [OBJECTS[int(i)] for i in s.obj_index]
    ref = render_scene(models, s.T_co.double(), K[None].double(), torch.zeros(s.num_instances, dtype=torch.long), H,
                       W, shading=False)  # float64: the generator interpolates in float64 too
    on = ref.instance_id[0] >= 0
    assert torch.equal(on, s.mask_visible.any(0))
    torch.testing.assert_close(s.rgb[:, on].double(), ref.rgb[0][:, on].clamp(0, 1), rtol=0, atol=1e-6)


def test_background_folder_images_are_used(tmp_path):
    import cv2

    folder = tmp_path / "bg"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((50, 80, 3), (0, 0, 255), np.uint8))  # pure red (BGR)
    cfg = small_config(background=str(folder), noise_std=(0.0, 0.0), blur_prob=0.0, gain=(1.0, 1.0),
                       bias=(0.0, 0.0), distractors=(0, 0), occluders=(0, 0))
    s = generate_scene(OBJECTS, cfg, scene_rng(0, 1))
    bg = ~s.mask_visible.any(0)
    torch.testing.assert_close(s.rgb[:, bg].mean(1), torch.tensor([1.0, 0.0, 0.0]), rtol=0, atol=1e-6)


def test_bad_inputs():
    cfg = small_config()
    with pytest.raises(InvalidInputError, match="non-empty sequence"):
        generate_scene([], cfg, scene_rng(0, 0))
    with pytest.raises(InvalidInputError, match=r"objects\[1\] is a str"):
        generate_scene([OBJECTS[0], "obj"], cfg, scene_rng(0, 0))
    with pytest.raises(InvalidInputError, match="numpy.random.Generator"):
        generate_scene(OBJECTS, cfg, 3)
