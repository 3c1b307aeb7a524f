"""The cascades (deepim+repose, deepim+rgb-lm): stages chained, statuses and traces relative to the cascade's
input, weights by method in any order, and their errors."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry import look_at_T_co
from iterpose.mesh import example_object
from iterpose.refiners import RefineStatus, make_refiner
from iterpose.refiners.base import RefineOutput, Refiner, RefineTimings
from iterpose.refiners.cascade import CascadeRefiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model
from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net
from iterpose.refiners.rgb_lm import RgbLM

K = torch.tensor([[[500.0, 0.0, 80.0], [0.0, 500.0, 60.0], [0.0, 0.0, 1.0]]])


@pytest.fixture(scope="module")
def obj():
    return example_object()


class _Shift(Refiner):
    """Moves every object by ``dx`` metres along x per iteration, or reports ``status`` and keeps its input."""

    def __init__(self, objects, dx: float, status: RefineStatus = RefineStatus.OK, iterations: int = 2) -> None:
        self.objects, self.dx, self.code, self.default_iterations = objects, dx, status, iterations

    def _refine(self, batch, iterations):
        T = batch.init_poses.clone()
        trace = [T.clone()]
        for _ in range(iterations):
            T = T.clone()
            T[:, 0, 3] += self.dx
            trace.append(T)
        M = T.shape[0]
        status = torch.full((M,), int(self.code), dtype=torch.int8)
        return RefineOutput(poses=T, scores=torch.full((M,), 0.5 + self.dx), trace=torch.stack(trace), status=status,
                            timings=RefineTimings(total_s=0.0, render_s=0.25))


def _T(obj):
    return look_at_T_co(torch.tensor([0.0, -0.5, 0.3]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))[None]


@pytest.mark.parametrize("first, second, status, moved", [
    (RefineStatus.OK, RefineStatus.OK, RefineStatus.OK, 0.005),
    (RefineStatus.OK, RefineStatus.KEPT_INITIAL_WORSE, RefineStatus.OK, 0.002),
    (RefineStatus.DIVERGED, RefineStatus.OK, RefineStatus.OK, 0.003),
    (RefineStatus.DIVERGED, RefineStatus.KEPT_INITIAL_WORSE, RefineStatus.DIVERGED, 0.0),
    (RefineStatus.OK, RefineStatus.DEPTH_ONLY, RefineStatus.OK, 0.005),
])
def test_statuses_and_poses_are_relative_to_the_cascade_input(obj, first, second, status, moved):
    objs = {1: obj}
    cascade = CascadeRefiner([_Shift(objs, 0.001, first), _Shift(objs, 0.001, second, iterations=3)], "a+b")
    T = _T(obj)
    out = cascade.refine(torch.rand(1, 3, 120, 160), K, torch.tensor([1]), T, torch.tensor([0]))
    assert RefineStatus(int(out.status[0])) == status
    assert out.trace.shape == (1 + 2 + 3, 1, 4, 4) and cascade.default_iterations == 5
    torch.testing.assert_close(out.poses[0, 0, 3] - T[0, 0, 3], torch.tensor(moved), atol=1e-6, rtol=0)
    assert out.timings.render_s == 0.5


def test_cascade_refuses_an_iteration_override(obj):
    objs = {1: obj}
    cascade = CascadeRefiner([_Shift(objs, 0.001), _Shift(objs, 0.001)], "a+b")
    with pytest.raises(InvalidInputError, match=r"each stage's own iterations \(2\+2\)"):
        cascade.refine(torch.rand(1, 3, 120, 160), K, torch.tensor([1]), _T(obj), torch.tensor([0]), iterations=3)
    with pytest.raises(InvalidInputError, match="at least two stages"):
        CascadeRefiner([_Shift(objs, 0.001)])


def _weights(obj, tmp_path):
    d, r = tmp_path / "d.pt", tmp_path / "r.pt"
    reg = object_registry({1: obj})
    dcfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2)
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model({1: obj}, dcfg)).checkpoint(reg), d)
    rcfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=3)
    save_checkpoint_atomic(ReposeRefiner(build_repose_net({1: obj}, rcfg)).checkpoint(reg), r)
    return d, r


def test_make_refiner_builds_the_cascade_from_weights_in_any_order(obj, tmp_path):
    d, r = _weights(obj, tmp_path)
    for weights in ([d, r], [r, d]):
        cascade = make_refiner("deepim+repose", {1: obj}, weights=weights)
        assert [type(s) for s in cascade.stages] == [DeepimRefiner, ReposeRefiner]
        assert cascade.default_iterations == 5
    out = cascade.refine(torch.rand(1, 3, 120, 160), K, torch.tensor([1]), _T(obj), torch.tensor([0]))
    assert out.trace.shape[0] == 6


def test_cascade_weights_errors(obj, tmp_path):
    d, r = _weights(obj, tmp_path)
    with pytest.raises(InvalidInputError, match="needs weights"):
        make_refiner("deepim+repose", {1: obj})
    with pytest.raises(InvalidInputError, match="needs 2 weights file"):
        make_refiner("deepim+repose", {1: obj}, weights=d)
    with pytest.raises(InvalidInputError, match="'deepim' model as does another file"):
        make_refiner("deepim+repose", {1: obj}, weights=[d, d])
    with pytest.raises(InvalidInputError, match="cannot be overridden for a cascade"):
        make_refiner("deepim+repose", {1: obj}, weights=[d, r], iterations=2)


def test_deepim_then_rgb_lm_takes_the_deepim_weights_only(obj, tmp_path):
    d, r = _weights(obj, tmp_path)
    cascade = make_refiner("deepim+rgb-lm", {1: obj}, weights=d)
    assert [type(s) for s in cascade.stages] == [DeepimRefiner, RgbLM] and cascade.name == "deepim+rgb-lm"
    assert cascade.default_iterations == 2 + RgbLM({1: obj}).default_iterations
    image = torch.rand(1, 3, 120, 160)
    T = _T(obj)
    out = cascade.refine(image, K, torch.tensor([1]), T, torch.tensor([0]))
    # the second stage starts from the first one's result
    first = cascade.stages[0].refine(image, K, torch.tensor([1]), T, torch.tensor([0]))
    torch.testing.assert_close(out.trace[2], first.poses)
    assert out.trace.shape[0] == 1 + cascade.default_iterations
    with pytest.raises(InvalidInputError, match="holds a 'repose' model, but method 'deepim'"):
        make_refiner("deepim+rgb-lm", {1: obj}, weights=r)
    with pytest.raises(InvalidInputError, match="needs 1 weights file"):
        make_refiner("deepim+rgb-lm", {1: obj}, weights=[d, r])


def test_refine_cli_offers_every_registered_method():
    from iterpose.cli.refine_cmd import REFINE_METHODS
    from iterpose.refiners.registry import METHODS

    assert REFINE_METHODS == METHODS
