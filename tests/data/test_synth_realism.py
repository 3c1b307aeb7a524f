"""The synthetic scenes' realism options: recoloured copies of the object models as distractors
(``object_distractors``) and a Phong highlight (``specular``, ``shininess``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from iterpose.data.synth import generate_scene, prepare_objects, scene_rng
from iterpose.data.synth_layout import layout, recoloured
from iterpose.data.synth_render import vertex_shading
from iterpose.errors import InvalidInputError

_spec = importlib.util.spec_from_file_location("_synth_test_config", Path(__file__).with_name("test_synth_config.py"))
_cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cfg)
small_config, two_objects = _cfg.small_config, _cfg.two_objects

OBJECTS = two_objects()


def test_recoloured_keeps_the_shape_and_changes_the_colours():
    mesh = prepare_objects(OBJECTS)[0]
    rng = np.random.default_rng(0)
    out = recoloured(mesh, rng)
    assert out.obj_id == -1 and mesh.obj_id == OBJECTS[0].obj_id
    assert out.vertices is mesh.vertices and out.faces is mesh.faces and out.normals is mesh.normals
    assert out.colors.shape == mesh.colors.shape and out.colors.dtype == np.float32
    assert 0.0 <= out.colors.min() and out.colors.max() <= 1.0
    assert np.abs(out.colors - mesh.colors).mean() > 0.02
    # blended with one colour: the per-vertex variation shrinks but does not vanish (the surface detail stays)
    assert 0.1 * mesh.colors.std(0).sum() < out.colors.std(0).sum() < mesh.colors.std(0).sum()


def test_object_distractors_are_model_copies_that_are_not_targets():
    meshes = prepare_objects(OBJECTS)
    cfg = small_config(objects_per_image=(1, 1), distractors=(0, 0), occluders=(0, 0), object_distractors=(3, 3),
                       max_sphere_overlap=0.5)
    n_extra = []
    for k in range(8):
        insts = layout(meshes, cfg, scene_rng(5, k), clutter=True)
        assert insts[0].target_index >= 0 and all(i.target_index == -1 for i in insts[1:])
        for inst in insts[1:]:
            assert inst.mesh.obj_id == -1
            assert any(inst.mesh.vertices is m.vertices for m in meshes)  # a model's geometry, not a primitive
        n_extra.append(len(insts) - 1)
    assert max(n_extra) <= 3 and sum(n_extra) >= 12  # placed, except where the image is too crowded


def test_object_distractors_show_in_the_image_but_not_in_the_ground_truth():
    base = small_config(objects_per_image=(1, 1), distractors=(0, 0), occluders=(0, 0), background="procedural",
                        min_visib_fract=0.0)
    more = small_config(objects_per_image=(1, 1), distractors=(0, 0), occluders=(0, 0), background="procedural",
                        min_visib_fract=0.0, object_distractors=(2, 2))
    covered_base = covered_more = 0
    for k in range(6):
        a = generate_scene(OBJECTS, base, scene_rng(9, k))
        b = generate_scene(OBJECTS, more, scene_rng(9, k))
        # the targets are placed first: same target and pose, the distractors come after in the random stream
        assert a.obj_ids.tolist() == b.obj_ids.tolist() and np.array_equal(a.T_co.numpy(), b.T_co.numpy())
        assert len(b.obj_ids) == 1
        covered_base += int((a.depth_m > 0).sum())
        covered_more += int((b.depth_m > 0).sum())
    assert covered_more > covered_base * 1.3


def test_matte_configs_draw_nothing_new():
    """Scenes of a config without the new options are those older versions made: no extra random draws."""
    cfg = small_config(distractors=(1, 2), occluders=(1, 1))
    a = generate_scene(OBJECTS, cfg, scene_rng(2, 0))
    b = generate_scene(OBJECTS, small_config(distractors=(1, 2), occluders=(1, 1), shininess=(50.0, 60.0)),
                       scene_rng(2, 0))
    assert np.array_equal(a.rgb.numpy(), b.rgb.numpy())  # shininess unused while specular is 0
    c = generate_scene(OBJECTS, small_config(distractors=(1, 2), occluders=(1, 1), specular=(0.5, 0.5)),
                       scene_rng(2, 0))
    assert np.array_equal(a.T_co.numpy(), c.T_co.numpy()) and not np.array_equal(a.rgb.numpy(), c.rgb.numpy())


def test_vertex_shading_lambert_and_highlight():
    # three vertices 1 m in front of the camera: normal towards the camera, tilted 60 deg, and facing away
    vc = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    s60 = np.sin(np.radians(60.0))
    nc = np.array([[0.0, 0.0, -1.0], [s60, 0.0, -0.5], [0.0, 0.0, 1.0]], np.float32)
    colors = np.full((3, 3), 0.5, np.float32)
    light = np.array([0.0, 0.0, -1.0])  # from the scene towards the camera
    matte = vertex_shading(vc, nc, colors, light, 0.2, 0.6)
    np.testing.assert_allclose(matte[:, 0], 0.5 * (0.2 + 0.6 * np.array([1.0, 0.5, 1.0])), rtol=1e-6)
    shiny = vertex_shading(vc, nc, colors, light, 0.2, 0.6, specular=0.3, shininess=8.0)
    # facing the camera with the light at the camera: r.v = 1, the full highlight; the normal turned away is
    # flipped towards the camera first (either orientation of a vertex normal shades the same)
    np.testing.assert_allclose(shiny[[0, 2]] - matte[[0, 2]], 0.3, rtol=1e-5)
    # tilted 60 deg: r.v = cos 120 deg < 0, no highlight
    np.testing.assert_allclose(shiny[1], matte[1], rtol=1e-6)
    assert vertex_shading(vc, nc, np.ones((3, 3), np.float32), light, 0.5, 0.7, specular=1.0).max() == 1.0


@pytest.mark.parametrize("field, value", [("specular", (0.5, 0.2)), ("specular", (-0.1, 0.3)), ("shadow_prob", 1.5),
                                          ("shadow_strength", (0.2, 1.5)), ("shadow_blur_px", (3.0, 1.0)),
                                          ("shininess", (0.0, 10.0)), ("object_distractors", (-1, 2)),
                                          ("object_distractors", (1.5, 2))])
def test_bad_realism_settings_name_the_field(field, value):
    with pytest.raises(InvalidInputError, match=field):
        small_config(**{field: value})


def test_cast_shadow_darkens_the_background_next_to_the_objects_only():
    from iterpose.data.synth import cast_shadow

    H, W = 60, 80
    on = np.zeros((H, W), bool)
    on[20:40, 30:50] = True
    img = np.full((H, W, 3), 0.8, np.float32)
    cfg = small_config(shadow_prob=1.0, shadow_offset_px=(6.0, 6.0), shadow_blur_px=(1.0, 1.0),
                       shadow_strength=(0.5, 0.5))
    out = cast_shadow(img, on, cfg, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.float32 and (out <= img + 1e-7).all()
    assert out.min() == pytest.approx(0.8 * 0.5, abs=0.02)  # full strength inside the shifted silhouette
    far = np.ones((H, W), bool)
    far[8:52, 18:62] = False  # more than offset + 3 sigma from the silhouette
    assert np.allclose(out[far], 0.8)
    dark = out[..., 0] < 0.79
    assert dark.sum() > 0.8 * on.sum()
    ys, xs = np.nonzero(dark & ~on)
    assert len(ys) > 0  # some of the shadow falls outside the objects, where it stays visible


def test_shadows_reach_the_scenes_and_only_when_asked():
    # no colour jitter, blur or noise: the images differ only by what the shadow does
    plain = dict(objects_per_image=(1, 1), distractors=(0, 0), occluders=(0, 0), background="procedural",
                 gain=(1.0, 1.0), bias=(0.0, 0.0), blur_prob=0.0, noise_std=(0.0, 0.0))
    a = generate_scene(OBJECTS, small_config(**plain), scene_rng(4, 0))
    b = generate_scene(OBJECTS, small_config(**plain, shadow_strength=(0.9, 0.9)), scene_rng(4, 0))
    assert np.array_equal(a.rgb.numpy(), b.rgb.numpy())  # shadow settings unused while shadow_prob is 0
    c = generate_scene(OBJECTS, small_config(**plain, shadow_prob=1.0), scene_rng(4, 0))
    assert np.array_equal(a.T_co.numpy(), c.T_co.numpy())
    on = (a.depth_m > 0).numpy()
    before, after = a.rgb.float().numpy(), c.rgb.float().numpy()
    assert np.array_equal(before[:, on], after[:, on])  # the object itself is untouched
    assert (after[:, ~on] <= before[:, ~on] + 1e-6).all()  # the background only gets darker
    assert (before - after)[:, ~on].sum(0).max() > 0.1  # and visibly so next to the object
