"""Ensembles (``rgb-lm,deepim,...``): every member runs from the same input, RGB-LM's score picks the result; how
they are built from method names and weights, and their errors."""

from __future__ import annotations

import argparse

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.refiners import RefineStatus, RgbLM, make_refiner
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineTimings
from iterpose.refiners.cascade import CascadeRefiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
from iterpose.refiners.ensemble import EnsembleRefiner


class _Returns(Refiner):
    """Returns ``pose`` for every object after ``iterations`` steps, with status ``code``."""

    def __init__(self, objects, pose: torch.Tensor, code: RefineStatus = RefineStatus.OK, iterations: int = 2):
        self.objects, self.pose, self.code, self.default_iterations = objects, pose, code, iterations

    def _refine(self, batch, iterations):
        M = batch.init_poses.shape[0]
        T = self.pose.expand(M, 4, 4).clone()
        trace = torch.stack([batch.init_poses] + [T] * iterations)
        return RefineOutput(poses=T, scores=torch.full((M,), 0.9), trace=trace,
                            status=torch.full((M,), int(self.code), dtype=torch.int8),
                            timings=RefineTimings(total_s=0.0, render_s=0.25))


def _refine(refiner, perturbed_scene, start):
    image, K = perturbed_scene[0], perturbed_scene[1]
    return refiner.refine(image[None], K[None], torch.tensor([1]), start[None], torch.tensor([0]))


@pytest.mark.parametrize("order", [0, 1])
def test_the_member_whose_result_explains_the_image_best_is_kept(example_model, perturbed_scene, order):
    _, _, T_gt, T_bad = perturbed_scene
    objs = {1: example_model}
    members = [_Returns(objs, T_bad, iterations=2), _Returns(objs, T_gt, iterations=4)]
    if order:
        members.reverse()
    judge = RgbLM(objs)
    ensemble = EnsembleRefiner(members, judge, "bad,good")
    out = _refine(ensemble, perturbed_scene, T_bad)
    torch.testing.assert_close(out.poses[0], T_gt)
    assert int(out.status[0]) == int(RefineStatus.OK)
    # the score is the judge's, the trace the chosen member's padded to the longest member's length
    batch = RefineBatch(images=perturbed_scene[0][None], K=perturbed_scene[1][None], object_ids=torch.tensor([1]),
                        init_poses=T_bad[None], image_index=torch.tensor([0]))
    expected = judge.score_poses(batch, torch.stack([T_bad, T_gt])[:, None])
    assert float(expected[1, 0]) > float(expected[0, 0])
    torch.testing.assert_close(out.scores[0], expected[1, 0])
    assert ensemble.default_iterations == 4 and out.trace.shape == (5, 1, 4, 4)
    torch.testing.assert_close(out.trace[0, 0], T_bad)
    torch.testing.assert_close(out.trace[-1, 0], T_gt)
    assert out.timings.render_s == 0.5


def test_a_diverged_result_is_never_chosen(example_model, perturbed_scene):
    _, _, T_gt, T_bad = perturbed_scene
    objs = {1: example_model}
    members = [_Returns(objs, T_bad, RefineStatus.KEPT_INITIAL_WORSE), _Returns(objs, T_gt, RefineStatus.DIVERGED)]
    out = _refine(EnsembleRefiner(members, RgbLM(objs)), perturbed_scene, T_bad)
    torch.testing.assert_close(out.poses[0], T_bad)
    assert int(out.status[0]) == int(RefineStatus.KEPT_INITIAL_WORSE)


class _Counting(_Returns):
    calls = 0

    def _refine(self, batch, iterations):
        self.calls += 1
        return super()._refine(batch, iterations)


@pytest.mark.parametrize("cascade_first", [False, True])
def test_a_cascade_member_starts_from_the_member_that_is_its_first_stage(example_model, perturbed_scene,
                                                                          cascade_first):
    _, _, T_gt, T_bad = perturbed_scene
    objs = {1: example_model}
    first, second = _Counting(objs, T_bad, iterations=2), _Counting(objs, T_gt, iterations=3)
    cascade = CascadeRefiner([first, second], "first+second")
    members = [cascade, first] if cascade_first else [first, cascade]
    out = _refine(EnsembleRefiner(members, RgbLM(objs)), perturbed_scene, T_bad)
    assert (first.calls, second.calls) == (1, 1)
    torch.testing.assert_close(out.poses[0], T_gt)
    assert out.trace.shape == (6, 1, 4, 4)  # the cascade's trace: its first stage's 2 steps, then 3
    torch.testing.assert_close(out.trace[2, 0], T_bad)
    assert out.timings.render_s == 0.5  # each stage counted once
    # a cascade whose first stage is not a member runs it itself
    other = _Counting(objs, T_bad, iterations=2)
    _refine(EnsembleRefiner([other, CascadeRefiner([first, second])], RgbLM(objs)), perturbed_scene, T_bad)
    assert (other.calls, first.calls) == (1, 2)


