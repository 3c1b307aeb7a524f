"""DeepIM model: the zoom-in, the disentangled update and its target, the identity start, crops that line up with
the image, the refiner's guarantees, checkpoints and their errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.errors import DataFormatError, InvalidInputError
from iterpose.geometry import rotation_angle
from iterpose.mesh import example_object
from iterpose.refiners import RefineStatus, load_refiner, make_refiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.crops import crop_intrinsics, sample_crops
from iterpose.refiners.deepim import (DeepimConfig, DeepimModel, DeepimRefiner, apply_update, build_deepim_model,
                                      update_target)
from iterpose.refiners.deepim.network import rotation_from_6d
from iterpose.refiners.deepim.zoom import box_masks, projected_boxes, zoom_boxes
from iterpose.refiners.proxy_mesh import render_proxies
from iterpose.render import render_objects

from .conftest import viewpoint_poses

K_IMG = torch.tensor([[[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]]])
HW = (240, 320)
SMALL = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2)


@pytest.fixture(scope="module")
def obj():
    return example_object()


def _poses(n: int, seed: int) -> torch.Tensor:
    return viewpoint_poses(n, seed, 0.7)


def test_update_target_is_the_inverse_of_apply_update():
    T_src = _poses(5, 0)
    T_tgt = perturb_poses(T_src, PerturbConfig(rot_std_deg=20.0, trans_std_m=(0.02, 0.02, 0.1)),
                          torch.Generator().manual_seed(1))
    K = torch.tensor([[550.0, 3.0, 300.0], [0.0, 560.0, 250.0], [0.0, 0.0, 1.0]]).expand(5, 3, 3)  # with skew
    boxes = torch.tensor([[100.0, 80.0, 150.0, 150.0]]).repeat(5, 1) * torch.linspace(0.5, 1.5, 5)[:, None]
    R, v = update_target(T_src.double(), T_tgt.double(), K.double(), boxes.double())
    torch.testing.assert_close(apply_update(T_src.double(), R, v, K.double(), boxes.double()), T_tgt.double())


def test_translation_update_is_relative_to_the_crop():
    """vx = 0.1 moves the projected centre by a tenth of the crop's width, whatever the crop size; vz changes the
    depth by exp(-vz) along the centre's ray."""
    T = _poses(1, 3).double()
    K = K_IMG.double()
    I = torch.eye(3, dtype=torch.float64)[None]
    for side in (50.0, 200.0):
        box = torch.tensor([[10.0, 10.0, side, side]], dtype=torch.float64)
        T_new = apply_update(T, I, torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64), K, box)

        def uv(T_):
            t = T_[0, :3, 3]
            return torch.stack([K[0, 0, 0] * t[0] / t[2] + K[0, 0, 2], K[0, 1, 1] * t[1] / t[2] + K[0, 1, 2]])

        torch.testing.assert_close(uv(T_new) - uv(T), torch.tensor([0.1 * side, -0.2 * side], dtype=torch.float64))
        torch.testing.assert_close(T_new[0, 2, 3], T[0, 2, 3] * torch.exp(torch.tensor(-0.3, dtype=torch.float64)))
        torch.testing.assert_close(T_new[:, :3, :3], T[:, :3, :3])


def test_rotation_from_6d_gives_rotations_and_identity():
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    R = rotation_from_6d(x)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(10, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.det(R), torch.ones(10), atol=1e-5)
    torch.testing.assert_close(rotation_from_6d(torch.tensor([[2.0, 0, 0, 0.3, 5.0, 0]])), torch.eye(3)[None])


