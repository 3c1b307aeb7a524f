"""Multi-hypothesis refinement: the rotated starts, the outline score that ranks the results, the wrapper's choice,
statuses and traces, and how it is asked for (`make_refiner`, `iterpose refine --hypotheses`)."""

from __future__ import annotations

import math

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry.rotations import axis_angle_to_matrix, rotation_angle
from iterpose.refiners import RefineStatus, make_refiner
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineTimings
from iterpose.refiners.contour_score import contour_alignment
from iterpose.refiners.crops import crop_intrinsics, sample_crops, sphere_crop_boxes
from iterpose.refiners.hypotheses import MultiHypothesisRefiner, hypothesis_rotations
from iterpose.refiners.proxy_mesh import make_proxy_mesh, render_proxies
from iterpose.refiners.rgb_lm import RgbLM
from iterpose.render import render_objects

from .conftest import make_scene


def test_hypothesis_rotations_start_with_the_identity_and_turn_by_the_angle_about_spread_axes():
    R = hypothesis_rotations(9, 20.0)
    assert R.shape == (9, 3, 3) and torch.equal(R[0], torch.eye(3, dtype=torch.float64))
    assert torch.allclose(rotation_angle(R[1:]), torch.full((8,), math.radians(20.0), dtype=torch.float64))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(9, 3, 3), atol=1e-12)
    # the axes (from the skew part of R) are distinct unit vectors spread over the sphere: they nearly cancel
    W = R[1:] - R[1:].transpose(1, 2)
    axes = torch.stack([W[:, 2, 1], W[:, 0, 2], W[:, 1, 0]], 1)
    axes = axes / axes.norm(dim=1, keepdim=True)
    assert axes.mean(0).norm() < 0.15
    cos = axes @ axes.T - 2 * torch.eye(8, dtype=torch.float64)
    assert cos.max() < 0.9
    assert hypothesis_rotations(1, 20.0).shape == (1, 3, 3)
    with pytest.raises(InvalidInputError, match="count"):
        hypothesis_rotations(0, 20.0)


def _crop_and_masks(model, image, K, T_ref, poses, size=96):
    """The observed crop ``[1, 3, S, S]`` around ``T_ref`` and the silhouettes ``[1, P, S, S]`` of ``poses [P, 4, 4]``
    in it."""
    box = sphere_crop_boxes(K[None], T_ref[None], torch.tensor([model.diameter_m / 2]), 1.8)
    observed, _ = sample_crops(image[None], torch.zeros(1, dtype=torch.long), box, size)
    proxy = make_proxy_mesh(model, 0.015 * model.diameter_m)
    K_crop = crop_intrinsics(K[None], box, size)
    masks = render_proxies([proxy] * len(poses), poses, K_crop.repeat(len(poses), 1, 1), size).mask
    return observed, masks[None]


def _rotated(T, axis, deg):
    out = T.clone()
    R = axis_angle_to_matrix(torch.tensor(axis, dtype=T.dtype) * math.radians(deg))
    out[:3, :3] = R @ T[:3, :3]
    return out


def test_contour_alignment_ranks_the_true_pose_above_wrong_ones(example_model):
    for seed in range(3):
        image, K, T_gt = make_scene(example_model, seed)
        # a plain background: the only edges are the object's, so the ranking must be exact
        r = render_objects([example_model], T_gt[None], K, image.shape[1], image.shape[2])
        image = torch.where(r.mask[0], r.rgb[0], torch.full_like(image, 0.35))
        shifted = T_gt.clone()
        shifted[0, 3] += 0.012  # about 10 px: the score ranks coarse alternatives, it is no pixel-accurate fit
        wrong = [_rotated(T_gt, (1.0, 0.0, 0.0), 15.0), _rotated(T_gt, (0.0, 0.0, 1.0), 15.0), shifted]
        observed, masks = _crop_and_masks(example_model, image, K, T_gt, torch.stack([T_gt] + wrong))
        s = contour_alignment(observed, masks)[0]
        assert s.shape == (4,) and bool(((s >= 0) & (s <= 1)).all())
        assert float(s[0]) > 0.9  # the true outline lies on the object's edges in the image
        assert bool((s[0] > s[1:]).all()), s
        # an out-of-plane turn can keep much of the outline; an in-plane turn or a shift cannot
        assert bool((s[0] > s[2:] + 0.05).all()), s


