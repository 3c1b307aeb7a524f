"""RGB-LM's accept test as a check of any poses (`RgbLM.accept_test`) and as the guard of a cascade: a result that
explains the image worse than the cascade's input is replaced by the input."""

from __future__ import annotations

import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.refiners import RefineStatus, RgbLM, RgbLMConfig, make_refiner
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineTimings
from iterpose.refiners.cascade import CascadeRefiner

OK, KEPT = int(RefineStatus.OK), int(RefineStatus.KEPT_INITIAL_WORSE)


def _batch(perturbed_scene, reference: torch.Tensor) -> RefineBatch:
    """One object of the scene's image with ``reference [4, 4]`` as its initial pose."""
    image, K = perturbed_scene[0], perturbed_scene[1]
    return RefineBatch(images=image[None], K=K[None], object_ids=torch.tensor([1]), init_poses=reference[None],
                       image_index=torch.tensor([0]))


def test_accept_test_prefers_the_true_pose(example_model, perturbed_scene):
    _, _, T_gt, T_bad = perturbed_scene
    rgb = RgbLM({1: example_model})
    assert rgb.accept_test(_batch(perturbed_scene, T_bad), T_gt[None]).passed.tolist() == [True]
    worse = rgb.accept_test(_batch(perturbed_scene, T_gt), T_bad[None])
    assert worse.passed.tolist() == [False]
    assert float(worse.reference_scores[0]) > float(worse.scores[0])
    nan = torch.full((1, 4, 4), float("nan"))
    assert rgb.accept_test(_batch(perturbed_scene, T_bad), nan).passed.tolist() == [False]


def test_accept_test_is_the_test_that_ends_refine(example_model, perturbed_scene):
    """The public check gives the same answer as refine()'s own accept test on refine()'s result."""
    image, K, T_gt, _ = perturbed_scene
    rgb = RgbLM({1: example_model}, RgbLMConfig(iterations=4, depth_fallback=False))
    starts = perturb_poses(T_gt[None].expand(4, 4, 4), PerturbConfig(rot_std_deg=6.0, trans_std_m=(0.005, 0.005, 0.03)),
                           torch.Generator().manual_seed(9))
    out = rgb.refine(image[None], K[None], torch.ones(4, dtype=torch.int64), starts, torch.zeros(4, dtype=torch.int64))
    moved = [not torch.equal(out.trace[-1][k], starts[k]) for k in range(4)]
    batch = RefineBatch(images=image[None], K=K[None], object_ids=torch.ones(4, dtype=torch.int64), init_poses=starts,
                        image_index=torch.zeros(4, dtype=torch.int64))
    test = rgb.accept_test(batch, out.trace[-1])
    for k in range(4):
        if moved[k]:
            assert (int(out.status[k]) == OK) == bool(test.passed[k]), k
    assert any(moved)


class _To(Refiner):
    """A stand-in first stage: returns ``pose`` for every object (status OK, score 0.5)."""

    default_iterations = 1

    def __init__(self, objects, pose: torch.Tensor) -> None:
        self.objects, self.pose = objects, pose

    def _refine(self, batch, iterations):
        M = batch.init_poses.shape[0]
        T = self.pose.expand(M, 4, 4).clone()
        return RefineOutput(poses=T, scores=torch.full((M,), 0.5), trace=torch.stack([batch.init_poses, T]),
                            status=torch.zeros(M, dtype=torch.int8), timings=RefineTimings(total_s=0.0))


class _Keep(_To):
    """A stand-in second stage that keeps its input (KEPT_INITIAL_WORSE)."""

    def _refine(self, batch, iterations):
        out = super()._refine(batch, iterations)
        M = batch.init_poses.shape[0]
        return RefineOutput(poses=batch.init_poses.clone(), scores=out.scores, trace=out.trace,
                            status=torch.full((M,), KEPT, dtype=torch.int8), timings=out.timings)


@pytest.mark.parametrize("start, target, guarded, status, returns", [
    ("gt", "bad", True, KEPT, "gt"),  # a good input made worse: the guard keeps the input
    ("gt", "bad", False, OK, "bad"),  # without the guard the worse pose goes through
    ("bad", "gt", True, OK, "gt"),  # a real improvement passes
])
def test_guard_keeps_the_cascade_input_when_the_result_is_worse(example_model, perturbed_scene, start, target, guarded,
                                                                 status, returns):
    image, K, T_gt, T_bad = perturbed_scene
    poses = {"gt": T_gt, "bad": T_bad}
    objs = {1: example_model}
    guard = RgbLM(objs) if guarded else None
    cascade = CascadeRefiner([_To(objs, poses[target]), _Keep(objs, T_gt)], "to+keep", guard=guard)
    out = cascade.refine(image[None], K[None], torch.tensor([1]), poses[start][None], torch.tensor([0]))
    assert out.status.tolist() == [status]
    torch.testing.assert_close(out.poses[0], poses[returns])
    if guarded and status == KEPT:
        expected = RgbLM(objs).accept_test(_batch(perturbed_scene, T_gt), T_bad[None]).reference_scores
        torch.testing.assert_close(out.scores, expected)


def test_deepim_rgb_lm_is_guarded_and_deepim_repose_is_not(example_model, tmp_path):
    from .test_cascade import _weights

    d, r = _weights(example_model, tmp_path)
    assert isinstance(make_refiner("deepim+rgb-lm", {1: example_model}, weights=d).guard, RgbLM)
    assert make_refiner("deepim+repose", {1: example_model}, weights=[d, r]).guard is None
    with pytest.raises(Exception, match="guard must be an RgbLM"):
        CascadeRefiner([_To({1: example_model}, torch.eye(4))] * 2, guard=object())