def test_zoom_box_is_centred_and_covers_both_boxes():
    K = K_IMG.expand(2, 3, 3)
    T = _poses(2, 1)
    ren = torch.tensor([[100.0, 90.0, 140.0, 150.0], [150.0, 100.0, 170.0, 110.0]])
    obs = torch.tensor([[110.0, 100.0, 130.0, 120.0], [60.0, 100.0, 170.0, 110.0]])
    boxes = zoom_boxes(K, T, ren, obs, 1.4)
    t = T[:, :3, 3]
    uc = K[:, 0, 0] * t[:, 0] / t[:, 2] + K[:, 0, 2]
    vc = K[:, 1, 1] * t[:, 1] / t[:, 2] + K[:, 1, 2]
    torch.testing.assert_close(boxes[:, 0] - 0.5 + boxes[:, 2] / 2, uc)
    torch.testing.assert_close(boxes[:, 1] - 0.5 + boxes[:, 3] / 2, vc)
    assert torch.equal(boxes[:, 2], boxes[:, 3])
    lo_u, hi_u = boxes[:, 0] - 0.5, boxes[:, 0] - 0.5 + boxes[:, 2]
    lo_v, hi_v = boxes[:, 1] - 0.5, boxes[:, 1] - 0.5 + boxes[:, 3]
    for b in (ren, obs):
        assert bool((lo_u <= b[:, 0]).all() and (hi_u >= b[:, 2]).all() and (lo_v <= b[:, 1]).all()
                    and (hi_v >= b[:, 3]).all())
    # the margin: the farthest extent (object 1: the observed box's left edge) sits at 1 / 1.4 of the half side
    torch.testing.assert_close((uc[1] - obs[1, 0]) * 1.4, boxes[1, 2] / 2)


def test_projected_box_bounds_the_rendered_silhouette(obj):
    T = _poses(3, 2)
    K = K_IMG.expand(3, 3, 3)
    boxes = projected_boxes([obj.vertices] * 3, T, K)
    r = render_objects([obj] * 3, T, K, *HW)
    for n in range(3):
        vs, us = r.mask[n].nonzero(as_tuple=True)
        assert us.min() >= boxes[n, 0] - 1 and us.max() <= boxes[n, 2] + 1
        assert vs.min() >= boxes[n, 1] - 1 and vs.max() <= boxes[n, 3] + 1
        assert us.min() <= boxes[n, 0] + 2 and vs.max() >= boxes[n, 3] - 2  # tight, not just large


def test_rendered_crop_lines_up_with_the_zoomed_image(obj):
    """The object rendered into the crop with K_crop covers the same pixels as the full-image render sampled into
    the crop: render and observation share one pixel grid."""
    T = _poses(2, 4)
    K = K_IMG.expand(2, 3, 3)
    model = build_deepim_model({1: obj}, SMALL)
    mesh = model.meshes[1]
    full = render_objects([obj] * 2, T, K, *HW).mask.float()
    xyxy = projected_boxes([mesh.vertices] * 2, T, K)
    boxes = zoom_boxes(K, T, xyxy, xyxy, 1.4)
    S = 64
    sampled, _ = sample_crops(full[:, None], torch.arange(2), boxes, S)
    crop = render_proxies([mesh] * 2, T, crop_intrinsics(K, boxes, S), S).mask.float()
    iou = (crop * (sampled[:, 0] > 0.5)).sum((1, 2)) / ((crop + (sampled[:, 0] > 0.5).float()) > 0).sum((1, 2))
    assert bool((iou > 0.85).all()), iou
    inside = box_masks(xyxy, boxes, S)
    assert bool((inside | ~crop.bool()).all())  # the silhouette lies in its own projected box