def test_contour_alignment_is_zero_without_an_outline_and_checks_shapes():
    observed = torch.rand(2, 3, 32, 32)
    masks = torch.zeros(2, 3, 32, 32, dtype=torch.bool)
    assert torch.equal(contour_alignment(observed, masks), torch.zeros(2, 3))
    flat = torch.full((1, 3, 32, 32), 0.5)
    square = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    square[..., 8:24, 8:24] = True
    assert float(contour_alignment(flat, square)) == 0.0  # no image edges at all
    edges = flat.clone()
    edges[:, :, 8:24, 8:24] = 0.9
    assert float(contour_alignment(edges, square)) > 0.9  # the outline is exactly the image's edge
    # each crop is compared with its own silhouettes only: crop 0 has the square's edges, crop 1 none
    both = contour_alignment(torch.cat([edges, flat]), torch.cat([square, square]))
    assert both.shape == (2, 1) and float(both[0, 0]) > 0.9 and float(both[1, 0]) == 0.0
    with pytest.raises(ValueError, match="must be"):
        contour_alignment(observed, masks[:1])
    with pytest.raises(ValueError, match="must be"):
        contour_alignment(observed, masks[:, 0])


class _Basin(Refiner):
    """Returns the true pose for starts within ``basin_deg`` of it (status OK), keeps other starts
    (``KEPT_INITIAL_WORSE``); records the starts it saw."""

    def __init__(self, objects, T_true, basin_deg=12.0):
        self.objects, self.T_true, self.basin = objects, T_true, basin_deg
        self.default_iterations = 2
        self.seen = self.seen_batch = None

    def _refine(self, batch, iterations):
        T = batch.init_poses
        self.seen = T.clone()
        self.seen_batch = batch
        dR = self.T_true[:3, :3].to(T) @ T[:, :3, :3].transpose(1, 2)
        hit = torch.rad2deg(rotation_angle(dR)) < self.basin
        out = torch.where(hit[:, None, None], self.T_true.to(T).expand_as(T), T)
        status = torch.where(hit, torch.tensor(int(RefineStatus.OK)),
                             torch.tensor(int(RefineStatus.KEPT_INITIAL_WORSE))).to(torch.int8)
        trace = torch.stack([T] + [out] * iterations)
        return RefineOutput(poses=out, scores=hit.float() * 0.7, trace=trace, status=status,
                            timings=RefineTimings(total_s=0.0, render_s=0.5))


