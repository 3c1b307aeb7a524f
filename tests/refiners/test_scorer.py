"""The learned pose scorer: its config checks, a network that shares DeepIM's encoder (so DeepIM weights fit), the
weights file (round trip, other methods, other objects) and the predicted errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError
from iterpose.refiners import load_refiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
from iterpose.refiners.deepim.network import DeepimNet
from iterpose.refiners.scorer import (PoseScorer, ScorerConfig, ScorerModel, ScorerNet, build_scorer_model,
                                      load_scorer, read_scorer_checkpoint)
from iterpose.refiners.scorer.model import encoder_config

from .conftest import make_scene

TINY = ScorerConfig(crop_size=64, trunk="scratch", trunk_blocks=5, head_width=16, render_cell_rel=0.06)


@pytest.fixture(scope="module")
def scorer(example_model) -> PoseScorer:
    return PoseScorer(build_scorer_model({1: example_model}, TINY, seed=3))


@pytest.fixture(scope="module")
def scene(example_model):
    """Two images of the example object and 5 candidates: the truth and 4 wrong poses, in images 0, 1, 0, 1, 0."""
    (im0, K, T0), (im1, _, T1) = make_scene(example_model, 0), make_scene(example_model, 1)
    shifted = T0.clone()
    shifted[0, 3] += 0.02
    turned = T1.clone()
    turned[:3, :3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]) @ T1[:3, :3]  # 90° about x
    far = T0.clone()
    far[2, 3] *= 1.2
    T_co = torch.stack([T0, T1, shifted, turned, far])
    T_ref = torch.stack([T0, T1, T0, T1, T0])
    return dict(images=torch.stack([im0, im1]), K=K.expand(5, 3, 3).clone(), obj_ids=[1] * 5, T_co=T_co,
                image_index=torch.tensor([0, 1, 0, 1, 0]), T_ref=T_ref)


# --- config ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"crop_size": 48}, {"crop_size": 16}, {"crop_size": 64.0}, {"crop_size": True}, {"trunk_blocks": 15},
    {"trunk_blocks": 1}, {"head_width": 4}, {"error_floor_rel": 0.0}, {"error_floor_rel": -0.1},
    {"error_floor_rel": True}, {"error_floor_rel": "0.01"}, {"render_cell_rel": 0}, {"zoom_margin": 0.9},
    {"zoom_margin": False}, {"trunk": "random"}])
def test_config_rejects_bad_values(bad):
    name = next(iter(bad))
    with pytest.raises(InvalidInputError, match=f"ScorerConfig.{name}"):
        ScorerConfig(**bad)


def test_config_defaults_round_trip_and_match_deepims():
    cfg = ScorerConfig()
    assert ScorerConfig(**cfg.to_dict()) == cfg
    assert cfg.error_floor_rel > 0 and cfg.crop_size % 32 == 0
    enc = encoder_config(TINY)
    assert isinstance(enc, DeepimConfig) and enc.fusion == "early"
    for key in ("crop_size", "zoom_margin", "trunk", "trunk_blocks", "head_width", "render_cell_rel"):
        assert getattr(enc, key) == getattr(TINY, key), key
    # the defaults share DeepIM's defaults: a default scorer starts from a default DeepIM
    d = DeepimConfig()
    assert (cfg.crop_size, cfg.trunk_blocks, cfg.head_width, cfg.zoom_margin) == \
        (d.crop_size, d.trunk_blocks, d.head_width, d.zoom_margin)


# --- network ---------------------------------------------------------------------------------------------------------

def test_net_outputs_one_number_per_crop_pair():
    torch.manual_seed(0)
    net = ScorerNet(dataclasses.replace(TINY, crop_size=32, trunk_blocks=4)).eval()
    N, S = 3, 32
    out = net(torch.rand(N, 3, S, S), torch.rand(N, 3, S, S), torch.rand(N, S, S) > 0.5, torch.rand(N, S, S) > 0.5)
    assert out.shape == (N,) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_net_has_deepims_encoder_parameters_and_its_own_head():
    for cfg in (TINY, dataclasses.replace(TINY, crop_size=32, trunk_blocks=4), ScorerConfig(trunk="scratch")):
        s = ScorerNet(cfg).state_dict()
        d = DeepimNet(encoder_config(cfg)).state_dict()
        shared = ("trunk.", "reduce.", "fc.")
        s_enc = {k: v.shape for k, v in s.items() if k.startswith(shared)}
        d_enc = {k: v.shape for k, v in d.items() if k.startswith(shared)}
        assert s_enc and s_enc == d_enc
        assert sorted(set(s) - set(s_enc)) == ["error.bias", "error.weight"]
        assert s["error.weight"].shape == (1, cfg.head_width)


def test_net_with_deepims_weights_computes_deepims_features():
    torch.manual_seed(1)
    cfg = dataclasses.replace(TINY, crop_size=32, trunk_blocks=4)
    deepim = DeepimNet(encoder_config(cfg)).eval()
    net = ScorerNet(cfg).eval()
    shared = {k: v for k, v in deepim.state_dict().items() if k.startswith(("trunk.", "reduce.", "fc."))}
    missing, unexpected = net.load_state_dict(shared, strict=False)
    assert sorted(missing) == ["error.bias", "error.weight"] and not unexpected
    x = (torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 32, 32) > 0.5, torch.rand(2, 32, 32) > 0.5)
    with torch.no_grad():
        h = deepim.hidden(*x)
        torch.testing.assert_close(net(*x), net.error(h).squeeze(1))


# --- predictions -----------------------------------------------------------------------------------------------------

def test_predict_error_is_finite_above_the_floor(scorer, scene):
    assert not scorer.net.training and scorer.method == "scorer" and set(scorer.objects) == {1}
    err = scorer.predict_error(**scene)
    assert err.shape == (5,) and err.dtype == torch.float32 and not err.requires_grad
    assert bool(torch.isfinite(err).all()) and bool((err >= TINY.error_floor_rel).all())


@pytest.fixture
def probe(example_model):
    """A scorer whose network is replaced by a readable function of its inputs: log of (mean observed intensity +
    rendered-mask area + observed-mask area / 10), so the tests see what each candidate's crop pair holds."""
    model = build_scorer_model({1: example_model}, TINY)

    def forward(observed, rendered, rendered_mask, observed_mask):
        return (observed.mean((1, 2, 3)) + rendered_mask.float().mean((1, 2))
                + 0.1 * observed_mask.float().mean((1, 2))).log()

    model.net.forward = forward
    return PoseScorer(model)