def test_untrained_network_starts_near_the_identity_update(obj):
    model = build_deepim_model({1: obj}, SMALL)
    T = _poses(2, 5)
    with torch.no_grad():
        poses = model.refine(torch.rand(1, 3, *HW), K_IMG.expand(2, 3, 3), [1, 1], T, torch.zeros(2, dtype=torch.long),
                             2)
    assert len(poses) == 3
    angle = rotation_angle(poses[-1][:, :3, :3] @ T[:, :3, :3].transpose(1, 2))
    assert float(angle.max()) < 0.05  # identity bias, weights x 0.01
    moved = (poses[-1][:, :3, 3] - T[:, :3, 3]).norm(dim=1)
    assert float(moved.max()) < 0.02 * obj.diameter_m  # zero bias, weights x 0.01
    with torch.no_grad():
        model.net.translation.weight.zero_()
        model.net.rotation.weight.zero_()
        still = model.refine(torch.rand(1, 3, *HW), K_IMG.expand(2, 3, 3), [1, 1], T,
                             torch.zeros(2, dtype=torch.long), 2)
    torch.testing.assert_close(still[-1], T)  # the biases alone are exactly the identity update


def test_imagenet_encoder_copies_rgb_kernels_and_zeroes_the_masks(obj):
    from iterpose.refiners.mobilenet import imagenet_trunk_path

    model = build_deepim_model({1: obj}, dataclasses.replace(SMALL, trunk="imagenet"))
    state = torch.load(imagenet_trunk_path(), weights_only=True)
    w = model.net.trunk.features[0][0].weight
    assert w.shape[1] == 8
    assert torch.equal(w[:, :3], state["features.0.0.weight"]) and torch.equal(w[:, 3:6], -state["features.0.0.weight"])
    assert not w[:, 6:].any()
    assert torch.equal(model.net.trunk.features[4].conv[6].weight, state["features.4.conv.6.weight"])


def _checkpoint(obj, path, config=SMALL):
    model = build_deepim_model({1: obj}, config)
    save_checkpoint_atomic(DeepimRefiner(model).checkpoint(object_registry({1: obj})), path)
    return model


def test_checkpoint_round_trip_and_refiner_guarantees(obj, tmp_path):
    path = tmp_path / "d.pt"
    model = _checkpoint(obj, path)
    with torch.no_grad():  # a translation head that pushes everything away: the refiner must flag it
        model.net.translation.bias.copy_(torch.tensor([0.0, 0.0, -3.0]))
    refiner = load_refiner(path, {1: obj})
    assert isinstance(refiner, DeepimRefiner) and refiner.default_iterations == 2
    for a, b in zip(refiner.net.state_dict().values(), build_deepim_model({1: obj}, SMALL).state_dict().values()):
        assert torch.equal(a, b)
    T = _poses(2, 6)
    out = refiner.refine(torch.rand(1, 3, *HW), K_IMG, torch.tensor([1, 1]), T, torch.tensor([0, 0]))
    assert out.trace.shape == (3, 2, 4, 4) and bool((out.scores >= 0).all() and (out.scores <= 1).all())
    assert [RefineStatus(int(s)) for s in out.status] == [RefineStatus.OK] * 2
    pushed = DeepimRefiner(model)
    out = pushed.refine(torch.rand(1, 3, *HW), K_IMG, torch.tensor([1, 1]), T, torch.tensor([0, 0]))
    assert [RefineStatus(int(s)) for s in out.status] == [RefineStatus.DIVERGED] * 2  # depth x e^6: > 1 diameter
    assert torch.equal(out.poses, T) and not out.scores.any()


def test_make_refiner_and_method_mismatch(obj, tmp_path):
    path = tmp_path / "d.pt"
    _checkpoint(obj, path)
    assert isinstance(make_refiner("deepim", {1: obj}, weights=path, iterations=3), DeepimRefiner)
    with pytest.raises(InvalidInputError, match="holds a 'deepim' model, but method 'repose'"):
        make_refiner("repose", {1: obj}, weights=path)
    with pytest.raises(InvalidInputError, match=r"objects \[2\] are not in it"):
        load_refiner(path, {1: obj, 2: obj})