def test_a_rotated_start_inside_the_basin_is_found_and_kept(example_model):
    image, K, T_gt = make_scene(example_model, 1)
    R = hypothesis_rotations(7, 20.0).float()
    T_init = T_gt.clone()
    T_init[:3, :3] = R[3].T @ T_gt[:3, :3]  # 20° off, exactly undone by hypothesis 3
    inner = _Basin({1: example_model}, T_gt)
    refiner = MultiHypothesisRefiner(inner, hypotheses=7, angle_deg=20.0, crop_size=96)
    assert refiner.default_iterations == 2 and set(refiner.objects) == {1}
    out = refiner.refine(image[None], K[None], torch.tensor([1]), T_init[None], torch.zeros(1, dtype=torch.long))
    assert inner.seen.shape == (7, 4, 4)
    assert torch.allclose(inner.seen[0], T_init, atol=1e-6)  # the initial pose itself is one of the starts
    assert torch.allclose(out.poses[0], T_gt, atol=1e-5)
    assert int(out.status[0]) == int(RefineStatus.OK) and float(out.scores[0]) == pytest.approx(0.7)
    assert out.trace.shape == (3, 1, 4, 4) and torch.equal(out.trace[0, 0], T_init)
    assert torch.allclose(out.trace[-1, 0], T_gt, atol=1e-5)
    # what it chose from: every start refined and scored; the chosen one is the best-scored of the converged ones
    batch = RefineBatch(images=image[None], K=K[None], object_ids=torch.tensor([1]), init_poses=T_init[None],
                        image_index=torch.zeros(1, dtype=torch.long))
    cands = refiner.candidates(batch, 2)
    assert cands.poses.shape == (1, 7, 4, 4) and cands.outline_scores.shape == (1, 7)
    assert cands.status[0].tolist() == [int(RefineStatus.OK) if h == 3 else int(RefineStatus.KEPT_INITIAL_WORSE)
                                        for h in range(7)]
    assert torch.allclose(cands.poses[0, 3], T_gt, atol=1e-5)


def test_each_hypothesis_has_its_own_copy_of_the_image_shared_with_the_other_objects(example_model):
    image, K, T_gt = make_scene(example_model, 3)
    other = _rotated(T_gt, (0.0, 0.0, 1.0), 30.0)
    images = torch.stack([image, image.flip(2)])
    inner = _Basin({1: example_model}, T_gt)
    MultiHypothesisRefiner(inner, hypotheses=3).refine(images, torch.stack([K, K]), torch.tensor([1, 1, 1]),
                                                       torch.stack([T_gt, other, other]), torch.tensor([0, 1, 0]))
    b = inner.seen_batch
    assert b.images.shape[0] == 6 and torch.equal(b.images[3:], images[1:].expand(3, -1, -1, -1))
    # objects 0 and 2 (image 0) share copies 0, 1, 2; object 1 (image 1) has copies 3, 4, 5
    assert b.image_index.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    assert torch.equal(b.K, K.expand(6, 3, 3))


def test_when_no_start_converges_the_initial_pose_is_kept(example_model):
    image, K, T_gt = make_scene(example_model, 2)
    T_init = _rotated(T_gt, (0.0, 0.0, 1.0), 60.0)
    refiner = MultiHypothesisRefiner(_Basin({1: example_model}, T_gt), hypotheses=5, angle_deg=20.0)
    out = refiner.refine(image[None], K[None], torch.tensor([1]), T_init[None], torch.zeros(1, dtype=torch.long))
    # rotated starts that did not converge are unrefined guesses: never chosen over the input
    assert torch.equal(out.poses[0], T_init)
    assert int(out.status[0]) == int(RefineStatus.KEPT_INITIAL_WORSE)


def test_make_refiner_wraps_on_request_and_rejects_bad_counts(example_model):
    objs = {1: example_model}
    assert isinstance(make_refiner("rgb-lm", objs), RgbLM)
    wrapped = make_refiner("rgb-lm", objs, hypotheses=3, hypothesis_angle_deg=15.0)
    assert isinstance(wrapped, MultiHypothesisRefiner)
    assert wrapped.hypotheses == 3 and wrapped.angle_deg == 15.0 and isinstance(wrapped.refiner, RgbLM)
    with pytest.raises(InvalidInputError, match="hypotheses"):
        make_refiner("rgb-lm", objs, hypotheses=0)
    with pytest.raises(InvalidInputError, match="angle_deg"):
        make_refiner("rgb-lm", objs, hypotheses=3, hypothesis_angle_deg=120.0)
    with pytest.raises(InvalidInputError, match="Refiner"):
        MultiHypothesisRefiner(object(), hypotheses=3)
    for bad in ({"hypotheses": 1}, {"crop_size": 8}, {"crop_margin": 0.5}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            MultiHypothesisRefiner(RgbLM(objs), **bad)