def test_each_candidate_is_scored_on_its_own_image_and_pose(probe, scene):
    err = probe.predict_error(**scene)
    assert err.shape == (5,) and len(set(err.tolist())) == 5
    for n in range(5):
        i = int(scene["image_index"][n])
        one = probe.predict_error(scene["images"][i:i + 1], scene["K"][n:n + 1], [1], scene["T_co"][n:n + 1],
                                  torch.zeros(1, dtype=torch.long), scene["T_ref"][n:n + 1])
        torch.testing.assert_close(one[0], err[n], rtol=1e-5, atol=1e-6)
    # the other image is another observed crop
    swapped = dict(scene, image_index=1 - scene["image_index"])
    assert not torch.allclose(probe.predict_error(**swapped), err, rtol=1e-3, atol=0)


def test_predict_error_sees_the_initial_estimate_and_accepts_float64(probe, scene):
    err = probe.predict_error(**scene)
    # T_ref gives DeepIM's observed-box mask: another initial estimate is another input
    moved = dict(scene, T_ref=scene["T_ref"].clone())
    moved["T_ref"][:, 0, 3] += 0.03
    assert bool(((probe.predict_error(**moved) - err).abs() > 1e-3).all())
    as64 = dict(scene, K=scene["K"].double(), T_co=scene["T_co"].double(), T_ref=scene["T_ref"].double())
    torch.testing.assert_close(probe.predict_error(**as64), err)


