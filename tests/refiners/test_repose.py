"""RePOSE model: windows, deep-texture renders, the LM step (sign, convergence, gradients), the refiner's accept
test, checkpoints and their errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError
from iterpose.mesh import example_object
from iterpose.refiners import RefineStatus, load_refiner, make_refiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net
from iterpose.refiners.repose.model import ReposeTrace, feature_camera
from iterpose.train.losses import point_matching_error

from .conftest import viewpoint_poses

K_IMG = torch.tensor([[[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]]])
HW = (120, 160)
RGB_CONFIG = ReposeConfig(texture="rgb", feature_channels=3, trunk="scratch", trunk_frozen=False, damping="fixed",
                          fixed_damping=0.01, iterations=8, decoder_width=8)


@pytest.fixture(scope="module")
def obj():
    return example_object()


def _poses(n: int, seed: int, distance: float = 0.6) -> torch.Tensor:
    return viewpoint_poses(n, seed, distance)



def test_feature_camera_maps_feature_pixel_j_to_image_pixel_sj():
    K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 400.0, 240.0], [0.0, 0.0, 1.0]])
    X = torch.tensor([0.1, -0.05, 1.0])
    uv = (K @ X)[:2] / X[2]
    for s in (2, 4):
        uv_f = (feature_camera(K, s) @ X)[:2] / X[2]
        torch.testing.assert_close(uv_f * s, uv)


def test_windows_are_centred_even_and_capped(obj):
    net = build_repose_net({1: obj}, RGB_CONFIG)
    T = _poses(2, 0)
    T[1, 0, 3] += 0.05  # the second object right of the first
    win = net.windows(K_IMG.expand(2, 3, 3), HW, T, [1, 1])
    assert win.side % 2 == 0 and win.side >= 8
    Kf = feature_camera(K_IMG[0], 4)
    for n in range(2):
        t = T[n, :3, 3]
        u = Kf[0, 0] * t[0] / t[2] + Kf[0, 2]
        assert abs(float(win.offsets[n, 0]) + win.side / 2 - float(u)) <= 0.5 + 1e-6
    capped = build_repose_net({1: obj}, dataclasses.replace(RGB_CONFIG, max_window_px=40))
    assert capped.windows(K_IMG.expand(2, 3, 3), HW, T, [1, 1]).side == 10


def test_observed_windows_are_zero_and_invalid_outside_the_feature_map(obj):
    net = build_repose_net({1: obj}, RGB_CONFIG)
    T = _poses(1, 1)
    T[0, 0, 3] = 0.45  # far to the right: the window sticks out of the image
    win = net.windows(K_IMG, HW, T, [1])
    F_img = torch.arange(30 * 40, dtype=torch.float32).view(1, 1, 30, 40) + 1
    F_obs, valid = net.observed_windows(F_img, torch.tensor([0]), win)
    x0, y0 = win.offsets[0].tolist()
    for i in range(win.side):
        for j in range(win.side):
            y, x = y0 + i, x0 + j
            inside = 0 <= y < 30 and 0 <= x < 40
            assert bool(valid[0, i, j]) == inside
            assert float(F_obs[0, 0, i, j]) == (float(F_img[0, 0, y, x]) if inside else 0.0)
    assert not bool(valid.all())


def test_lm_converges_on_features_rendered_at_the_ground_truth(obj):
    """The sign and the Jacobian of the LM step: with the image features equal to the texture rendered at the true
    pose, five steps bring small errors down several-fold (a wrong sign or a mis-scaled Jacobian diverges)."""
    net = build_repose_net({1: obj}, RGB_CONFIG)
    n = 6
    T_gt = _poses(n, 2)
    T0 = perturb_poses(T_gt, PerturbConfig(rot_std_deg=3.0, trans_std_m=(0.004, 0.004, 0.015)),
                       torch.Generator().manual_seed(3))
    ids = [1] * n
    K = K_IMG.expand(n, 3, 3)
    win = net.windows(K, HW, T0, ids)
    F_obs = net.render(ids, T_gt, win).features
    valid = torch.ones(n, win.side, win.side, dtype=torch.bool)
    diam = torch.full((n,), obj.diameter_m)
    pts = obj.vertices[::7][None].expand(n, -1, -1)
    sym = torch.zeros(n, dtype=torch.bool)
    err0 = point_matching_error(T0, T_gt, pts, sym) / diam
    T = T0
    with torch.no_grad():
        for _ in range(5):
            T, _ = net.step(T, F_obs, valid, net.render(ids, T, win), win, diam)
    err = point_matching_error(T, T_gt, pts, sym) / diam
    assert float(err.median()) < 0.35 * float(err0.median())
    assert bool((err < err0).float().mean() >= 5 / 6)


def test_lm_step_is_limited(obj):
    cfg = dataclasses.replace(RGB_CONFIG, max_step_rot_rad=0.01, max_step_trans_rel=0.01)
    net = build_repose_net({1: obj}, cfg)
    T0 = _poses(1, 4)
    win = net.windows(K_IMG, HW, T0, [1])
    F_obs = torch.randn(1, 3, win.side, win.side, generator=torch.Generator().manual_seed(0))
    T1, _ = net.step(T0, F_obs, torch.ones(1, win.side, win.side, dtype=torch.bool), net.render([1], T0, win),
                     win, torch.tensor([obj.diameter_m]))
    assert float((T1[0, :3, 3] - T0[0, :3, 3]).norm()) <= 0.01 * obj.diameter_m * 1.01 + 0.01 * 0.6
    cos = ((T1[0, :3, :3] @ T0[0, :3, :3].T).trace() - 1) / 2
    assert float(torch.arccos(cos.clamp(-1, 1))) <= 0.0101


def test_gradients_reach_the_image_network_the_texture_and_the_damping(obj):
    cfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    net = build_repose_net({1: obj}, cfg)
    T_gt = _poses(2, 5)
    T0 = perturb_poses(T_gt, PerturbConfig(rot_std_deg=5.0), torch.Generator().manual_seed(1))
    images = torch.rand(1, 3, *HW, generator=torch.Generator().manual_seed(2))
    trace = net(images, K_IMG, [1, 1], T0, torch.tensor([0, 0]))
    assert isinstance(trace, ReposeTrace) and len(trace.poses) == 3
    pts = obj.vertices[::11][None].expand(2, -1, -1)
    point_matching_error(trace.poses[-1], T_gt, pts, torch.zeros(2, dtype=torch.bool)).mean().backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    for prefix in ("features.head", "features.trunk.features.0", "texture.latents.1", "texture.mlp.0",
                   "damping.mlp.4"):
        g = [v for k, v in grads.items() if k.startswith(prefix)]
        assert g and all(x is not None for x in g), prefix
        assert sum(float(x.abs().sum()) for x in g) > 0, prefix


def test_frozen_trunk_gets_no_gradient(obj):
    net = build_repose_net({1: obj}, ReposeConfig(trunk="scratch", trunk_frozen=False, iterations=1))
    assert all(p.requires_grad for p in net.features.trunk.parameters())
    frozen = build_repose_net({1: obj}, dataclasses.replace(net.config, trunk="imagenet", trunk_frozen=True))
    assert not any(p.requires_grad for p in frozen.features.trunk.parameters())
    with pytest.raises(InvalidInputError, match="trunk_frozen=false"):
        ReposeConfig(trunk="scratch", trunk_frozen=True)


def test_imagenet_trunk_loads_strictly(obj):
    net = build_repose_net({1: obj}, ReposeConfig())
    from iterpose.refiners.mobilenet import imagenet_trunk_path

    state = torch.load(imagenet_trunk_path(), weights_only=True)
    assert torch.equal(net.features.trunk.features[6].conv[6].weight, state["features.6.conv.6.weight"])


def test_accept_test_keeps_the_initial_pose_when_the_features_get_worse(obj, monkeypatch):
    net = build_repose_net({1: obj}, dataclasses.replace(RGB_CONFIG, iterations=2))
    refiner = ReposeRefiner(net)
    T_gt = _poses(2, 6)
    image = torch.rand(1, 3, *HW)
    moved = T_gt.clone()
    moved[:, 0, 3] += 0.002

    def fake(F_img, image_hw, K, ids, T0, image_index, iterations, windows=None):
        win = net.windows(K[image_index], image_hw, T0, ids)
        return ReposeTrace(poses=[T0, moved, moved], costs=torch.tensor([[1.0, 1.0], [0.7, 1.5], [0.5, 2.0]]),
                           scores=torch.tensor([[0.4, 0.5], [0.6, 0.3], [0.9, 0.2]]), lambdas=torch.zeros(2, 2),
                           windows=win)

    monkeypatch.setattr(net, "refine_features", fake)
    out = refiner.refine(image, K_IMG, torch.tensor([1, 1]), T_gt, torch.tensor([0, 0]))
    assert out.status.tolist() == [int(RefineStatus.OK), int(RefineStatus.KEPT_INITIAL_WORSE)]
    assert torch.equal(out.poses[1], T_gt[1]) and torch.equal(out.poses[0], moved[0])
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.5]))
    off = ReposeRefiner(build_repose_net({1: obj}, dataclasses.replace(RGB_CONFIG, iterations=2, accept_test=False)))
    monkeypatch.setattr(off.net, "refine_features", fake)
    assert off.refine(image, K_IMG, torch.tensor([1, 1]), T_gt, torch.tensor([0, 0])).status.tolist() == [0, 0]


def test_refiner_passes_invalid_poses_through_and_never_returns_nan(obj):
    refiner = ReposeRefiner(build_repose_net({1: obj}, dataclasses.replace(RGB_CONFIG, iterations=2)))
    T = _poses(2, 7)
    T[1, :3, 3] = 0.0  # the BOP "no estimate" placeholder
    out = refiner.refine(torch.rand(1, 3, *HW), K_IMG, torch.tensor([1, 1]), T, torch.tensor([0, 0]))
    assert int(out.status[1]) == int(RefineStatus.INVALID_INIT_ZERO_T) and torch.equal(out.poses[1], T[1])
    assert torch.isfinite(out.poses).all() and out.trace.shape == (3, 2, 4, 4)
    assert out.timings.features_s > 0 and out.timings.render_s > 0


# -- checkpoints ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory, obj):
    cfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    net = build_repose_net({1: obj}, cfg, seed=3)
    path = tmp_path_factory.mktemp("w") / "repose.pt"
    save_checkpoint_atomic(ReposeRefiner(net).checkpoint(object_registry({1: obj})), path)
    return path, net


def test_checkpoint_round_trip_gives_the_same_refinement(weights, obj):
    path, net = weights
    loaded = load_refiner(path, {1: obj})
    assert isinstance(loaded, ReposeRefiner) and loaded.default_iterations == 2
    T = _poses(1, 8)
    image = torch.rand(1, 3, *HW, generator=torch.Generator().manual_seed(0))
    a = ReposeRefiner(net).refine(image, K_IMG, torch.tensor([1]), T, torch.tensor([0]))
    b = loaded.refine(image, K_IMG, torch.tensor([1]), T, torch.tensor([0]))
    assert torch.equal(a.poses, b.poses) and torch.equal(a.scores, b.scores)
    assert make_refiner("repose", {1: obj}, weights=path, iterations=4).default_iterations == 4


def test_registry_mismatch_names_the_objects(weights, obj):
    path, _ = weights
    other = example_object(obj_id=7)
    with pytest.raises(InvalidInputError, match=r"objects \[7\] are not in it"):
        load_refiner(path, {1: obj, 7: other})
    scaled = dataclasses.replace(obj, vertices=obj.vertices * 1.001)
    with pytest.raises(InvalidInputError, match=r"meshes of objects \[1\] differ"):
        load_refiner(path, {1: scaled})


def test_damaged_or_foreign_weights_name_the_file(weights, tmp_path):
    path, _ = weights
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated.pt"):
        load_refiner(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataFormatError, match="garbage.pt"):
        load_refiner(garbage)
    with pytest.raises(MissingFileError, match="nope.pt"):
        load_refiner(tmp_path / "nope.pt")
    ckpt = torch.load(path, weights_only=True)
    for name, change, error, fragment in (
        ("deepim.pt", lambda c: c.update(method="deepim"), InvalidInputError, "'deepim' model, but method 'repose'"),
        ("newer.pt", lambda c: c.update(format_version=99), DataFormatError, "format_version 99"),
        ("keys.pt", lambda c: c["state_dict"].pop("texture.mlp.0.weight"), DataFormatError, "does not fit"),
        ("shape.pt", lambda c: c["state_dict"].update({"features.head.bias": torch.zeros(9)}), DataFormatError,
         "does not fit"),
        ("nomesh.pt", lambda c: c.pop("meshes"), DataFormatError, "missing"),
    ):
        bad = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ckpt.items()}
        change(bad)
        torch.save(bad, tmp_path / name)
        with pytest.raises(error, match=fragment) as exc:
            load_refiner(tmp_path / name, method="repose")
        assert name in str(exc.value)


def test_region_features_match_the_whole_image_inside_the_windows(obj):
    """The image network run on the box around the windows gives the whole image's features there (up to the
    effect of the box's edge, which the margin keeps away from the windows)."""
    cfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=1,
                       feature_crop_margin_px=48)
    net = build_repose_net({1: obj}, cfg).eval()
    images = torch.rand(2, 3, 240, 320, generator=torch.Generator().manual_seed(0))
    K = torch.tensor([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    T = _poses(3, 9, distance=1.0)
    T[0, 0, 3] -= 0.2
    image_index = torch.tensor([0, 0, 1])
    win = net.windows(K[image_index], (240, 320), T, [1, 1, 1])
    with torch.no_grad():
        full = net.features(images)
        region = net.region_features(images, win, image_index)
        whole = build_repose_net({1: obj}, dataclasses.replace(cfg, feature_crop_margin_px=-1))
        whole.load_state_dict(net.state_dict())
        assert torch.equal(whole.region_features(images, win, image_index), full)
    a, _ = net.observed_windows(full, image_index, win)
    b, valid = net.observed_windows(region, image_index, win)
    diff = (a - b).abs().amax(dim=1)[valid]
    assert float(diff.max()) < 1e-3 * float(a.abs().max())
    assert float(region[1].abs().sum()) > 0 and float(region[1, :, :, :2].abs().sum()) == 0  # only near object 3


def test_select_best_iterate_returns_the_lowest_cost_pose(obj, monkeypatch):
    net = build_repose_net({1: obj}, dataclasses.replace(RGB_CONFIG, iterations=2, select_best_iterate=True))
    T0 = _poses(1, 6)
    middle, last = T0.clone(), T0.clone()
    middle[:, 0, 3] += 0.001
    last[:, 0, 3] += 0.003

    def fake(F_img, image_hw, K, ids, T_init, image_index, iterations, windows=None):
        return ReposeTrace(poses=[T_init, middle, last], costs=torch.tensor([[1.0], [0.4], [0.9]]),
                           scores=torch.tensor([[0.5], [0.8], [0.6]]), lambdas=torch.zeros(2, 1), windows=windows)

    monkeypatch.setattr(net, "refine_features", fake)
    out = ReposeRefiner(net).refine(torch.rand(1, 3, *HW), K_IMG, torch.tensor([1]), T0, torch.tensor([0]))
    assert torch.equal(out.poses[0], middle[0]) and float(out.scores[0]) == pytest.approx(0.8)
    assert torch.equal(out.trace[-1, 0], last[0])  # the trace keeps every iterate
