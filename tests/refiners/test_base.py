"""The Refiner interface: input validation, invalid initial poses passed through, no NaN out."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import CameraError, InvalidInputError, ShapeError
from iterpose.refiners import RefineStatus, RgbLM, RgbLMConfig, classify_initial_poses, make_refiner

from .conftest import H, K_SMALL, W, make_scene


@pytest.fixture(scope="module")
def refiner(example_model):
    return RgbLM({1: example_model}, RgbLMConfig(iterations=3))


def _pose(t) -> torch.Tensor:
    T = torch.eye(4)
    T[:3, 3] = torch.tensor(t)
    return T


def test_classify_initial_poses():
    T = torch.stack([
        _pose([0.0, 0.0, 0.5]),  # fine
        _pose([0.0, 0.0, 0.0]),  # placeholder
        _pose([0.0, 0.0, -0.5]),  # behind
        _pose([0.0, 0.0, 0.05]),  # sphere crosses the camera plane
        _pose([5.0, 0.0, 0.5]),  # far right of the image
        _pose([float("nan"), 0.0, 0.5]),
        torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0])) + _pose([0.0, 0.0, 0.5]) - torch.eye(4),  # reflection
        torch.diag(torch.tensor([1.002, 0.999, 1.0, 1.0])) + _pose([0.0, 0.0, 0.5]) - torch.eye(4),  # printed R
    ])
    st = classify_initial_poses(T, K_SMALL.expand(8, 3, 3), torch.full((8,), 0.07), H, W)
    S = RefineStatus
    assert [S(c) for c in st.tolist()] == [
        S.OK, S.INVALID_INIT_ZERO_T, S.INVALID_INIT_BEHIND_CAMERA, S.INVALID_INIT_BEHIND_CAMERA,
        S.INVALID_INIT_OUTSIDE_IMAGE, S.INVALID_INIT_NONFINITE, S.INVALID_INIT_NOT_ROTATION, S.OK]
    assert S.INVALID_INIT_ZERO_T.is_invalid_init and not S.DIVERGED.is_invalid_init


def test_invalid_inits_pass_through_without_nan(refiner, example_model):
    image, K, T_gt = make_scene(example_model, seed=3)
    bad = torch.stack([_pose([0.0, 0.0, 0.0]), _pose([0.0, 0.0, -0.4]), _pose([float("nan")] * 3), T_gt])
    bad_in = bad.clone()
    out = refiner.refine(image[None], K[None], torch.ones(4, dtype=torch.int64), bad, torch.zeros(4, dtype=torch.int64))
    S = RefineStatus
    assert [S(c) for c in out.status.tolist()[:3]] == [S.INVALID_INIT_ZERO_T, S.INVALID_INIT_BEHIND_CAMERA,
                                                        S.INVALID_INIT_NONFINITE]
    assert out.status.dtype == torch.int8
    assert torch.equal(out.poses[:2], bad[:2])  # passed through as given
    assert torch.equal(out.poses[2], torch.eye(4))  # non-finite -> the placeholder, never NaN
    assert bool(torch.isfinite(out.trace).all())
    assert bool(torch.isfinite(out.poses[3]).all()) and float(out.poses[3, 2, 3]) > 0.3
    assert out.scores[:3].tolist() == [0.0, 0.0, 0.0] and bool(torch.isfinite(out.scores).all())
    assert torch.equal(bad[:2], bad_in[:2]) and torch.equal(bad[3], bad_in[3])  # inputs untouched
    assert out.trace.shape == (4, 4, 4, 4) and torch.equal(out.trace[:, 0], bad[0].expand(4, 4, 4))
    assert out.timings.total_s > 0


@pytest.mark.parametrize(
    "change, error, fragment",
    [
        (lambda a: a.update(images=a["images"][0]), ShapeError, "images must be [B, 3, H, W]"),
        (lambda a: a.update(images=(a["images"] * 255).to(torch.uint8)), InvalidInputError, "divide uint8"),
        (lambda a: a.update(K=a["K"][0]), ShapeError, "K must be [B, 3, 3]"),
        (lambda a: a.update(K=a["K"] * torch.tensor([1.0, 1.0, 1.0])[:, None] + torch.tensor(
            [[0, 0, 400.0], [0, 0, 0], [0, 0, 0]])), CameraError, "does not match the image size"),
        (lambda a: a.update(object_ids=torch.tensor([7])), InvalidInputError, "object_ids [7] have no model"),
        (lambda a: a.update(image_index=torch.tensor([1])), InvalidInputError, "image_index values must be in [0, 1)"),
        (lambda a: a.update(init_poses=a["init_poses"][0]), ShapeError, "init_poses must be [N, 4, 4]"),
        (lambda a: a.update(object_ids=torch.tensor([1.0])), ShapeError, "object_ids must be [N] = [1] int64"),
    ],
)
def test_bad_inputs_raise_clear_errors(refiner, change, error, fragment):
    args = dict(images=torch.rand(1, 3, H, W), K=K_SMALL[None].clone(), object_ids=torch.tensor([1]),
                init_poses=_pose([0.0, 0.0, 0.5])[None], image_index=torch.tensor([0]))
    change(args)
    with pytest.raises(error) as exc:
        refiner.refine(**args)
    assert fragment in str(exc.value)


def test_iterations_argument(refiner, example_model):
    image, K, T_gt = make_scene(example_model, seed=1)
    out = refiner.refine(image[None], K[None], torch.tensor([1]), T_gt[None], torch.tensor([0]), iterations=0)
    assert out.trace.shape == (1, 1, 4, 4) and torch.equal(out.poses, T_gt[None])
    with pytest.raises(InvalidInputError, match="iterations must be an int >= 0"):
        refiner.refine(image[None], K[None], torch.tensor([1]), T_gt[None], torch.tensor([0]), iterations=-1)


def test_registry_errors(example_model):
    with pytest.raises(InvalidInputError, match="'repose' is learned and needs weights"):
        make_refiner("repose", {1: example_model})
    with pytest.raises(InvalidInputError, match="'deepim' is learned and needs weights"):
        make_refiner("deepim", {1: example_model})
    with pytest.raises(InvalidInputError, match="takes no weights"):
        make_refiner("rgb-lm", {1: example_model}, weights="w.pt")
    with pytest.raises(InvalidInputError, match="unknown method"):
        make_refiner("icp", {1: example_model})
    assert make_refiner("rgb-lm", {1: example_model}, iterations=4).default_iterations == 4


def test_config_validation():
    with pytest.raises(InvalidInputError, match="crop_size must be in"):
        RgbLMConfig(crop_size=8)
    with pytest.raises(InvalidInputError, match="robust_loss must be one of"):
        RgbLMConfig(robust_loss="l1")
    with pytest.raises(InvalidInputError, match="depth_fallback_check must be 'none', 'energy', 'margin' or 'accept'"):
        RgbLMConfig(depth_fallback_check=True)
    with pytest.raises(InvalidInputError, match="line_length_px must be >= 2"):
        RgbLMConfig(line_length_px=1)
    with pytest.raises(InvalidInputError, match="hist_update_rate in"):
        RgbLMConfig(hist_update_rate=0.0)
    with pytest.raises(InvalidInputError, match="unknown keys"):
        RgbLMConfig.from_dict({"crop": 3})
    c = RgbLMConfig(iterations=5)
    assert RgbLMConfig.from_dict(c.to_dict()) == c