def test_damaged_checkpoints_are_one_error_naming_the_file(obj, tmp_path):
    path = tmp_path / "d.pt"
    _checkpoint(obj, path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["crop_size"] = 96  # the head's input size no longer matches the weights
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    with pytest.raises(DataFormatError, match="bad.pt does not fit its own DeepIM config"):
        load_refiner(bad)
    ckpt["config"]["crop_size"] = 100
    torch.save(ckpt, bad)
    with pytest.raises(DataFormatError, match=r"bad.pt: its deepim config is not valid here .*multiple of 32"):
        load_refiner(bad)
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFormatError, match="trunc.pt"):
        load_refiner(truncated)


def test_config_errors_name_the_setting():
    with pytest.raises(InvalidInputError, match="DeepimConfig.crop_size"):
        DeepimConfig(crop_size=100)
    with pytest.raises(InvalidInputError, match="DeepimConfig.trunk:"):
        DeepimConfig(trunk="flownet")
    with pytest.raises(InvalidInputError, match="DeepimConfig.zoom_margin"):
        DeepimConfig(zoom_margin=0.5)
    with pytest.raises(InvalidInputError, match="DeepimConfig.trunk_blocks"):
        DeepimConfig(trunk_blocks=15)


def test_model_is_a_module_with_the_meshes(obj):
    model = DeepimModel(build_deepim_model({1: obj}, SMALL).meshes, SMALL)
    assert list(model.meshes) == [1] and sum(p.numel() for p in model.parameters()) > 0


def test_siamese_fusion_runs_the_rgb_encoder_on_each_crop(obj):
    model = build_deepim_model({1: obj}, dataclasses.replace(SMALL, fusion="siamese", trunk="imagenet"))
    from iterpose.refiners.mobilenet import imagenet_trunk_path

    state = torch.load(imagenet_trunk_path(), weights_only=True)
    assert torch.equal(model.net.trunk.features[0][0].weight, state["features.0.0.weight"])  # 3 channels, as is
    obs, ren = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    masks = torch.ones(2, 64, 64, dtype=torch.bool)
    with torch.no_grad():
        R, v = model.net(obs, ren, masks, masks)
        R_swapped, _ = model.net(ren, obs, masks, masks)
    assert R.shape == (2, 3, 3) and v.shape == (2, 3)
    assert not torch.allclose(R, R_swapped)  # the order of the pair matters (their difference is an input)


def test_focus_keeps_the_observed_crop_near_the_silhouette_and_fades_it_beyond():
    from iterpose.refiners.deepim.network import focus_observed

    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    mask[0, 24:40, 24:40] = True
    w = focus_observed(torch.ones(1, 3, 64, 64), mask, 4)[0, 0]
    row = w[32]
    assert torch.equal(w[20:44, 20:44], torch.ones(24, 24))  # the silhouette and a band of 4 px: unchanged
    assert float(row[:8].max()) == 0.0 and float(row[56:].max()) == 0.0  # far away: the mean colour (0)
    assert bool((row[:33].diff() >= 0).all()) and 0 < float(row[16]) < 1  # a ramp between the two
    with pytest.raises(InvalidInputError, match="DeepimConfig.focus_px"):
        DeepimConfig(focus_px=-1)


def test_with_focus_the_network_ignores_what_is_far_from_the_estimate(obj):
    torch.manual_seed(0)
    obs, ren = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    rmask = torch.zeros(1, 64, 64, dtype=torch.bool)
    rmask[0, 24:40, 24:40] = True
    omask = torch.ones(1, 64, 64, dtype=torch.bool)
    far = obs.clone()
    far[..., :, :4] = torch.rand(1, 3, 64, 4)  # other pixels 20 px or more from the silhouette (3 x 6 px: faded)
    for focus, same in ((6, True), (0, False)):
        model = build_deepim_model({1: obj}, dataclasses.replace(SMALL, focus_px=focus))
        with torch.no_grad():
            a, b = model.net(obs, ren, rmask, omask)[1], model.net(far, ren, rmask, omask)[1]
        assert torch.equal(a, b) is same
