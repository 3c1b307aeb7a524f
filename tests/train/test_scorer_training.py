"""The pose scorer on the generic trainer: hard negatives, candidates, a loss that reaches the whole network, the
weights file, starting from a DeepIM's encoder (--init-weights), export and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from iterpose.cli.main import main
from iterpose.errors import InvalidInputError
from iterpose.geometry import look_at_T_co
from iterpose.geometry.rotations import axis_angle_to_matrix, rotation_angle
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.crops import crop_intrinsics, sphere_crop_boxes
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
from iterpose.refiners.proxy_mesh import render_proxies
from iterpose.refiners.scorer import PoseScorer, ScorerConfig, load_scorer
from iterpose.train import task_class
from iterpose.train.config import config_to_dict
from iterpose.train.losses import point_matching_error
from iterpose.train.scorer_task import CANDIDATES, ScorerTask, mine_hard_negatives
from iterpose.train.trainer import _load_init_weights, export_weights, read_train_checkpoint, train

from .conftest import tiny_config

TINY_SCORER = ScorerConfig(crop_size=64, trunk="scratch", trunk_blocks=5, head_width=16, render_cell_rel=0.06)
TINY_DEEPIM = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2,
                           render_cell_rel=0.06)
EXAMPLE_DEEPIM = Path(__file__).resolve().parents[2] / "weights" / "example-deepim.pt"
ENCODER = ("net.trunk.", "net.reduce.", "net.fc.")


def _config(steps: int = 2, **changes):
    return tiny_config(steps, **{"method": "scorer", "model": TINY_SCORER, **changes})


def _deepim_file(objects, path: Path, config: DeepimConfig = TINY_DEEPIM, seed: int = 123) -> dict:
    """A DeepIM weights file (seeded unlike the scorer, so its encoder differs from a fresh scorer's)."""
    ckpt = DeepimRefiner(build_deepim_model(objects, config, seed=seed)).checkpoint(object_registry(objects))
    save_checkpoint_atomic(ckpt, path)
    return ckpt


# --- candidates ------------------------------------------------------------------------------------------------------

def _views(n: int, seed: int, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    T = []
    for _ in range(n):
        d = F.normalize(torch.randn(3, generator=g), dim=0)
        up = torch.tensor([0.0, 0.0, 1.0]) if abs(float(d[2])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        T.append(look_at_T_co(d * 0.45, torch.zeros(3), up))
    return torch.stack(T), K.expand(n, 3, 3).clone()


def _iou(proxies, T_gt, K, poses):
    """Silhouette IoU of ``poses [N, C, 4, 4]`` with ``T_gt [N, 4, 4]`` in mine_hard_negatives's 32 px crops."""
    N, C = poses.shape[:2]
    radius = torch.tensor([p.diameter_m / 2 for p in proxies])
    K_crop = crop_intrinsics(K, sphere_crop_boxes(K, T_gt, radius, 1.2), 32)
    gt = render_proxies(proxies, T_gt, K_crop, 32, with_albedo=False).mask
    many = render_proxies([p for p in proxies for _ in range(C)], poses.reshape(-1, 4, 4),
                          K_crop.repeat_interleave(C, 0), 32, with_albedo=False).mask.view(N, C, 32, 32)
    return ((many & gt[:, None]).flatten(2).sum(2) / (many | gt[:, None]).flatten(2).sum(2).clamp_min(1)).float()


def test_hard_negatives_are_turned_20_to_90_degrees_and_overlap_the_truth_most(example_objects):
    proxy = ScorerTask(example_objects, _config()).build_model().meshes[1]
    K = torch.tensor([[150.0, 0.0, 64.0], [0.0, 150.0, 48.0], [0.0, 0.0, 1.0]])
    N, C = 12, 8
    T_gt, Ks = _views(N, 0, K)
    proxies = [proxy] * N
    hard = mine_hard_negatives(proxies, T_gt, Ks, C, torch.Generator().manual_seed(7))
    assert hard.shape == (N, 4, 4)
    assert torch.equal(hard, mine_hard_negatives(proxies, T_gt, Ks, C, torch.Generator().manual_seed(7)))
    assert torch.equal(hard[:, :3, 3], T_gt[:, :3, 3]) and torch.equal(hard[:, 3], T_gt[:, 3])
    deg = torch.rad2deg(rotation_angle(hard[:, :3, :3] @ T_gt[:, :3, :3].transpose(1, 2)))
    assert bool(((deg > 20.0 - 1e-3) & (deg < 90.0 + 1e-3)).all()), deg
    # the candidates it chose from (its draws, repeated): the chosen one is one of them, with the highest IoU
    g = torch.Generator().manual_seed(7)
    axes = F.normalize(torch.randn(N, C, 3, generator=g, dtype=torch.float64), dim=2)
    angles = torch.empty(N, C, 1, dtype=torch.float64).uniform_(math.radians(20), math.radians(90), generator=g)
    cand = T_gt[:, None].repeat(1, C, 1, 1)
    cand[..., :3, :3] = axis_angle_to_matrix(axes * angles).float() @ cand[..., :3, :3]
    iou = _iou(proxies, T_gt, Ks, cand)
    which = (cand - hard[:, None]).abs().flatten(2).amax(2).argmin(1)
    assert torch.allclose(cand[torch.arange(N), which], hard, atol=1e-6)
    chosen = iou[torch.arange(N), which]
    assert bool((chosen >= iou.amax(1) - 1e-6).all())
    assert bool((chosen >= iou[:, 0]).all()) and float(chosen.mean()) > float(iou.mean())
    # on other draws too: mined negatives overlap the truth more than single random turns do
    random = mine_hard_negatives(proxies, T_gt, Ks, 1, torch.Generator().manual_seed(8))
    assert float(_iou(proxies, T_gt, Ks, hard[:, None]).mean()) > float(_iou(proxies, T_gt, Ks, random[:, None]).mean())


def test_candidates_are_the_initial_pose_near_truths_and_a_hard_negative(example_objects):
    task = ScorerTask(example_objects, _config())
    model = task.build_model()
    batch = task.make_batch(0, 0)
    cands, err = task.candidates(model, batch, 0, 0)
    N = len(batch.object_ids)
    assert cands.shape == (N, CANDIDATES, 4, 4) and err.shape == (N, CANDIDATES)
    points, diameter, symmetric = task.pose_targets(batch, 0, 0)
    expected = point_matching_error(cands.reshape(-1, 4, 4), batch.T_gt.float().repeat_interleave(CANDIDATES, 0),
                                    points.repeat_interleave(CANDIDATES, 0), symmetric.repeat_interleave(CANDIDATES, 0))
    assert torch.allclose(err.reshape(-1), expected / diameter.repeat_interleave(CANDIDATES), rtol=1e-5, atol=1e-7)
    assert bool((err[:, 3] > 0.1).all()), err  # the mined negative is wrong by the metric (small noise added after)
    assert torch.equal(cands[:, 0], batch.T_init.float())
    T_gt = batch.T_gt.float()
    deg = torch.rad2deg(rotation_angle(cands[..., :3, :3] @ T_gt[:, None, :3, :3].transpose(-1, -2)))
    assert bool((deg[:, 1] < 8).all()) and bool((deg[:, 2] < 25).all()), deg
    assert bool(((deg[:, 3] > 8) & (deg[:, 3] < 70)).all()), deg
    # a pure function of (seed, step, rank)
    assert torch.equal(cands, task.candidates(model, batch, 0, 0)[0])
    assert not torch.equal(cands[:, 1:], task.candidates(model, batch, 1, 0)[0][:, 1:])


def test_loss_is_finite_and_reaches_the_encoder_and_the_error_head(example_objects):
    task = ScorerTask(example_objects, _config())
    model = task.build_model().train()
    loss, stats = task.loss(model, task.make_batch(0, 0), 0, 0, False)
    assert loss.ndim == 0 and bool(torch.isfinite(loss)) and loss.requires_grad
    assert stats["loss"] == pytest.approx(stats["regression"] + stats["ranking"], rel=1e-5)
    for key in ("pair_accuracy", "threshold_accuracy", "positive_rate"):
        assert 0.0 <= stats[key] <= 1.0, key
    assert stats["objects"] == len(task.make_batch(0, 0).object_ids)
    loss.backward()
    grads = {k: p.grad for k, p in model.named_parameters()}
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads.values())
    for prefix in ("net.trunk.features.0.", "net.reduce.", "net.fc.", "net.error."):
        assert any(k.startswith(prefix) and float(g.abs().sum()) > 0 for k, g in grads.items()), prefix


# --- training runs ---------------------------------------------------------------------------------------------------

def test_training_writes_a_scorer_weights_file(tmp_path, example_objects):
    run = tmp_path / "run"
    result = train(ScorerTask, example_objects, _config(2), run, progress=False)
    assert result.steps == 2
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2] and all(ln["loss"] > 0 and "pair_accuracy" in ln for ln in lines)
    assert yaml.safe_load((run / "config.yaml").read_text())["method"] == "scorer"
    scorer = load_scorer(run / "final.pt", example_objects)
    assert isinstance(scorer, PoseScorer) and scorer.config == TINY_SCORER
    weights = read_train_checkpoint(run / "last.pt")["weights"]
    for k, v in scorer.net.state_dict().items():
        assert torch.equal(v, weights[k]), k
    fresh = ScorerTask(example_objects, _config(2)).build_model().state_dict()
    changed = [k for k in fresh if not torch.equal(fresh[k], weights[k])]
    assert any(k.startswith("net.error") for k in changed) and any(k.startswith("net.trunk") for k in changed)
    # export of the run's last.pt: the same weights; --iterations makes no sense for a scorer
    out = tmp_path / "exported.pt"
    assert export_weights(ScorerTask, example_objects, run, out) == 2
    for k, v in load_scorer(out, example_objects).net.state_dict().items():
        assert torch.equal(v, weights[k]), k
    with pytest.raises(InvalidInputError, match="does not iterate"):
        export_weights(ScorerTask, example_objects, run, tmp_path / "x.pt", iterations=3)
    assert not (tmp_path / "x.pt").exists()


def test_init_weights_from_a_deepim_copy_its_encoder_only(tmp_path, example_objects):
    deepim = tmp_path / "deepim.pt"
    ckpt = _deepim_file(example_objects, deepim)
    config = _config(1)
    task = ScorerTask(example_objects, config)
    fresh = task.build_model().state_dict()
    model = task.build_model()
    _load_init_weights(model, deepim, config, task)
    state = model.state_dict()
    enc = [k for k in state if k.startswith(ENCODER)]
    assert enc and sorted(enc) == sorted(k for k in ckpt["state_dict"] if k.startswith(ENCODER))
    for k in enc:
        assert torch.equal(state[k], ckpt["state_dict"][k]), k
    k = "net.trunk.features.0.0.weight"
    assert k in enc and not torch.equal(fresh[k], state[k])
    for k in ("net.error.weight", "net.error.bias"):
        assert torch.equal(state[k], fresh[k]), k  # the error head stays fresh
    # the whole run: train() starts from it (one step later the encoder is still close to the DeepIM's)
    run = tmp_path / "run"
    train(ScorerTask, example_objects, config, run, progress=False, init_weights=deepim)
    after = read_train_checkpoint(run / "last.pt")["weights"]
    k = "net.fc.0.weight"
    assert (after[k] - ckpt["state_dict"][k]).abs().max() < (fresh[k] - ckpt["state_dict"][k]).abs().max()
    assert isinstance(load_scorer(run / "final.pt", example_objects), PoseScorer)


@pytest.mark.parametrize("change, key", [({"crop_size": 32}, "crop_size"), ({"head_width": 8}, "head_width"),
                                         ({"trunk_blocks": 4}, "trunk_blocks"), ({"fusion": "siamese"}, "fusion")])
def test_init_weights_from_a_deepim_with_another_encoder_is_an_error(tmp_path, example_objects, change, key):
    deepim = tmp_path / "deepim.pt"
    _deepim_file(example_objects, deepim, dataclasses.replace(TINY_DEEPIM, **change))
    with pytest.raises(InvalidInputError, match=f"DeepIM {key}"):
        train(ScorerTask, example_objects, _config(1), tmp_path / "run", progress=False, init_weights=deepim)
    assert not (tmp_path / "run" / "final.pt").exists()


def test_init_weights_of_other_kinds(tmp_path, example_objects):
    # a scorer starts from a scorer with the same config, strictly; not from one with another config
    first = tmp_path / "first.pt"
    seeded = ScorerTask(example_objects, _config(1, seed=9))
    save_checkpoint_atomic(seeded.export(seeded.build_model()), first)
    config = _config(1)
    task = ScorerTask(example_objects, config)
    model = task.build_model()
    assert not torch.equal(model.state_dict()["net.error.weight"], load_scorer(first).net.state_dict()[
        "net.error.weight"])
    _load_init_weights(model, first, config, task)
    for k, v in load_scorer(first).net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    other = _config(1, model=dataclasses.replace(TINY_SCORER, head_width=8))
    with pytest.raises(InvalidInputError, match="another model config: .*head_width"):
        _load_init_weights(ScorerTask(example_objects, other).build_model(), first, other,
                           ScorerTask(example_objects, other))
    # a RePOSE file is neither
    from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net

    repose = tmp_path / "repose.pt"
    rcfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    save_checkpoint_atomic(ReposeRefiner(build_repose_net(example_objects, rcfg)).checkpoint(
        object_registry(example_objects)), repose)
    with pytest.raises(InvalidInputError, match="'repose' model; a scorer starts from"):
        _load_init_weights(task.build_model(), repose, config, task)
    # and a DeepIM run cannot start from a scorer
    DeepimTask = task_class("deepim")
    dconf = tiny_config(1, method="deepim", model=TINY_DEEPIM)
    with pytest.raises(InvalidInputError, match="holds a 'scorer' model, not 'deepim'"):
        _load_init_weights(DeepimTask(example_objects, dconf).build_model(), first, dconf,
                           DeepimTask(example_objects, dconf))


@pytest.mark.skipif(not EXAMPLE_DEEPIM.is_file(), reason="weights/example-deepim.pt not present")
def test_init_weights_from_the_shipped_example_deepim(example_objects):
    """The documented start (`--init-weights weights/example-deepim.pt`): a default-sized scorer takes its encoder."""
    config = _config(1, model=ScorerConfig(trunk="scratch"))
    task = ScorerTask(example_objects, config)
    model = task.build_model()
    _load_init_weights(model, EXAMPLE_DEEPIM, config, task)
    ckpt = torch.load(EXAMPLE_DEEPIM, map_location="cpu", weights_only=True)
    state = model.state_dict()
    for k in ("net.trunk.features.0.0.weight", "net.reduce.0.weight", "net.fc.2.weight"):
        assert torch.equal(state[k], ckpt["state_dict"][k]), k


def test_resume_reaches_bit_identical_weights(tmp_path, example_objects):
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(ScorerTask, example_objects, _config(3), straight, progress=False)
    train(ScorerTask, example_objects, _config(2), split, progress=False)
    train(ScorerTask, example_objects, _config(3), split, resume=True, progress=False)
    a = read_train_checkpoint(straight / "last.pt")["weights"]
    b = read_train_checkpoint(split / "last.pt")["weights"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cli_train_export_and_init_weights(tmp_path, capsys, example_objects):
    assert task_class("scorer") is ScorerTask
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config_to_dict(_config(1))))
    deepim = tmp_path / "deepim.pt"
    _deepim_file(example_objects, deepim)
    run = tmp_path / "run"
    assert main(["train", "--method", "scorer", "--objects", "example", "--out", str(run), "--config", str(cfg),
                 "--init-weights", str(deepim), "--no-progress", "--threads", "1"]) == 0
    assert "trained scorer to step 1" in capsys.readouterr().out
    assert isinstance(load_scorer(run / "final.pt", example_objects), PoseScorer)
    out = tmp_path / "w.pt"
    assert main(["train", "--method", "scorer", "--objects", "example", "--out", str(run), "--export", str(out)]) == 0
    assert isinstance(load_scorer(out), PoseScorer)
    capsys.readouterr()
    assert main(["train", "--method", "scorer", "--objects", "example", "--out", str(run), "--export",
                 str(tmp_path / "w2.pt"), "--iterations", "3"]) == 2
    assert "does not iterate" in capsys.readouterr().err and not (tmp_path / "w2.pt").exists()
    assert main(["train", "--method", "deepim", "--objects", "example", "--out", str(run), "--export",
                 str(tmp_path / "w3.pt")]) == 2
    assert "is a 'scorer' run, not 'deepim'" in capsys.readouterr().err