def test_make_refiner_shares_single_methods_and_the_result_is_unchanged(example_model, perturbed_scene, tmp_path):
    d = _deepim_weights(example_model, tmp_path)
    objs = {1: example_model}
    ensemble = make_refiner("rgb-lm,deepim,deepim+rgb-lm", objs, weights=d)
    rgb, deepim, cascade = ensemble.members
    assert cascade.stages[0] is deepim and cascade.stages[1] is rgb
    separate = EnsembleRefiner([RgbLM(objs), make_refiner("deepim", objs, weights=d),
                                make_refiner("deepim+rgb-lm", objs, weights=d)], RgbLM(objs))
    a, b = (_refine(e, perturbed_scene, perturbed_scene[3]) for e in (ensemble, separate))
    # equal up to float32 rounding: a cascade run on its own re-orthonormalises its first stage's input
    torch.testing.assert_close(a.poses, b.poses)
    torch.testing.assert_close(a.trace, b.trace)
    assert torch.equal(a.status, b.status)


def test_score_poses_is_the_accept_test_score(example_model, perturbed_scene):
    image, K, T_gt, T_bad = perturbed_scene
    rgb = RgbLM({1: example_model})
    batch = RefineBatch(images=image[None], K=K[None], object_ids=torch.tensor([1]), init_poses=T_bad[None],
                        image_index=torch.tensor([0]))
    nan = torch.full((4, 4), float("nan"))
    scores = rgb.score_poses(batch, torch.stack([T_gt, T_bad, nan])[:, None])
    assert scores.shape == (3, 1)
    torch.testing.assert_close(scores[0], rgb.accept_test(batch, T_gt[None]).scores)
    torch.testing.assert_close(scores[1], rgb.accept_test(batch, T_bad[None]).reference_scores)
    assert float(scores[2, 0]) == -1.0


def _deepim_weights(obj, tmp_path):
    path = tmp_path / "d.pt"
    cfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model({1: obj}, cfg)).checkpoint(object_registry({1: obj})),
                           path)
    return path


def test_make_refiner_builds_an_ensemble_from_method_names(example_model, perturbed_scene, tmp_path):
    d = _deepim_weights(example_model, tmp_path)
    objs = {1: example_model}
    ensemble = make_refiner("rgb-lm,deepim,deepim+rgb-lm", objs, weights=d)
    assert isinstance(ensemble, EnsembleRefiner) and ensemble.name == "rgb-lm,deepim,deepim+rgb-lm"
    assert [type(m) for m in ensemble.members] == [RgbLM, DeepimRefiner, CascadeRefiner]
    assert ensemble.judge is ensemble.members[0]  # the rgb-lm member judges; no second RgbLM is built
    other = make_refiner("deepim,deepim+rgb-lm", objs, weights=d)
    assert isinstance(other.judge, RgbLM) and all(m is not other.judge for m in other.members)
    out = _refine(ensemble, perturbed_scene, perturbed_scene[3])
    assert out.poses.shape == (1, 4, 4) and torch.isfinite(out.poses).all()
    assert out.trace.shape[0] == 1 + ensemble.default_iterations
    with pytest.raises(InvalidInputError, match="needs weights"):
        make_refiner("rgb-lm,deepim", objs)
    with pytest.raises(InvalidInputError, match=r"unknown member\(s\) \['dope'\]"):
        make_refiner("rgb-lm,dope", objs, weights=d)
    with pytest.raises(InvalidInputError, match="names a member twice"):
        make_refiner("deepim,deepim", objs, weights=d)
    with pytest.raises(InvalidInputError, match="cannot be overridden for an ensemble"):
        make_refiner("rgb-lm,deepim", objs, weights=d, iterations=3)
    with pytest.raises(InvalidInputError, match="at least two members"):
        EnsembleRefiner([RgbLM(objs)], RgbLM(objs))


def test_learned_methods_lists_each_needed_weights_file_once():
    from iterpose.refiners.registry import learned_methods

    assert learned_methods("rgb-lm") == []
    assert learned_methods("deepim+repose") == ["deepim", "repose"]
    assert learned_methods("rgb-lm,deepim,deepim+rgb-lm") == ["deepim"]
    assert learned_methods("repose,deepim+rgb-lm,deepim+repose") == ["repose", "deepim"]


def test_refine_cli_accepts_ensembles_of_its_methods():
    from iterpose.cli.refine_cmd import refine_method

    assert refine_method("rgb-lm, deepim") == "rgb-lm,deepim"
    assert refine_method("deepim+repose") == "deepim+repose"
    for bad in ("rgb-lm,rgb-lm", "rgb-lm,dope", "dope"):
        with pytest.raises(argparse.ArgumentTypeError, match="joined by commas"):
            refine_method(bad)
