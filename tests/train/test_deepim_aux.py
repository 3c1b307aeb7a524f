"""DeepIM's training-only flow and mask heads: the targets match the geometry, the losses vanish at the targets, the
heads leave the pose outputs alone, their config is checked, a run trains them, and a run with them can start from
weights trained without them."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.mesh import example_object
from iterpose.refiners.deepim import DeepimConfig, build_deepim_model
from iterpose.refiners.deepim.aux_heads import AUX_STRIDE
from iterpose.refiners.deepim.model import zoomed_inputs
from iterpose.refiners.deepim.zoom import projected_boxes
from iterpose.train import task_class
from iterpose.train.config import LossConfig
from iterpose.train.deepim_aux import AuxTargets, aux_losses, aux_targets
from iterpose.train.trainer import read_train_checkpoint, train

from .conftest import tiny_config

DeepimTask = task_class("deepim")
AUX = DeepimConfig(trunk="scratch", crop_size=64, head_width=16, iterations=1, render_cell_rel=0.06, aux_heads=True)
K = torch.tensor([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])
HW = (240, 320)


@pytest.fixture(scope="module")
def model():
    return build_deepim_model({1: example_object()}, AUX, seed=0)


def _pose(tx: float = 0.0, z: float = 0.6) -> torch.Tensor:
    T = torch.eye(4)
    T[:3, :3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # looking at the top
    T[:3, 3] = torch.tensor([tx, 0.0, z])
    return T[None]


def _inputs(model, T_src, T_obs):
    images = torch.zeros(1, 3, *HW)
    Kn = K[None]
    boxes = projected_boxes([model.meshes[1].vertices], T_obs, Kn)
    return zoomed_inputs([model.meshes[1]], images, Kn, T_src, torch.zeros(1, dtype=torch.int64), boxes,
                         AUX.crop_size, AUX.zoom_margin)


def test_flow_of_a_sideways_shift_is_uniform_and_equals_the_projected_shift(model):
    T_src, T_gt = _pose(0.0), _pose(0.004)
    x = _inputs(model, T_src, T_gt)
    x0, y0, x1, y1 = projected_boxes([model.meshes[1].vertices], T_gt, K[None])[0].round().long().tolist()
    box = torch.zeros(1, *HW, dtype=torch.bool)
    box[:, y0:y1, x0:x1] = True  # the object's box at T_gt stands in for its visible mask
    t = aux_targets(x, T_src, T_gt, box)
    # a sideways shift of 4 mm moves a surface point at depth Z by fx_crop * 0.004 / Z crop pixels, and not down
    z = x.X_cam[0, ..., 2][x.rendered_mask[0]]
    fx = float(x.K_crop[0, 0, 0])
    assert t.flow.shape == (1, 2, 16, 16) and t.flow_valid.sum() > 20
    du, dv = t.flow[0, 0][t.flow_valid[0]], t.flow[0, 1][t.flow_valid[0]]
    assert float(du.min()) >= fx * 0.004 / float(z.max()) - 1e-4
    assert float(du.max()) <= fx * 0.004 / float(z.min()) + 1e-4
    assert float(du.max() - du.min()) > 0.01  # nearer cells move more
    assert dv.abs().max() < 1e-3
    # the mask target is the visible mask in the crop: the box fills the crop's middle, not its margin
    assert t.mask[0, 8, 8] == 1.0 and t.mask[0, 0, 0] == 0.0 and t.mask[0, -1, -1] == 0.0


def test_flow_towards_hidden_pixels_has_no_target(model):
    T_src, T_gt = _pose(0.0), _pose(0.004)
    x = _inputs(model, T_src, T_gt)
    vis = torch.ones(1, *HW, dtype=torch.bool)
    vis[..., 160:] = False  # the right half of the image is occluded
    full = aux_targets(x, T_src, T_gt, torch.ones_like(vis))
    part = aux_targets(x, T_src, T_gt, vis)
    assert part.flow_valid.sum() < full.flow_valid.sum()
    assert not (part.flow_valid & ~full.flow_valid).any()
    assert part.mask.sum() < full.mask.sum()


def test_losses_vanish_at_the_targets_and_grow_away_from_them():
    G = 4
    flow = torch.randn(2, 2, G, G)
    mask = torch.rand(2, G, G).round()
    t = AuxTargets(flow=flow, flow_valid=torch.ones(2, G, G, dtype=torch.bool), mask=mask)
    exact = torch.cat([flow, (mask[:, None] * 2 - 1) * 30.0], dim=1)
    fl, ml, epe = aux_losses(exact, t)
    assert float(fl) == 0.0 and float(epe) == 0.0 and float(ml) < 1e-6
    fl2, ml2, epe2 = aux_losses(exact + torch.tensor([2.0, 0.0, -60.0])[None, :, None, None], t)
    assert float(epe2) == pytest.approx(2.0) and float(fl2) == pytest.approx(1.5) and float(ml2) > 1.0
    none = AuxTargets(flow=flow, flow_valid=torch.zeros(2, G, G, dtype=torch.bool), mask=mask)
    assert float(aux_losses(exact, none)[0]) == 0.0


def test_heads_leave_the_pose_outputs_alone(model):
    torch.manual_seed(0)
    S = AUX.crop_size
    obs, ren = torch.rand(3, 3, S, S), torch.rand(3, 3, S, S)
    rm, om = torch.rand(3, S, S) > 0.5, torch.rand(3, S, S) > 0.5
    with torch.no_grad():
        R0, v0 = model.net(obs, ren, rm, om)
        R1, v1, maps = model.net(obs, ren, rm, om, aux=True)
    assert torch.equal(R0, R1) and torch.equal(v0, v1)
    assert maps.shape == (3, 3, S // AUX_STRIDE, S // AUX_STRIDE)
    plain = build_deepim_model({1: example_object()}, dataclasses.replace(AUX, aux_heads=False))
    with pytest.raises(InvalidInputError, match="aux_heads"):
        plain.net(obs, ren, rm, om, aux=True)


@pytest.mark.parametrize("change", [dict(fusion="siamese"), dict(trunk_blocks=7), dict(aux_heads="yes")])
def test_config_errors_name_aux_heads(change):
    with pytest.raises(InvalidInputError, match="aux_heads"):
        dataclasses.replace(AUX, **change)


def _config(steps: int, model_config: DeepimConfig, **changes):
    return tiny_config(steps, method="deepim", model=model_config, **changes)


def test_a_run_trains_the_heads_and_starts_from_weights_without_them(tmp_path, example_objects):
    plain_cfg = dataclasses.replace(AUX, aux_heads=False)
    train(DeepimTask, example_objects, _config(1, plain_cfg), tmp_path / "plain", progress=False)
    run = tmp_path / "aux"
    train(DeepimTask, example_objects, _config(2, AUX, loss=LossConfig(flow_weight=0.05, mask_weight=0.2), seed=6),
          run, progress=False, init_weights=tmp_path / "plain" / "final.pt")
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(ln["flow_loss"] > 0 and ln["mask_loss"] > 0 and "flow_epe_px" in ln for ln in lines)
    weights = read_train_checkpoint(run / "last.pt")["weights"]
    assert any(k.startswith("net.aux.") for k in weights)
    # the pose network started from the file (seed 5), not from its own seed's initialisation (6)
    start = torch.load(tmp_path / "plain" / "final.pt", weights_only=True)["state_dict"]
    fresh = build_deepim_model(example_objects, AUX, seed=6).state_dict()
    key = "net.trunk.features.0.0.weight"
    assert (weights[key] - start[key]).abs().max() < 0.01 < (fresh[key] - start[key]).abs().max()
    # another change of the model config than switching the heads on is still an error
    other = dataclasses.replace(AUX, head_width=8)
    with pytest.raises(InvalidInputError, match="another model config: .*head_width"):
        train(DeepimTask, example_objects, _config(1, other), tmp_path / "other", progress=False,
              init_weights=tmp_path / "plain" / "final.pt")


def test_a_pose_fitted_to_the_exact_flow_is_the_ground_truth(model):
    from iterpose.data.perturb import PerturbConfig, perturb_poses
    from iterpose.refiners.deepim.flow_pose import fit_pose_to_flow

    T_gt = _pose(0.01, 0.55).repeat(3, 1, 1)
    gen = torch.Generator().manual_seed(3)
    T_src = perturb_poses(T_gt, PerturbConfig(rot_std_deg=4.0, trans_std_m=(0.004, 0.004, 0.02)), gen)
    for n in range(3):
        x = _inputs(model, T_src[n:n + 1], T_gt[n:n + 1])
        t = aux_targets(x, T_src[n:n + 1], T_gt[n:n + 1], torch.ones(1, *HW, dtype=torch.bool))
        maps = torch.cat([t.flow, torch.full_like(t.flow[:, :1], 10.0)], dim=1)
        T = fit_pose_to_flow(T_src[n:n + 1], x.X_cam, x.K_crop, x.rendered_mask, maps)
        before = (T_src[n, :3, 3] - T_gt[n, :3, 3]).norm()
        assert (T[0, :3, 3] - T_gt[n, :3, 3]).norm() < 0.05 * before
        # a mask head that sees no object anywhere gives no correspondences: the pose stays
        none = torch.cat([t.flow, torch.full_like(t.flow[:, :1], -10.0)], dim=1)
        assert torch.equal(fit_pose_to_flow(T_src[n:n + 1], x.X_cam, x.K_crop, x.rendered_mask, none),
                           T_src[n:n + 1])