def test_hard_negatives_are_wrong_when_an_error_function_is_given(example_objects):
    proxy = ScorerTask(example_objects, _config()).build_model().meshes[1]
    K = torch.tensor([[150.0, 0.0, 64.0], [0.0, 150.0, 48.0], [0.0, 0.0, 1.0]])
    N, C = 12, 8
    T_gt, Ks = _views(N, 0, K)
    points = example_objects[1].vertices.float()[::7]

    def error_rel(poses):  # ADD in diameters, [N, C]
        est = points @ poses[..., :3, :3].transpose(-1, -2) + poses[..., None, :3, 3]
        gt = points @ T_gt[:, None, :3, :3].transpose(-1, -2) + T_gt[:, None, None, :3, 3]
        return (est - gt).norm(dim=-1).mean(-1) / example_objects[1].diameter_m

    unfiltered = mine_hard_negatives([proxy] * N, T_gt, Ks, C, torch.Generator().manual_seed(3))
    hard = mine_hard_negatives([proxy] * N, T_gt, Ks, C, torch.Generator().manual_seed(3), error_rel=error_rel,
                               min_error_rel=0.15)
    err = error_rel(hard[:, None])[:, 0]
    assert bool((err > 0.15).all()), err
    assert float(error_rel(unfiltered[:, None]).min()) < float(err.min())  # the filter changed some choices