def test_predict_error_is_clamped_to_the_floor(example_model, scene):
    model = build_scorer_model({1: example_model}, dataclasses.replace(TINY, error_floor_rel=0.05))
    with torch.no_grad():
        model.net.error.weight.zero_()
        model.net.error.bias.fill_(-20.0)  # exp(-20): far below the floor
    err = PoseScorer(model).predict_error(**scene)
    assert torch.equal(err, torch.full((5,), 0.05))
    with torch.no_grad():
        model.net.error.bias.fill_(0.0)  # log(1): one diameter
    torch.testing.assert_close(PoseScorer(model).predict_error(**scene), torch.ones(5))


def test_to_returns_a_new_equal_scorer(scorer, scene):
    scorer.source = "somewhere.pt"
    try:
        moved = scorer.to("cpu")
    finally:
        scorer.source = None
    assert isinstance(moved, PoseScorer) and moved is not scorer and moved.net is not scorer.net
    assert moved.source == "somewhere.pt" and moved.config == scorer.config and set(moved.objects) == {1}
    assert not moved.net.training
    for (k, a), (_, b) in zip(scorer.net.state_dict().items(), moved.net.state_dict().items()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), k
    assert torch.equal(moved.predict_error(**scene), scorer.predict_error(**scene))


# --- weights file ----------------------------------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_the_same_predictions(scorer, scene, example_model, tmp_path):
    objs = {1: example_model}
    ckpt = scorer.checkpoint(object_registry(objs))
    assert ckpt["method"] == "scorer" and ckpt["config"] == TINY.to_dict()
    assert set(ckpt["meshes"]) == {1} and ckpt["objects"][0]["obj_id"] == 1
    path = tmp_path / "scorer.pt"
    torch.save(ckpt, path)
    assert read_scorer_checkpoint(path)["method"] == "scorer"
    for objects in (None, objs):
        loaded = load_scorer(path, objects)
        assert isinstance(loaded, PoseScorer) and loaded.source == str(path) and loaded.config == TINY
        assert isinstance(loaded.net, ScorerModel) and not loaded.net.training
        assert torch.equal(loaded.predict_error(**scene), scorer.predict_error(**scene))


def test_a_deepim_weights_file_is_not_a_scorer(example_model, tmp_path):
    objs = {1: example_model}
    path = tmp_path / "deepim.pt"
    dcfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2,
                        render_cell_rel=0.06)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model(objs, dcfg)).checkpoint(object_registry(objs)), path)
    for read in (lambda: load_scorer(path), lambda: load_scorer(path, objs), lambda: read_scorer_checkpoint(path)):
        with pytest.raises(InvalidInputError, match="'deepim'.*scorer"):
            read()
    # and a scorer is no refiner
    s = tmp_path / "scorer.pt"
    save_checkpoint_atomic(PoseScorer(build_scorer_model(objs, TINY)).checkpoint(object_registry(objs)), s)
    with pytest.raises(InvalidInputError, match="holds a pose scorer, not a refiner"):
        load_refiner(s, objs)


def test_load_scorer_checks_the_objects(scorer, example_model, tmp_path):
    path = tmp_path / "scorer.pt"
    save_checkpoint_atomic(scorer.checkpoint(object_registry({1: example_model})), path)
    with pytest.raises(InvalidInputError, match=r"objects \[2\] are not in it"):
        load_scorer(path, {2: example_model})
    bigger = type(example_model)(**{**example_model.__dict__, "vertices": example_model.vertices * 1.01})
    with pytest.raises(InvalidInputError, match=r"meshes of objects \[1\] differ"):
        load_scorer(path, {1: bigger})


def test_damaged_scorer_files_are_data_format_errors(scorer, example_model, tmp_path):
    ckpt = scorer.checkpoint(object_registry({1: example_model}))
    bad_config = tmp_path / "config.pt"
    torch.save({**ckpt, "config": {**ckpt["config"], "crop_size": 40}}, bad_config)
    with pytest.raises(DataFormatError, match="config"):
        load_scorer(bad_config)
    bad_state = tmp_path / "state.pt"
    torch.save({**ckpt, "state_dict": {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("net.error")}},
               bad_state)
    with pytest.raises(DataFormatError, match="scorer"):
        load_scorer(bad_state)
    truncated = tmp_path / "truncated.pt"
    torch.save(ckpt, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DataFormatError):
        load_scorer(truncated)
    with pytest.raises(MissingFileError):
        load_scorer(tmp_path / "absent.pt")
