"""RGB-LM's accept test, one criterion at a time, and its occlusion handling with two overlapping objects.

Accept test (module docstring of :mod:`iterpose.refiners.rgb_lm.refiner`): the refined pose replaces the initial
one only if (a) its accept energy is lower by more than ``accept_margin`` AND (b) its edge strength keeps at least
``accept_edge_ratio`` of the initial pose's. Each criterion is switched to "always passes" or "never passes" while
the other always passes, on a scene whose refinement moves the pose (depth fallback off, so a rejected result is
the initial pose with KEPT_INITIAL_WORSE).

Occlusion: pixels where another object of the same image is in front are neither foreground nor background
evidence. Two example objects overlap: A in front, B behind.
"""

from __future__ import annotations

import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.refiners import RefineStatus, RgbLM, RgbLMConfig
from iterpose.refiners.proxy_mesh import render_proxies
from iterpose.render import render_objects

from .conftest import make_scene

ALWAYS, NEVER = -1e9, 1e9  # accept_margin that every / no energy passes
OK, KEPT = int(RefineStatus.OK), int(RefineStatus.KEPT_INITIAL_WORSE)


@pytest.fixture(scope="module")
def moving_scene(example_model):
    image, K, T_gt = make_scene(example_model, 3)
    T0 = perturb_poses(T_gt[None], PerturbConfig(rot_std_deg=5.0, trans_std_m=(0.005, 0.005, 0.02)),
                       torch.Generator().manual_seed(3))[0]
    return image, K, T0


def _refine(model, scene, **cfg):
    image, K, T0 = scene
    refiner = RgbLM({1: model}, RgbLMConfig(iterations=4, depth_fallback=False, **cfg))
    return refiner.refine(image[None], K[None], torch.tensor([1]), T0[None], torch.tensor([0]))


@pytest.mark.parametrize(
    "margin, edge_ratio, expected",
    [
        (ALWAYS, 0.0, OK),  # both criteria off: the refined pose is returned (it moved)
        (NEVER, 0.0, KEPT),  # (a) alone rejects
        (ALWAYS, 1e6, KEPT),  # (b) alone rejects: the edge strength cannot grow a million times
        (ALWAYS, 1e-6, OK),  # (b) alone, passing: a refined contour keeps a millionth of the initial edge strength
    ],
    ids=["both-pass", "energy-rejects", "edge-rejects", "edge-passes"],
)
def test_each_accept_criterion_on_its_own(example_model, moving_scene, margin, edge_ratio, expected):
    out = _refine(example_model, moving_scene, accept_margin=margin, accept_edge_ratio=edge_ratio)
    T0 = moving_scene[2]
    assert out.status.tolist() == [expected]
    moved = not torch.equal(out.trace[-1][0], T0)
    assert moved  # the LM iterations did move the pose: the decision is the accept test's
    if expected == OK:
        assert torch.equal(out.poses[0], out.trace[-1][0])
    else:
        assert torch.equal(out.poses[0], T0)


# ----------------------------------------------------------------------------------------------------------------
# Occlusion with two overlapping objects
# ----------------------------------------------------------------------------------------------------------------
S = 160
K_SQ = torch.tensor([[200.0, 0.0, 79.5], [0.0, 200.0, 79.5], [0.0, 0.0, 1.0]])
RED, GREEN, BLUE = torch.tensor([0.9, 0.1, 0.1]), torch.tensor([0.1, 0.8, 0.1]), torch.tensor([0.1, 0.1, 0.9])


def _pose(x: float, z: float) -> torch.Tensor:
    T = torch.eye(4)
    T[:3, 3] = torch.tensor([x, 0.0, z])
    return T


@pytest.fixture(scope="module")
def two_objects(example_model):
    """A (index 0) at 0.5 m in front of B (index 1) at 0.7 m, shifted sideways so that they overlap in part.
    The image is flat colours: B's visible pixels green, A's red, background blue."""
    T = torch.stack([_pose(-0.03, 0.5), _pose(0.045, 0.7)])
    r = render_objects([example_model] * 2, T, K_SQ, S, S, shading=False)
    a, b = r.mask[0], r.mask[1]
    assert (a & b).sum() > 200 and (a & ~b).sum() > 200 and (b & ~a).sum() > 200  # a real, partial overlap
    image = BLUE[:, None, None].expand(3, S, S).clone()
    image[:, b] = GREEN[:, None]
    image[:, a] = RED[:, None]  # A is in front wherever both are
    return image, T


def test_occlusion_masks_front_and_back(example_model, two_objects):
    """Crops = the full image (crop_size = S, K_crop = K). By hand, for A entirely in front of B:
    occluded(A) = B's pixels off A's silhouette (B's pixels behind A are not occluders: A is not penalised by them);
    occluded(B) = all of A's pixels (those over B's silhouette are excluded from B's evidence)."""
    _, T = two_objects
    refiner = RgbLM({1: example_model}, RgbLMConfig(crop_size=S))
    proxies = [refiner._proxies[1]] * 2
    K_crop = K_SQ.expand(2, 3, 3)
    r0 = render_proxies(proxies, T, K_crop, S)
    a, b = r0.mask[0], r0.mask[1]
    occluded = refiner._occlusion(proxies, T, K_crop, torch.tensor([0, 0]), r0)
    assert not bool((occluded[0] & a).any())  # the front object keeps all of its silhouette
    assert torch.equal(occluded[0], b & ~a)
    assert torch.equal(occluded[1], a)  # ... and the back object loses the front one's pixels
    assert int((occluded[1] & b).sum()) == int((a & b).sum()) > 200
    # objects of different images never occlude each other
    none = refiner._occlusion(proxies, T, K_crop, torch.tensor([0, 1]), r0)
    assert not bool(none.any())


def test_back_object_is_not_penalised_by_the_front_one(example_model, two_objects):
    """Score at the (correct) initial poses, which the accept test keeps (margin 1e9): B's evidence is green inside,
    blue outside once A's red pixels are excluded (score ~1). Without the occlusion handling, A's red pixels count as
    B's foreground and background at once and B's score drops."""
    image, T = two_objects

    def scores(occlusion: bool) -> list[float]:
        cfg = RgbLMConfig(iterations=1, occlusion=occlusion, accept_margin=NEVER, depth_fallback=False)
        out = RgbLM({1: example_model}, cfg).refine(image[None], K_SQ[None], torch.tensor([1, 1]), T,
                                                    torch.tensor([0, 0]))
        assert torch.equal(out.poses, T)
        return out.scores.tolist()

    with_occ, without = scores(True), scores(False)  # measured: B 0.977 with, 0.572 without; A 0.99 both
    assert with_occ[1] > 0.9 and with_occ[0] > 0.9, with_occ
    assert without[1] < with_occ[1] - 0.1, (with_occ, without)
